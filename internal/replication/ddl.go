package replication

import (
	"context"
	_ "embed"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/problem"
)

// Schema changes are replicated through a queue: an event trigger on the
// source writes each DDL statement into replicator_ddl.queue, which is
// published like the user's tables; on the target a trigger on the same
// table runs the statement inside the apply worker's transaction, so it
// lands in commit order, before the changes that use it. ddl_source.sql and
// ddl_target.sql hold the two sides and say what is replayed.

// DDLSchema holds replicator's own objects on both sides; the copy, the
// catalog and verify leave it out.
const DDLSchema = "replicator_ddl"

// Event triggers of the capture (database objects outside any schema).
var ddlEventTriggers = []string{"replicator_ddl_end", "replicator_ddl_drop"}

// DDLEventTriggers names the capture's event triggers, which the copy
// leaves out.
func DDLEventTriggers() []string { return append([]string(nil), ddlEventTriggers...) }

var (
	//go:embed ddl_common.sql
	ddlCommonSQL string
	//go:embed ddl_source.sql
	ddlSourceSQL string
	//go:embed ddl_target.sql
	ddlTargetSQL string
)

// CaptureSQL is the source side's SQL: the queue and the capture's
// functions, without event triggers or publication (for reading, and for
// testing the functions alone).
func CaptureSQL() string { return ddlCommonSQL + ddlSourceSQL }

// DDLMode says whether schema changes are replicated.
type DDLMode string

const (
	// DDLAuto replicates them where the source role may create event
	// triggers, and says so where it may not.
	DDLAuto DDLMode = ""
	DDLOn   DDLMode = "on"
	DDLOff  DDLMode = "off"
)

// Decide says whether to capture on source si. Asked for explicitly and
// impossible, it is a problem found before any change; left to auto, a
// warning.
func (m DDLMode) Decide(si *catalog.Server) (capture bool, warning string, err error) {
	switch {
	case m == DDLOff:
		return false, "", nil
	case si.EventTriggers:
		return true, "", nil
	case m == DDLOn:
		return false, "", &problem.Problem{
			Msg: fmt.Sprintf("--replicate-ddl needs an event trigger on the source, and role %s may not create one", si.User),
			Fix: "connect to the source as a superuser (on RDS and Aurora: a member of rds_superuser), or pass --replicate-ddl=false and apply schema changes to both sides yourself"}
	}
	return false, fmt.Sprintf("schema changes on the source are not replicated: role %s may not create event triggers (a superuser or rds_superuser may); apply them to the target yourself, and replicator status names any table that differs", si.User), nil
}

// InstallCapture creates the queue and the event triggers in the source
// database (conn) and publishes the queue; it must run before the slot is
// created, so that each later change is either in the slot's snapshot or
// in the queue. addNewTables: tables created later join publication pub
// (unless table filters choose what is published). The functions belong
// to the role conn is (the sync role): they write the queue, which nobody
// else may.
func InstallCapture(ctx context.Context, conn *pgx.Conn, pub string, addNewTables bool) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	// The event triggers go first, so that installing is not captured.
	for _, name := range ddlEventTriggers {
		if _, err := tx.Exec(ctx, "DROP EVENT TRIGGER IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return err
		}
	}
	if _, err := tx.Exec(ctx, ddlCommonSQL+ddlSourceSQL); err != nil {
		return fmt.Errorf("install schema change capture: %w", err)
	}
	if _, err := tx.Exec(ctx, "DELETE FROM replicator_ddl.config"); err != nil {
		return err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO replicator_ddl.config VALUES ($1, $2)", pub, addNewTables); err != nil {
		return err
	}
	for i, event := range []string{"ddl_command_end", "sql_drop"} {
		name := pgx.Identifier{ddlEventTriggers[i]}.Sanitize()
		if _, err := tx.Exec(ctx, "CREATE EVENT TRIGGER "+name+" ON "+event+" EXECUTE FUNCTION replicator_ddl.capture()"); err != nil {
			return fmt.Errorf("create event trigger: %w", err)
		}
	}
	var published bool
	if err := tx.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication_rel pr JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
	  WHERE p.pubname = $1 AND pr.prrelid = 'replicator_ddl.queue'::regclass)`, pub).Scan(&published); err != nil {
		return err
	}
	if !published {
		if _, err := tx.Exec(ctx, "ALTER PUBLICATION "+pgx.Identifier{pub}.Sanitize()+" ADD TABLE replicator_ddl.queue"); err != nil {
			return fmt.Errorf("publish the schema change queue: %w", err)
		}
	}
	return tx.Commit(ctx)
}

// InstallApply creates the queue and its applying trigger in the target
// database (conn), before the subscription: the subscription's owner owns
// them, so that the apply worker runs the trigger as itself.
func InstallApply(ctx context.Context, conn *pgx.Conn) error {
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	if _, err := tx.Exec(ctx, ddlCommonSQL+ddlTargetSQL); err != nil {
		return fmt.Errorf("install schema change apply: %w", err)
	}
	return tx.Commit(ctx)
}

// CaptureOutdated says whether the source database (conn) has a schema
// change capture that an older replicator installed (0.5, whose functions
// resolved names through the session's search_path and let anyone write
// the queue): sync upgrades it in place.
func CaptureOutdated(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var old bool
	err := conn.QueryRow(ctx, `SELECT pg_catalog.to_regclass('replicator_ddl.queue') IS NOT NULL
	  AND pg_catalog.to_regprocedure('replicator_ddl.record(text,text,text)') IS NULL
	  AND EXISTS (SELECT 1 FROM pg_catalog.pg_event_trigger WHERE evtname = ANY ($1))`, ddlEventTriggers).Scan(&old)
	return old, err
}

// UpgradeCapture replaces an outdated capture by this version's, keeping
// the queue: the target's side first (the queue gains a column), then the
// source's, each in one transaction, so that no change goes uncaptured.
func UpgradeCapture(ctx context.Context, src, dst *pgx.Conn, pub string, addNewTables bool) error {
	if err := InstallApply(ctx, dst); err != nil {
		return fmt.Errorf("target: %w", err)
	}
	if err := InstallCapture(ctx, src, pub, addNewTables); err != nil {
		return fmt.Errorf("source: %w", err)
	}
	return nil
}

// RemoveCapture drops the event triggers, then the queue (which leaves the
// publication with it). Missing is fine.
func RemoveCapture(ctx context.Context, conn *pgx.Conn) (bool, error) {
	var had bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_namespace WHERE nspname = $1)", DDLSchema).Scan(&had); err != nil {
		return false, err
	}
	for _, name := range ddlEventTriggers {
		if _, err := conn.Exec(ctx, "DROP EVENT TRIGGER IF EXISTS "+pgx.Identifier{name}.Sanitize()); err != nil {
			return false, fmt.Errorf("drop event trigger %s: %w", name, err)
		}
	}
	if _, err := conn.Exec(ctx, "DROP SCHEMA IF EXISTS "+pgx.Identifier{DDLSchema}.Sanitize()+" CASCADE"); err != nil {
		return false, fmt.Errorf("drop schema %s: %w", DDLSchema, err)
	}
	return had, nil
}

// RemoveApply drops the target's queue and trigger. Missing is fine.
func RemoveApply(ctx context.Context, conn *pgx.Conn) (bool, error) {
	return RemoveCapture(ctx, conn) // the same objects, without event triggers
}
