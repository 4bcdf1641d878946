package replication

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
)

// Tables that join a subscription after the copy (new tables the source
// created, or tables a refresh brought in) get their rows from the
// subscription's own table sync, which leaves them without planner
// statistics until autovacuum comes round: init analyzed what it copied, and
// these must be ready to serve too.

// joinedNeverAnalyzed lists the target's tables of the subscription whose
// table sync finished (state r with a sync position: a table subscribed with
// copy_data = false has none) and that no ANALYZE ran on: autovacuum's may
// have, on its own schedule, but the run says what it did itself.
const joinedNeverAnalyzed = `SELECT pg_catalog.format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_subscription s
JOIN pg_catalog.pg_subscription_rel r ON r.srsubid OPERATOR(pg_catalog.=) s.oid
JOIN pg_catalog.pg_class c ON c.oid OPERATOR(pg_catalog.=) r.srrelid
JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace
LEFT JOIN pg_catalog.pg_stat_all_tables st ON st.relid OPERATOR(pg_catalog.=) c.oid
WHERE s.subname OPERATOR(pg_catalog.=) $1
  AND s.subdbid OPERATOR(pg_catalog.=) (SELECT oid FROM pg_catalog.pg_database WHERE datname OPERATOR(pg_catalog.=) pg_catalog.current_database())
  AND r.srsubstate OPERATOR(pg_catalog.=) 'r' AND r.srsublsn IS NOT NULL
  AND st.last_analyze IS NULL
ORDER BY 1`

// AnalyzeJoined runs ANALYZE on the tables of the subscription that its
// table sync copied and that have no statistics yet (dst is a session on the
// subscriber's database). It returns the tables analyzed, and a warning per
// table the role may not analyze (the copy stands; the fix is to run it as
// the owner).
func AnalyzeJoined(ctx context.Context, dst *pgx.Conn, subscription string) (analyzed, warnings []string, err error) {
	rows, err := dst.Query(ctx, joinedNeverAnalyzed, subscription)
	if err != nil {
		return nil, nil, fmt.Errorf("target: tables the subscription copied: %w", err)
	}
	tables, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return nil, nil, fmt.Errorf("target: tables the subscription copied: %w", err)
	}
	analyzed, warnings, err = analyzeTables(ctx, dst, tables)
	return analyzed, warnings, err
}

// analyzeTables runs ANALYZE on each of tables (already quoted): a table the
// role may not analyze is a warning, any other failure an error.
func analyzeTables(ctx context.Context, dst *pgx.Conn, tables []string) (analyzed, warnings []string, err error) {
	for _, t := range tables {
		may, err := catalog.MayAnalyze(ctx, dst, t)
		if err != nil {
			return analyzed, warnings, fmt.Errorf("target: %w", err)
		}
		if !may {
			warnings = append(warnings, fmt.Sprintf("ANALYZE %s: only its owner may: run it on the target as the owner before heavy queries", t))
			continue
		}
		if _, err := dst.Exec(ctx, "ANALYZE "+t); err != nil {
			var pgErr *pgconn.PgError
			if errors.As(err, &pgErr) && (pgErr.Code == "42501" || pgErr.Code == "42P01") {
				// Refused (a managed server's own rules), or dropped
				// since it was listed.
				warnings = append(warnings, fmt.Sprintf("ANALYZE %s: %s: run it on the target as the table's owner before heavy queries", t, pgErr.Message))
				continue
			}
			return analyzed, warnings, fmt.Errorf("target: ANALYZE %s: %w", t, err)
		}
		analyzed = append(analyzed, t)
	}
	return analyzed, warnings, nil
}

// AnalyzeJoinedOn is AnalyzeJoined with the target's address.
func AnalyzeJoinedOn(ctx context.Context, dst *conninfo.Endpoint, db string) (analyzed, warnings []string, err error) {
	ep, err := dst.WithDatabase(db)
	if err != nil {
		return nil, nil, err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, nil, err
	}
	defer conn.Close(context.Background())
	return AnalyzeJoined(ctx, conn, NamesFor(db).Subscription)
}
