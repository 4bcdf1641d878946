package replication

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"
)

// What "applied" means here. A subscriber reports a position to the source's
// slot (confirmed_flush_lsn) only once every transaction that committed before
// it has been applied and flushed on the target: the walsender sends a
// transaction when it decodes its commit, the apply worker applies in order,
// and it reports a position past a transaction it has applied only when that
// transaction's local commit is flushed. The distance from the slot's
// position to the source's current WAL says nothing, though: one commit
// record a few bytes ahead can carry a quarter of a million rows. So the
// only sound question is "has the target reached the position the source
// had when I asked?", asked with a position past every commit made so far
// (CommittedLSN).
//
// A second witness, on the target: the apply worker records in
// pg_stat_subscription.latest_end_lsn the position of each keepalive it
// processes, and it processes messages in order, so a keepalive at or past
// a position means every transaction committed before it was applied. The
// slot's confirmed position can lag by a status interval (10 s) when the
// target's last commits were not yet flushed as it answered; the keepalive
// comes at once. Applied waits for whichever witness says so first.

// CommittedLSN is a source position past every transaction committed so
// far. The insert position is, but the walsender decodes only flushed WAL,
// and the WAL of a transaction still open (not committed) may stay
// unflushed for seconds: asking for the insert position would wait for it.
// A commit is flushed at once (synchronous) or by the WAL writer within a
// few wal_writer_delay (asynchronous, and aborts). So: the flush position,
// once it has passed the insert position or the WAL writer has had that
// long (3 × wal_writer_delay, at most 3 s).
func CommittedLSN(ctx context.Context, conn *pgx.Conn) (string, error) {
	var insert string
	var delayMS int
	if err := conn.QueryRow(ctx, `SELECT pg_catalog.pg_current_wal_insert_lsn()::text,
	  (SELECT setting::int FROM pg_catalog.pg_settings WHERE name = 'wal_writer_delay')`).Scan(&insert, &delayMS); err != nil {
		return "", err
	}
	deadline := time.Now().Add(min(3*time.Duration(delayMS)*time.Millisecond, 3*time.Second))
	for {
		var flush string
		var past bool
		if err := conn.QueryRow(ctx, `SELECT pg_catalog.pg_current_wal_flush_lsn()::text, pg_catalog.pg_current_wal_flush_lsn() >= $1::pg_lsn`, insert).Scan(&flush, &past); err != nil {
			return "", err
		}
		if past {
			return insert, nil
		}
		if time.Now().After(deadline) {
			return flush, nil
		}
		select {
		case <-ctx.Done():
			return "", ctx.Err()
		case <-time.After(20 * time.Millisecond):
		}
	}
}

// Reached waits up to wait for slot's subscriber to confirm lsn, and says
// whether it did and how long that took. A slot that is gone is an error.
func Reached(ctx context.Context, src *pgx.Conn, slot, lsn string, wait time.Duration) (bool, time.Duration, error) {
	start := time.Now()
	for {
		var ok bool
		err := src.QueryRow(ctx, `SELECT COALESCE(confirmed_flush_lsn >= $2::pg_lsn, false) FROM pg_catalog.pg_replication_slots WHERE slot_name = $1`, slot, lsn).Scan(&ok)
		if errors.Is(err, pgx.ErrNoRows) {
			return false, 0, fmt.Errorf("the replication slot %s is gone", slot)
		}
		if err != nil {
			return false, 0, err
		}
		took := time.Since(start)
		if ok || took >= wait {
			return ok, took, nil
		}
		select {
		case <-ctx.Done():
			return false, took, ctx.Err()
		case <-time.After(min(50*time.Millisecond, wait-took)):
		}
	}
}

// Applied waits up to wait until the target dst has applied everything the
// source src committed before lsn, through n's slot and subscription.
func Applied(ctx context.Context, src, dst *pgx.Conn, n Names, lsn string, wait time.Duration) (bool, time.Duration, error) {
	start := time.Now()
	for {
		ok, _, err := Reached(ctx, src, n.Slot, lsn, 0)
		if err != nil {
			return false, 0, err
		}
		if !ok {
			err := dst.QueryRow(ctx, `SELECT COALESCE(bool_or(st.latest_end_lsn >= $2::pg_lsn), false) FROM pg_catalog.pg_stat_subscription st
			  JOIN pg_catalog.pg_subscription s ON s.oid = st.subid
			  WHERE s.subname = $1 AND s.subdbid = (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database())
			    AND st.relid IS NULL`, n.Subscription, lsn).Scan(&ok)
			if err != nil {
				return false, 0, err
			}
		}
		took := time.Since(start)
		if ok || took >= wait {
			return ok, took, nil
		}
		select {
		case <-ctx.Done():
			return false, took, ctx.Err()
		case <-time.After(min(50*time.Millisecond, wait-took)):
		}
	}
}

// appliedLSN is the source position up to which the target has applied
// transactions: the subscription's replication origin ("pg_" and its OID).
// Only a superuser may read it (pg_replication_origin_status is revoked from
// PUBLIC); ok is false for other roles.
func appliedLSN(ctx context.Context, dst *pgx.Conn, subOID uint32) (lsn string, ok bool, err error) {
	var readable bool
	if err := dst.QueryRow(ctx, "SELECT pg_catalog.has_table_privilege('pg_catalog.pg_replication_origin_status', 'SELECT')").Scan(&readable); err != nil || !readable {
		return "", false, err
	}
	var l *string
	err = dst.QueryRow(ctx, `SELECT remote_lsn::text FROM pg_catalog.pg_replication_origin_status WHERE external_id = 'pg_' || $1::text`, fmt.Sprint(subOID)).Scan(&l)
	if errors.Is(err, pgx.ErrNoRows) || l == nil {
		return "", false, nil
	}
	return *l, err == nil, err
}

// lsnDiff is a - b in bytes, computed by the server.
func lsnDiff(ctx context.Context, conn *pgx.Conn, a, b string) (int64, error) {
	var d int64
	err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_wal_lsn_diff($1::pg_lsn, $2::pg_lsn)::int8", a, b).Scan(&d)
	return d, err
}

// AppliedLSN is the source position up to which the target database's
// subscription sub has applied transactions; ok is false when it has none
// or the role may not read replication origins.
func AppliedLSN(ctx context.Context, dst *pgx.Conn, sub string) (lsn string, ok bool, err error) {
	var oid uint32
	err = dst.QueryRow(ctx, `SELECT s.oid FROM pg_catalog.pg_subscription s JOIN pg_catalog.pg_database d ON d.oid = s.subdbid
	  WHERE s.subname = $1 AND d.datname = pg_catalog.current_database()`, sub).Scan(&oid)
	if errors.Is(err, pgx.ErrNoRows) {
		return "", false, nil
	}
	if err != nil {
		return "", false, err
	}
	return appliedLSN(ctx, dst, oid)
}
