package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/problem"
)

// SubscriptionExists reports whether the target database has the subscription.
func SubscriptionExists(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	var exists bool
	err := conn.QueryRow(ctx, `SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_subscription s
	  JOIN pg_catalog.pg_database d ON d.oid = s.subdbid WHERE s.subname = $1 AND d.datname = current_database())`, name).Scan(&exists)
	return exists, err
}

// CreateSubscription subscribes the target database to the publication through
// the existing slot, without copying data (the copy did that). source is how the
// target server reaches the source: the subscription connects from the target.
func CreateSubscription(ctx context.Context, conn *pgx.Conn, n Names, source *conninfo.Endpoint) error {
	return createSubscription(ctx, conn, n, source, "")
}

// CreateLocalOnlySubscription is CreateSubscription for replication that
// runs beside another in the opposite direction (cutover --reverse): only
// changes made on the publisher itself are applied (origin = none, from
// PostgreSQL 16), so that nothing goes round in a loop.
func CreateLocalOnlySubscription(ctx context.Context, conn *pgx.Conn, n Names, publisher *conninfo.Endpoint) error {
	return createSubscription(ctx, conn, n, publisher, ", origin = none")
}

func createSubscription(ctx context.Context, conn *pgx.Conn, n Names, source *conninfo.Endpoint, extra string) error {
	stmt := fmt.Sprintf("CREATE SUBSCRIPTION %s CONNECTION %s PUBLICATION %s WITH (create_slot = false, slot_name = %s, copy_data = false, enabled = true%s)",
		pgx.Identifier{n.Subscription}.Sanitize(), quote(source.SubscriptionConnString()),
		pgx.Identifier{n.Publication}.Sanitize(), quote(n.Slot), extra)
	_, err := conn.Exec(ctx, stmt)
	if err == nil {
		return nil
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) && strings.Contains(pgErr.Message, "could not connect to the publisher") {
		return &problem.Problem{
			Msg: fmt.Sprintf("the target server could not connect to the source at %s (the subscription connects from the target's side, not from this machine): %s",
				source.Address(), lastLine(pgErr.Message, source.Secrets())),
			Fix: "make the source reachable from the target's network, or pass --source-from-target with an address the target can use",
		}
	}
	return fmt.Errorf("create subscription: %s", lastLine(err.Error(), source.Secrets()))
}

// DropSubscription detaches the subscription from its slot and drops it; the
// slot itself is dropped on the source by the caller, so a target that cannot
// reach the source does not stop the clean-up.
func DropSubscription(ctx context.Context, conn *pgx.Conn, name string) (bool, error) {
	exists, err := SubscriptionExists(ctx, conn, name)
	if err != nil || !exists {
		return false, err
	}
	id := pgx.Identifier{name}.Sanitize()
	for _, stmt := range []string{
		"ALTER SUBSCRIPTION " + id + " DISABLE",
		"ALTER SUBSCRIPTION " + id + " SET (slot_name = NONE)",
		"DROP SUBSCRIPTION " + id,
	} {
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return false, fmt.Errorf("%s: %w", stmt, err)
		}
	}
	return true, nil
}

func quote(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// lastLine keeps an error to one line without secrets.
func lastLine(s string, secrets []string) string {
	s = strings.Join(strings.Fields(s), " ")
	for _, sec := range secrets {
		if sec != "" {
			s = strings.ReplaceAll(s, sec, "xxxxx")
		}
	}
	return s
}
