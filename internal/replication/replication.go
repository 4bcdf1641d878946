// Package replication sets up, inspects and removes PostgreSQL's native logical
// replication between a source and a target database: a publication and a
// replication slot on the source, a subscription on the target. The slot can be
// created first, exporting the snapshot the initial copy then reads, so that the
// subscription picks up exactly where the copy's snapshot ends: no gap, no
// duplicate.
package replication

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"regexp"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/problem"
)

// Names of the replication objects of one database.
type Names struct {
	Publication  string // in the source database
	Slot         string // on the source cluster (slot names are cluster-wide)
	Subscription string // in the target database
	// Reverse: the names of the direction cutover --reverse sets up, from
	// the target (publication and slot) back to the source (subscription).
	Reverse bool
}

var unsafe = regexp.MustCompile(`[^a-z0-9_]+`)

// NamesFor derives the object names for database db: fixed, so that status and
// --stop find what sync created.
func NamesFor(db string) Names {
	sum := sha256.Sum256([]byte(db))
	slug := strings.Trim(unsafe.ReplaceAllString(strings.ToLower(db), "_"), "_")
	if len(slug) > 30 {
		slug = slug[:30]
	}
	slot := "replicator_" + slug + "_" + hex.EncodeToString(sum[:4])
	return Names{Publication: "replicator", Slot: slot, Subscription: "replicator"}
}

// ReverseNamesFor derives the names of the replication cutover --reverse
// sets up for database db: the publication and slot are on the target, the
// subscription on the source. They differ from the forward names, so that
// one cluster may hold both directions' objects.
func ReverseNamesFor(db string) Names {
	n := NamesFor(db)
	return Names{Publication: "replicator_reverse", Slot: strings.Replace(n.Slot, "replicator_", "replicator_rev_", 1), Subscription: "replicator_reverse", Reverse: true}
}

// Table is one table to publish.
type Table struct {
	Name      catalog.Name
	Predicate string // row filter ("" for all rows)
}

// CheckSource verifies the source server can publish: wal_level, privilege.
func CheckSource(si *catalog.Server) error { return CheckPublisher(si, "source") }

// CheckPublisher verifies that a server can publish, named by its side
// ("source"; "target" for cutover --reverse, which publishes back from it).
func CheckPublisher(si *catalog.Server, side string) error {
	if si.WALLevel != "logical" {
		return &problem.Problem{Msg: fmt.Sprintf("%s wal_level is %s; logical replication needs logical", side, si.WALLevel),
			Fix: "run ALTER SYSTEM SET wal_level = logical on the " + side + " and restart it (on RDS/Aurora: set rds.logical_replication = 1 in the parameter group; on Cloud SQL: cloudsql.logical_decoding = on)"}
	}
	if !si.Replication {
		role := pgx.Identifier{si.User}.Sanitize()
		return &problem.Problem{Msg: fmt.Sprintf("%s role %s lacks the REPLICATION privilege", side, si.User),
			Fix: fmt.Sprintf("ALTER ROLE %s REPLICATION (on RDS: GRANT rds_replication TO %s)", role, role)}
	}
	return nil
}

// CheckTables finds published tables whose updates and deletes the server on
// side (the publishing one) could not publish: no primary key or replica
// identity, or a row filter over columns outside the replica identity.
// Publishing them would make UPDATE and DELETE fail there, so they must be
// fixed first; the problem's Statements fix them.
func CheckTables(ctx context.Context, conn *pgx.Conn, tables []Table, side string) error {
	var filtered, all []string
	pred := map[string]bool{}
	for _, t := range tables {
		all = append(all, t.Name.Quoted())
		if t.Predicate != "" {
			pred[t.Name.Quoted()] = true
			filtered = append(filtered, t.Name.Quoted())
		}
	}
	rows, err := conn.Query(ctx, `
SELECT format('%I.%I', n.nspname, c.relname), c.relreplident,
       EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident))
FROM unnest($1::text[]) AS t(name)
JOIN pg_catalog.pg_class c ON c.oid = t.name::regclass
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r'`, all)
	if err != nil {
		return fmt.Errorf("check replica identities: %w", err)
	}
	defer rows.Close()
	var bad []string
	for rows.Next() {
		var name, ident string
		var keyed bool
		if err := rows.Scan(&name, &ident, &keyed); err != nil {
			return err
		}
		switch {
		case ident == "f":
		case pred[name]:
			bad = append(bad, name+" (row filter needs REPLICA IDENTITY FULL)")
		case !keyed:
			bad = append(bad, name)
		}
	}
	if err := rows.Err(); err != nil {
		return err
	}
	if len(bad) == 0 {
		return nil
	}
	p := &problem.Problem{Msg: fmt.Sprintf("%d table(s) have no primary key or replica identity usable for replication, so their UPDATEs and DELETEs would fail on the %s once published: %s",
		len(bad), side, strings.Join(bad, ", "))}
	for _, b := range bad {
		name, _, _ := strings.Cut(b, " (")
		p.Statements = append(p.Statements, "ALTER TABLE "+name+" REPLICA IDENTITY FULL")
	}
	p.Fix = "add primary keys, or pass --replica-identity-full to run " + strings.Join(p.Statements, "; ")
	return p
}

// EnsurePublication creates the publication for tables, or replaces its table
// list when it exists. Unlogged tables cannot be published and are left out.
func EnsurePublication(ctx context.Context, conn *pgx.Conn, name string, tables []Table) error {
	// One TABLE keyword for the list: "TABLE a, TABLE b" is PostgreSQL 15
	// syntax, "TABLE a, b" is understood by every version.
	var parts []string
	for _, t := range tables {
		p := t.Name.Quoted()
		if t.Predicate != "" {
			p += " WHERE (" + t.Predicate + ")"
		}
		parts = append(parts, p)
	}
	var exists bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)", name).Scan(&exists); err != nil {
		return err
	}
	ident := pgx.Identifier{name}.Sanitize()
	var stmt string
	switch {
	case len(parts) == 0 && !exists:
		stmt = "CREATE PUBLICATION " + ident
	case len(parts) == 0:
		return nil
	case exists:
		stmt = "ALTER PUBLICATION " + ident + " SET TABLE " + strings.Join(parts, ", ")
	default:
		stmt = "CREATE PUBLICATION " + ident + " FOR TABLE " + strings.Join(parts, ", ")
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("publication %s: %w", name, err)
	}
	return nil
}

// Slot is a logical replication slot just created, with the snapshot it
// exported. The snapshot lives as long as Conn stays open and idle.
type Slot struct {
	Name, Snapshot, LSN string
	Conn                *pgconn.PgConn
}

// Close ends the replication session (the snapshot goes; the slot stays).
func (s *Slot) Close() {
	if s != nil && s.Conn != nil {
		s.Conn.Close(context.Background())
	}
}

// CreateSlot creates a pgoutput slot on the source database and exports its
// snapshot. A stale slot of the same name that no one uses (left by a killed
// run) is dropped first.
func CreateSlot(ctx context.Context, src *conninfo.Endpoint, conn *pgx.Conn, name string) (*Slot, error) {
	if err := DropSlot(ctx, conn, name); err != nil {
		return nil, err
	}
	rc, err := src.ReplicationConnect(ctx)
	if err != nil {
		return nil, err
	}
	res, err := rc.Exec(ctx, "CREATE_REPLICATION_SLOT "+pgx.Identifier{name}.Sanitize()+" LOGICAL pgoutput EXPORT_SNAPSHOT").ReadAll()
	if err != nil {
		rc.Close(ctx)
		return nil, fmt.Errorf("create replication slot %s: %w", name, err)
	}
	if len(res) != 1 || len(res[0].Rows) != 1 || len(res[0].Rows[0]) < 3 {
		rc.Close(ctx)
		return nil, fmt.Errorf("create replication slot %s: unexpected reply", name)
	}
	row := res[0].Rows[0]
	return &Slot{Name: name, LSN: string(row[1]), Snapshot: string(row[2]), Conn: rc}, nil
}

// SlotReleaseWait bounds how long DropSlot waits for a slot's walsender to
// go: it ends a moment after its subscription is disabled or dropped, not
// with it.
var SlotReleaseWait = 15 * time.Second

// DropSlot removes a slot that is not in use. Missing is fine.
func DropSlot(ctx context.Context, conn *pgx.Conn, name string) error {
	deadline := time.Now().Add(SlotReleaseWait)
	for {
		var active *bool
		err := conn.QueryRow(ctx, "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", name).Scan(&active)
		if errors.Is(err, pgx.ErrNoRows) {
			return nil
		}
		if err != nil {
			return fmt.Errorf("look up slot %s: %w", name, err)
		}
		if active == nil || !*active {
			break
		}
		if time.Now().After(deadline) {
			return fmt.Errorf("replication slot %s is in use by a running subscription: stop it first (replicator sync --stop)", name)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(200 * time.Millisecond):
		}
	}
	if _, err := conn.Exec(ctx, "SELECT pg_catalog.pg_drop_replication_slot($1)", name); err != nil {
		return fmt.Errorf("drop slot %s: %w", name, err)
	}
	return nil
}

// DropPublication removes the publication if it exists.
func DropPublication(ctx context.Context, conn *pgx.Conn, name string) error {
	if _, err := conn.Exec(ctx, "DROP PUBLICATION IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
		return fmt.Errorf("drop publication %s: %w", name, err)
	}
	return nil
}
