package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
)

// SchemaChange is a captured schema change that needs a person: one the
// source could not queue for replay (it ran inside a function, say), a new
// table that cannot join the publication, or one the target refused.
type SchemaChange struct {
	ID         int64     `json:"id"`
	CapturedAt time.Time `json:"captured_at"`
	Role       string    `json:"role"`
	Command    string    `json:"command"`
	Statements []string  `json:"statements,omitempty"`
	// Problem is what went wrong, Side where ("source" or "target").
	Problem string `json:"problem"`
	Side    string `json:"side"`
	// Remedy is the fix the capture or the apply knew (the statement with
	// the values), when they did.
	Remedy string `json:"remedy,omitempty"`
}

// Fix says what to do about the change.
func (c SchemaChange) Fix() string {
	done := fmt.Sprintf("then DELETE FROM replicator_ddl.queue WHERE id = %d on the source to clear it here", c.ID)
	if c.Remedy != "" {
		return c.Remedy + ", " + done
	}
	if c.Side == "target" {
		return fmt.Sprintf("remove the cause, run the statement on the target as %s, %s", pgx.Identifier{c.Role}.Sanitize(), done)
	}
	return "make the same change on the target, " + done
}

// Statement is the change's statement on one line, shortened for a status
// line.
func (c SchemaChange) Statement() string {
	s := strings.Join(strings.Fields(strings.Join(c.Statements, "; ")), " ")
	if r := []rune(s); len(r) > 200 {
		s = string(r[:199]) + "…"
	}
	return s
}

// readSchemaChanges reads the queue on both sides: what the source did not
// queue for replay (unreplicated, note) and what the target refused (error).
func readSchemaChanges(ctx context.Context, src, dst *pgx.Conn) (capturing bool, out []SchemaChange, err error) {
	if capturing, err = hasQueue(ctx, src); err != nil || !capturing {
		return false, nil, err
	}
	read := func(conn *pgx.Conn, side, problem string) error {
		rows, err := conn.Query(ctx, `SELECT id, captured_at, role::text, command_tag, statements, `+problem+`
		  FROM replicator_ddl.queue WHERE `+problem+` IS NOT NULL ORDER BY id`)
		if err != nil {
			return fmt.Errorf("%s: read the schema change queue: %w", side, err)
		}
		changes, err := pgx.CollectRows(rows, func(r pgx.CollectableRow) (SchemaChange, error) {
			c := SchemaChange{Side: side}
			err := r.Scan(&c.ID, &c.CapturedAt, &c.Role, &c.Command, &c.Statements, &c.Problem)
			c.Problem, c.Remedy = splitRemedy(c.Problem)
			return c, err
		})
		out = append(out, changes...)
		return err
	}
	if err := read(src, "source", "NULLIF(concat_ws(E'\n', unreplicated, note), '')"); err != nil {
		return true, nil, err
	}
	if ok, err := hasQueue(ctx, dst); err != nil {
		return true, nil, err
	} else if ok {
		if err := read(dst, "target", "error"); err != nil {
			return true, nil, err
		}
	}
	return true, out, nil
}

// queueUnreadable says why the session's role may not read the schema
// change queue on either side ("" when it may, or there is none): the
// queue, and the functions that read it, are the sync role's alone.
func queueUnreadable(ctx context.Context, src, dst *pgx.Conn) (string, error) {
	for _, side := range []struct {
		name string
		conn *pgx.Conn
	}{{"source", src}, {"target", dst}} {
		if side.conn == nil {
			continue
		}
		var user, owner *string
		err := side.conn.QueryRow(ctx, `SELECT current_user::text, n.nspowner::pg_catalog.regrole::text
		  FROM pg_catalog.pg_namespace n JOIN pg_catalog.pg_class q ON q.relnamespace = n.oid AND q.relname = 'queue'
		  WHERE n.nspname = 'replicator_ddl'
		    AND NOT (pg_catalog.has_schema_privilege(n.oid, 'USAGE') AND pg_catalog.has_table_privilege(q.oid, 'SELECT'))`).Scan(&user, &owner)
		switch {
		case errors.Is(err, pgx.ErrNoRows):
			continue
		case err != nil:
			return "", fmt.Errorf("%s: %w", side.name, err)
		}
		return fmt.Sprintf("role %s may not read the schema change queue on the %s (it belongs to %s, the role that set up sync), so schema changes that need a person are not shown; fix: run status as %s or a superuser",
			*user, side.name, *owner, *owner), nil
	}
	return "", nil
}

func hasQueue(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT pg_catalog.to_regclass('replicator_ddl.queue') IS NOT NULL").Scan(&ok)
	return ok, err
}

// newTables are the tables the subscription does not know yet: created on
// the source since replication began, and either published already (not
// yet refreshed) or ready to join (replicator_ddl.joinable()). Their rows
// arrive once the subscription is refreshed.
func newTables(ctx context.Context, src *pgx.Conn, n Names, subscribed []TableState, readable bool) ([]string, error) {
	// A capture installed by an older replicator has no joinable(): it
	// published new tables itself.
	var capturing bool
	if readable {
		if err := src.QueryRow(ctx, "SELECT pg_catalog.to_regprocedure('replicator_ddl.joinable()') IS NOT NULL").Scan(&capturing); err != nil {
			return nil, fmt.Errorf("source: %w", err)
		}
	}
	joinable := "SELECT NULL::text WHERE false"
	if capturing {
		joinable = "SELECT format('%I.%I', n.nspname, c.relname) FROM replicator_ddl.joinable() j JOIN pg_catalog.pg_class c ON c.oid = j JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace"
	}
	rows, err := src.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_publication_tables
	  WHERE pubname = $1 AND schemaname <> 'replicator_ddl' UNION `+joinable+` ORDER BY 1`, n.Publication)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	candidates, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	known := map[string]bool{}
	for _, t := range subscribed {
		known[t.Table] = true
	}
	var out []string
	for _, t := range candidates {
		if !known[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

// JoinNewTables brings the new tables of st (read just before) into
// replication: the source publishes those that can join, then the target
// refreshes its subscription, copying each new table's rows in a snapshot
// of its own and applying the changes after it, so every row arrives
// exactly once. ALTER SUBSCRIPTION ... REFRESH cannot run in a
// transaction, so the apply worker cannot do this itself: sync does, when
// it runs again, and a remote job's monitor. src and dst are the database
// on each side.
func JoinNewTables(ctx context.Context, src, dst *pgx.Conn, st *Status) ([]string, error) {
	if st.Subscription == nil || len(st.NewTables) == 0 {
		return nil, nil
	}
	// The target must have the tables first: the queue creates them.
	var missing []string
	for _, t := range st.NewTables {
		var ok bool
		if err := dst.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", t).Scan(&ok); err != nil {
			return nil, fmt.Errorf("target: %w", err)
		}
		if !ok {
			missing = append(missing, t)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("new table(s) %s are not on the target yet: the schema change queue has not created them (replicator status says why)", strings.Join(missing, ", "))
	}
	var joinable bool
	if err := src.QueryRow(ctx, "SELECT pg_catalog.to_regprocedure('replicator_ddl.publish_new()') IS NOT NULL").Scan(&joinable); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	} else if joinable {
		if _, err := src.Exec(ctx, "SELECT replicator_ddl.publish_new()"); err != nil {
			return nil, fmt.Errorf("source: publish the new tables: %w", err)
		}
	}
	stmt := "ALTER SUBSCRIPTION " + pgx.Identifier{NamesFor(st.Database).Subscription}.Sanitize() + " REFRESH PUBLICATION WITH (copy_data = true)"
	if _, err := dst.Exec(ctx, stmt); err != nil {
		return nil, fmt.Errorf("%s: %w", stmt, err)
	}
	return st.NewTables, nil
}

// JoinNewTablesOn is JoinNewTables with the two sides' addresses.
func JoinNewTablesOn(ctx context.Context, src, dst *conninfo.Endpoint, st *Status) ([]string, error) {
	s, d, err := connectBoth(ctx, src, dst, st.Database)
	if err != nil {
		return nil, err
	}
	defer s.Close(context.Background())
	defer d.Close(context.Background())
	return JoinNewTables(ctx, s, d, st)
}

// splitRemedy parses the queue's problem text: one problem per line, each
// "what; fix: how" when the side that found it knew the fix.
func splitRemedy(text string) (problem, remedy string) {
	var whats, fixes []string
	for _, line := range strings.Split(text, "\n") {
		what, fix, ok := strings.Cut(line, "; fix: ")
		whats = append(whats, what)
		if ok {
			fixes = append(fixes, fix)
		}
	}
	return strings.Join(whats, "; "), strings.Join(fixes, "; ")
}
