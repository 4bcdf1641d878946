package replication

import (
	"context"
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
}

// Fix says what to do about the change.
func (c SchemaChange) Fix() string {
	done := fmt.Sprintf("then DELETE FROM replicator_ddl.queue WHERE id = %d on the source to clear it here", c.ID)
	if c.Side == "target" {
		return fmt.Sprintf("remove the cause, run the statement on the target as %s, %s", pgx.Identifier{c.Role}.Sanitize(), done)
	}
	return "make the same change on the target, " + done
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
			return c, err
		})
		out = append(out, changes...)
		return err
	}
	if err := read(src, "source", "NULLIF(concat_ws('; ', unreplicated, note), '')"); err != nil {
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

func hasQueue(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var ok bool
	err := conn.QueryRow(ctx, "SELECT pg_catalog.to_regclass('replicator_ddl.queue') IS NOT NULL").Scan(&ok)
	return ok, err
}

// newTables are the tables publication n.Publication has and the
// subscription does not know yet: created on the source since replication
// began. Their rows arrive once the subscription is refreshed.
func newTables(ctx context.Context, src *pgx.Conn, n Names, subscribed []TableState) ([]string, error) {
	rows, err := src.Query(ctx, `SELECT format('%I.%I', schemaname, tablename) FROM pg_catalog.pg_publication_tables
	  WHERE pubname = $1 AND schemaname <> 'replicator_ddl' ORDER BY 1`, n.Publication)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	published, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	known := map[string]bool{}
	for _, t := range subscribed {
		known[t.Table] = true
	}
	var out []string
	for _, t := range published {
		if !known[t] {
			out = append(out, t)
		}
	}
	return out, nil
}

// JoinNewTables refreshes the subscription of st (read just before) when
// the source has published new tables: the target copies each new table's
// rows in a snapshot of its own and applies the changes after it, so every
// row arrives exactly once. ALTER SUBSCRIPTION ... REFRESH cannot run in a
// transaction, so the apply worker cannot do this itself: sync does, when
// it runs again, and a remote job's monitor. dst is the target database.
func JoinNewTables(ctx context.Context, dst *pgx.Conn, st *Status) ([]string, error) {
	if st.Subscription == nil || len(st.NewTables) == 0 {
		return nil, nil
	}
	// The target must have the tables first: the queue creates them.
	var missing []string
	for _, d := range st.Drift {
		if d.Column == "" && strings.Contains(d.Problem, "missing on the target") {
			missing = append(missing, d.Table)
		}
	}
	if len(missing) > 0 {
		return nil, fmt.Errorf("new table(s) %s are published but not on the target yet: the schema change queue has not created them (replicator status says why)", strings.Join(missing, ", "))
	}
	stmt := "ALTER SUBSCRIPTION " + pgx.Identifier{NamesFor(st.Database).Subscription}.Sanitize() + " REFRESH PUBLICATION WITH (copy_data = true)"
	if _, err := dst.Exec(ctx, stmt); err != nil {
		return nil, fmt.Errorf("%s: %w", stmt, err)
	}
	return st.NewTables, nil
}

// JoinNewTablesOn is JoinNewTables with the target's address.
func JoinNewTablesOn(ctx context.Context, dst *conninfo.Endpoint, st *Status) ([]string, error) {
	ep, err := dst.WithDatabase(st.Database)
	if err != nil {
		return nil, err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	return JoinNewTables(ctx, conn, st)
}
