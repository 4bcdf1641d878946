package replication

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
)

// Status of one database's replication.
type Status struct {
	Database string `json:"database"`
	// Direction is "forward" (source to target) or "reverse" (the target
	// back to the source, after cutover --reverse).
	Direction    string       `json:"direction"`
	State        string       `json:"state"` // not set up, streaming, catching up, stopped, broken
	Publication  bool         `json:"publication"`
	Slot         *SlotState   `json:"slot,omitempty"`
	Subscription *SubState    `json:"subscription,omitempty"`
	Tables       []TableState `json:"tables,omitempty"`
	// Drift: published tables the target cannot apply as they are.
	Drift []Drift `json:"drift,omitempty"`
	// ReplicateDDL: schema changes on the source are captured for the
	// target; SchemaChanges the ones that need a person.
	ReplicateDDL  bool           `json:"replicate_ddl"`
	SchemaChanges []SchemaChange `json:"schema_changes,omitempty"`
	// NewTables are published on the source and not yet subscribed: their
	// rows arrive once sync runs again (it refreshes the subscription).
	NewTables []string `json:"new_tables,omitempty"`
	// Unkeyed are published tables that lost their key: the source refuses
	// their UPDATEs and DELETEs until they have one again.
	Unkeyed []string `json:"unkeyed,omitempty"`
	// CaptureOutdated: the source's schema change capture is an older
	// replicator's, which a role that may create objects can take over.
	CaptureOutdated bool `json:"capture_outdated,omitempty"`
	// SchemaChangesUnread: the session's role may not read the schema
	// change queue (it is the sync role's alone); why, and the fix.
	SchemaChangesUnread string `json:"schema_changes_unread,omitempty"`
	// CaughtUp: the target had applied everything the source had written
	// when status asked (within CatchUpProbe); nil when not replicating.
	CaughtUp *bool `json:"caught_up,omitempty"`
	// SourceLSN is the source's position past every commit when status
	// asked (CommittedLSN);
	// AppliedLSN the source position the target has applied up to (its
	// replication origin; the slot's confirmed position for a role that
	// may not read origins).
	SourceLSN  string `json:"source_lsn,omitempty"`
	AppliedLSN string `json:"applied_lsn,omitempty"`
}

// CatchUpProbe is how long status waits for the target to confirm the
// source's current position before it says "not caught up".
const CatchUpProbe = 500 * time.Millisecond

// Problems says what needs a person: a broken or incomplete replication,
// drift, WAL the source keeps past retainLimit bytes.
func (st *Status) Problems(retainLimit int64) []string {
	var out []string
	if strings.HasPrefix(st.State, "broken") || strings.HasPrefix(st.State, "incomplete") {
		line := st.Database + ": " + st.State
		if s := st.Slot; s != nil && s.InactiveSince != nil {
			line += fmt.Sprintf("; the source's slot has had no reader since %s", s.InactiveSince.UTC().Format(time.RFC3339))
		}
		out = append(out, line)
	}
	for _, d := range st.Drift {
		what := d.Table
		if d.Column != "" {
			what += "." + d.Column
		}
		out = append(out, fmt.Sprintf("%s: %s %s; fix: %s", st.Database, what, d.Problem, d.Fix))
	}
	for _, c := range st.SchemaChanges {
		line := fmt.Sprintf("%s: schema change %d (%s by %s, %s) %s: %s", st.Database, c.ID, c.Command, c.Role,
			c.CapturedAt.UTC().Format(time.RFC3339), map[string]string{"source": "was not replicated", "target": "failed on the target"}[c.Side], c.Problem)
		if stmt := c.Statement(); stmt != "" {
			line += "; statement: " + stmt
		}
		out = append(out, line+"; fix: "+c.Fix())
	}
	if st.SchemaChangesUnread != "" {
		out = append(out, st.Database+": "+st.SchemaChangesUnread)
	}
	if st.CaptureOutdated {
		out = append(out, st.Database+": the schema change capture on the source was installed by an older replicator, whose functions a role that may create objects can take over (to become superuser); fix: run replicator sync, which upgrades it in place")
	}
	for _, t := range st.Unkeyed {
		out = append(out, fmt.Sprintf("%s: %s is published but has no primary key or replica identity any more, so the source refuses its UPDATEs and DELETEs; fix on the source: add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL",
			st.Database, t, t))
	}
	if len(st.NewTables) > 0 {
		out = append(out, fmt.Sprintf("%s: new table(s) %s wait to join the subscription; fix: run replicator sync again (it refreshes the subscription, which copies their rows once)",
			st.Database, strings.Join(st.NewTables, ", ")))
	}
	if s := st.Slot; s != nil && retainLimit > 0 && s.RetainedBytes > retainLimit {
		keep := "no limit (max_slot_wal_keep_size = -1): the source's disk fills if this goes on"
		if s.MaxKeepSize != "" && s.MaxKeepSize != "-1" {
			keep = "at most " + s.MaxKeepSize + " (max_slot_wal_keep_size), then the slot is lost"
		}
		out = append(out, fmt.Sprintf("%s: the source keeps %d MiB of WAL for this replication (wal_status %s), and will keep %s",
			st.Database, s.RetainedBytes>>20, s.WALStatus, keep))
	}
	return out
}

// SlotState is the source side.
type SlotState struct {
	Name         string `json:"name"`
	Active       bool   `json:"active"`
	ConfirmedLSN string `json:"confirmed_flush_lsn"`
	// LagBytes is the WAL from what the target has applied to the source's
	// current position, 0 when caught up; LagSeconds the walsender's replay
	// lag, 0 when caught up and nil when not known.
	LagBytes   int64    `json:"lag_bytes"`
	LagSeconds *float64 `json:"lag_seconds,omitempty"`
	WALStatus  string   `json:"wal_status"`
	// RetainedBytes is the WAL the slot keeps on the source (from its
	// restart_lsn); MaxKeepSize the source's max_slot_wal_keep_size ("-1"
	// unlimited, "" before 13).
	RetainedBytes int64  `json:"retained_bytes"`
	MaxKeepSize   string `json:"max_slot_wal_keep_size"`
	// InactiveSince is when the slot last had a reader (PostgreSQL 17+
	// records it; nil while streaming, or before 17).
	InactiveSince *time.Time `json:"inactive_since,omitempty"`
}

// SubState is the target side.
type SubState struct {
	Name          string     `json:"name"`
	Enabled       bool       `json:"enabled"`
	WorkerRunning bool       `json:"worker_running"`
	ReceivedLSN   string     `json:"received_lsn,omitempty"`
	LastMessage   *time.Time `json:"last_message_time,omitempty"`
	LastApplied   *time.Time `json:"last_applied_time,omitempty"`
	ApplyErrors   int64      `json:"apply_errors"`
}

// TableState is one subscribed table's synchronisation state.
type TableState struct {
	Table string `json:"table"`
	State string `json:"state"`
}

var relStates = map[string]string{"i": "initializing", "d": "copying", "f": "finished copy", "s": "synchronized", "r": "ready"}

// ReadStatus reads both sides of database db. src and dst are connected to db.
func ReadStatus(ctx context.Context, src, dst *pgx.Conn, db string) (*Status, error) {
	return readStatus(ctx, src, dst, db, NamesFor(db))
}

// ReadReverseStatus reads the replication cutover --reverse set up from
// the target (the new primary, up) back to the source (down).
func ReadReverseStatus(ctx context.Context, up, down *pgx.Conn, db string) (*Status, error) {
	return readStatus(ctx, up, down, db, ReverseNamesFor(db))
}

func readStatus(ctx context.Context, src, dst *pgx.Conn, db string, n Names) (*Status, error) {
	st := &Status{Database: db, Direction: "forward"}
	if n.Reverse {
		st.Direction = "reverse"
	}
	if err := src.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)", n.Publication).Scan(&st.Publication); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	slot, err := readSlot(ctx, src, n)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	st.Slot = slot
	sub, subOID, err := readSubscription(ctx, dst, n)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	if sub != nil {
		st.Subscription = sub
		if st.Tables, err = subscribedTables(ctx, dst, subOID); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		if st.Slot != nil {
			if err := st.measureLag(ctx, src, dst, subOID); err != nil {
				return nil, err
			}
		}
	}
	if n.Reverse {
		// The reverse direction replicates rows only.
		st.State = st.state()
		return st, nil
	}

	// The queue and its functions are the sync role's alone: another role
	// (a monitoring one) sees the rest and is told why not this.
	if st.SchemaChangesUnread, err = queueUnreadable(ctx, src, dst); err != nil {
		return nil, err
	}
	if st.Publication && st.Subscription != nil {
		if st.Drift, err = ReadDrift(ctx, src, dst, n); err != nil {
			return nil, err
		}
		if st.NewTables, err = newTables(ctx, src, n, st.Tables, st.SchemaChangesUnread == ""); err != nil {
			return nil, err
		}
	}
	if st.Publication {
		if st.Unkeyed, err = Unkeyed(ctx, src, n.Publication); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	if st.SchemaChangesUnread != "" {
		st.ReplicateDDL = true
	} else if st.ReplicateDDL, st.SchemaChanges, err = readSchemaChanges(ctx, src, dst); err != nil {
		return nil, err
	}
	if st.ReplicateDDL && st.SchemaChangesUnread == "" {
		if st.CaptureOutdated, err = CaptureOutdated(ctx, src); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	st.State = st.state()
	return st, nil
}

// readSlot reads the source side; nil when the slot is not there.
func readSlot(ctx context.Context, src *pgx.Conn, n Names) (*SlotState, error) {
	slot := &SlotState{Name: n.Slot}
	var lagBytes *int64
	var confirmed, walStatus *string
	// wal_status is there from PostgreSQL 13 on.
	walStatusCol, inactiveCol := "s.wal_status", "NULL::timestamptz"
	if m := serverMajor(src); m < 13 {
		walStatusCol = "NULL::text"
	} else if m >= 17 {
		inactiveCol = "s.inactive_since"
	}
	err := src.QueryRow(ctx, `
SELECT s.active, s.confirmed_flush_lsn::text, pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.confirmed_flush_lsn)::int8,
       `+walStatusCol+`, (SELECT extract(epoch FROM r.replay_lag)::float8 FROM pg_catalog.pg_stat_replication r WHERE r.pid = s.active_pid),
       COALESCE(pg_catalog.pg_wal_lsn_diff(pg_catalog.pg_current_wal_lsn(), s.restart_lsn)::int8, 0),
       COALESCE(current_setting('max_slot_wal_keep_size', true), ''), `+inactiveCol+`
FROM pg_catalog.pg_replication_slots s WHERE s.slot_name = $1`, n.Slot).Scan(&slot.Active, &confirmed, &lagBytes, &walStatus, &slot.LagSeconds,
		&slot.RetainedBytes, &slot.MaxKeepSize, &slot.InactiveSince)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		slot = nil
	case err != nil:
		return nil, err
	default:
		slot.ConfirmedLSN, slot.WALStatus = deref(confirmed), deref(walStatus)
		if lagBytes != nil {
			slot.LagBytes = *lagBytes
		}
		if slot.LagSeconds == nil && slot.LagBytes == 0 {
			zero := 0.0
			slot.LagSeconds = &zero
		}
	}
	return slot, nil
}

// readSubscription reads the target side; nil when the subscription is
// not there.
func readSubscription(ctx context.Context, dst *pgx.Conn, n Names) (*SubState, uint32, error) {
	sub := &SubState{Name: n.Subscription}
	var subOID uint32
	var pid *int32
	var received *string
	// Error counters are kept from PostgreSQL 15 on; from 16 on parallel apply
	// workers also have no relid, and only the leader is the subscription's.
	errorsCol, leader := "0::int8", ""
	if m := serverMajor(dst); m >= 15 {
		errorsCol = "COALESCE((SELECT apply_error_count + sync_error_count FROM pg_catalog.pg_stat_subscription_stats x WHERE x.subid = s.oid), 0)"
		if m >= 16 {
			leader = " AND st.leader_pid IS NULL"
		}
	}
	err := dst.QueryRow(ctx, `
SELECT s.oid, s.subenabled, st.pid, st.received_lsn::text, st.last_msg_receipt_time, st.latest_end_time,
       `+errorsCol+`
FROM pg_catalog.pg_subscription s
LEFT JOIN pg_catalog.pg_stat_subscription st ON st.subid = s.oid AND st.relid IS NULL`+leader+`
WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = current_database())`,
		n.Subscription).Scan(&subOID, &sub.Enabled, &pid, &received, &sub.LastMessage, &sub.LastApplied, &sub.ApplyErrors)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return nil, 0, nil
	case err != nil:
		return nil, 0, err
	}
	sub.WorkerRunning, sub.ReceivedLSN = pid != nil, deref(received)
	return sub, subOID, nil
}

// measureLag says whether the target is caught up with the source's current
// position, and how much WAL lies between what it applied and that position.
func (st *Status) measureLag(ctx context.Context, src, dst *pgx.Conn, subOID uint32) error {
	cur, err := CommittedLSN(ctx, src)
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	applied, known, err := appliedLSN(ctx, dst, subOID)
	if err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if !known {
		applied = st.Slot.ConfirmedLSN
	}
	caught := false
	if st.Slot.Active {
		if caught, _, err = Reached(ctx, src, st.Slot.Name, cur, CatchUpProbe); err != nil {
			return fmt.Errorf("source: %w", err)
		}
	}
	st.CaughtUp, st.SourceLSN, st.AppliedLSN = &caught, cur, applied
	if caught {
		zero := 0.0
		st.Slot.LagBytes, st.Slot.LagSeconds = 0, &zero
		return nil
	}
	if applied != "" {
		if st.Slot.LagBytes, err = lsnDiff(ctx, src, cur, applied); err != nil {
			return fmt.Errorf("source: %w", err)
		}
		st.Slot.LagBytes = max(st.Slot.LagBytes, 0)
	}
	// The walsender's replay lag reads 0 while a large transaction is still
	// being sent: not caught up says more than that 0.
	if l := st.Slot.LagSeconds; l != nil && *l == 0 {
		st.Slot.LagSeconds = nil
	}
	return nil
}

// subscribedTables are the subscription's tables and their sync states,
// by name (replicator's own queue left out).
func subscribedTables(ctx context.Context, dst *pgx.Conn, subOID uint32) ([]TableState, error) {
	rows, err := dst.Query(ctx, `SELECT format('%I.%I', n.nspname, c.relname), r.srsubstate::text FROM pg_catalog.pg_subscription_rel r
	  JOIN pg_catalog.pg_class c ON c.oid = r.srrelid JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
	  WHERE r.srsubid = $1 AND n.nspname <> 'replicator_ddl' `, subOID)
	if err != nil {
		return nil, err
	}
	tables, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (TableState, error) {
		var ts TableState
		err := r.Scan(&ts.Table, &ts.State)
		if s, ok := relStates[ts.State]; ok {
			ts.State = s
		}
		return ts, err
	})
	sort.Slice(tables, func(i, j int) bool { return tables[i].Table < tables[j].Table })
	return tables, err
}

// StateNoWorker is the state of a subscription whose apply worker is not
// running (it restarts a few seconds after an error).
const StateNoWorker = "broken: no apply worker (see the target's log)"

// state sums both sides up for people.
func (st *Status) state() string {
	switch {
	case st.Subscription == nil && st.Slot == nil && !st.Publication:
		return "not set up"
	case st.Subscription == nil || st.Slot == nil || !st.Publication:
		return "incomplete (run replicator sync --force, or --stop)"
	case !st.Subscription.Enabled:
		return "stopped"
	case len(st.Drift) > 0:
		return fmt.Sprintf("broken: %d difference(s) from the source's tables (see drift)", len(st.Drift))
	case len(st.Unkeyed) > 0:
		return fmt.Sprintf("broken: %d published table(s) without a key: the source refuses their UPDATEs and DELETEs", len(st.Unkeyed))
	case !st.Subscription.WorkerRunning:
		return StateNoWorker
	case st.Slot.LagBytes > 16<<20:
		return "catching up"
	default:
		return "streaming"
	}
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Databases are the source's databases the rules select, as sync picks
// them.
func Databases(ctx context.Context, src *conninfo.Endpoint, selected func(string) bool) ([]string, error) {
	conn, err := src.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_catalog.pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1`)
	if err != nil {
		return nil, err
	}
	all, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, err
	}
	var dbs []string
	for _, d := range all {
		if selected(d) {
			dbs = append(dbs, d)
		}
	}
	return dbs, nil
}

// ReadAll reads the status of every database named.
func ReadAll(ctx context.Context, src, dst *conninfo.Endpoint, dbs []string) ([]*Status, error) {
	var out []*Status
	for _, db := range dbs {
		s, d, err := connectBoth(ctx, src, dst, db)
		if err != nil {
			return nil, err
		}
		st, err := ReadStatus(ctx, s, d, db)
		var back *Status
		if err == nil {
			// After cutover --reverse the target replicates back: shown
			// too, when it is there.
			back, err = ReadReverseStatus(ctx, d, s, db)
		}
		s.Close(ctx)
		d.Close(ctx)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db, err)
		}
		if st.State != "not set up" || back.State == "not set up" {
			out = append(out, st)
		}
		if back.State != "not set up" {
			out = append(out, back)
		}
	}
	return out, nil
}

func connectBoth(ctx context.Context, src, dst *conninfo.Endpoint, db string) (*pgx.Conn, *pgx.Conn, error) {
	se, err := src.WithDatabase(db)
	if err != nil {
		return nil, nil, err
	}
	de, err := dst.WithDatabase(db)
	if err != nil {
		return nil, nil, err
	}
	s, err := se.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	d, err := de.Connect(ctx)
	if err != nil {
		s.Close(ctx)
		return nil, nil, err
	}
	return s, d, nil
}

// serverMajor is the major version the server reported when conn started
// ("12.22", "18.4 (Debian 18.4-1)", "19beta1"); 0 when unknown.
func serverMajor(conn *pgx.Conn) int {
	v := conn.PgConn().ParameterStatus("server_version")
	end := 0
	for end < len(v) && v[end] >= '0' && v[end] <= '9' {
		end++
	}
	n, _ := strconv.Atoi(v[:end])
	return n
}
