package replication

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/verify"
)

// A sync that starts after a plain copy starts at its new slot: what the
// source committed between the copy and the slot would never reach the
// target. closeGap compares every selected table at the slot's snapshot
// and copies again, in that snapshot, the ones that differ, so that the
// subscription starts from rows equal to the source's at its first change.

// gapCopySession makes row text the same on both sides of a text-format
// COPY, whatever the roles' own settings.
const gapCopySession = `SET DateStyle = ISO; SET IntervalStyle = postgres; SET extra_float_digits = 3;
SET TimeZone = 'UTC'; SET bytea_output = 'hex'; SET statement_timeout = 0; SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0; ` + catalog.NoTransactionTimeout

// gapTable is a table the source changed since the copy.
type gapTable struct {
	table     *catalog.Table
	predicate string
	// referenced: another table's foreign key points at it (TRUNCATE would
	// fail; DELETE would fire the key's actions without replica mode).
	referenced bool
	// triggers: it has enabled triggers of its own, which a plain DELETE
	// and COPY would fire on the target.
	triggers bool
}

// closeGap makes the target's tables of db equal to the source's at the slot's
// snapshot (src and dst are sessions on db, snapshot the slot's).
func (s *session) closeGap(ctx context.Context, db string, src, dst *pgx.Conn, snapshot string) error {
	if s.o.AcceptGap {
		s.o.Log(db, "warning: --accept-gap: changes the source committed between the copy and now are not on the target, and were not looked for (replicator verify finds them)")
		return nil
	}
	n := NamesFor(db)
	drift, err := ReadDrift(ctx, src, dst, n)
	if err != nil {
		return err
	}
	if len(drift) > 0 {
		d := drift[0]
		what := d.Table + ": " + d.Problem
		if d.Column != "" {
			what = d.Table + " column " + pgx.Identifier{d.Column}.Sanitize() + ": " + d.Problem
		}
		return &problem.Problem{Msg: fmt.Sprintf("the source's tables changed shape since the copy (%s; %d difference(s) in all): their rows cannot be compared",
			what, len(drift)), Fix: "copy again: replicator init --sync --drop-existing (or run " + strings.TrimSuffix(d.Fix, ";") + " on the target, and sync again)"}
	}
	srcEp, dstEp := s.o.Source.MustWithDatabase(db), s.o.Target.MustWithDatabase(db)
	s.o.Log(db, "comparing the tables with the source at the new slot's snapshot, so that no change made since the copy is lost (--accept-gap skips this)")
	results, err := verify.Database(ctx, verify.Options{Source: srcEp, Target: dstEp, Filters: s.o.Filters, Jobs: 4, RangeRows: 100000,
		Snapshot: snapshot, Quick: true}, db)
	if err != nil {
		return fmt.Errorf("compare with the source: %w", err)
	}
	changed, err := s.changedTables(ctx, db, src, dst, results)
	if err != nil {
		return err
	}
	if len(changed) == 0 {
		s.o.Log(db, fmt.Sprintf("checked %d table(s): none changed since the copy", len(results)))
		return nil
	}
	copied, err := recopy(ctx, srcEp, dstEp, snapshot, changed)
	if err != nil {
		return err
	}
	s.o.Log(db, fmt.Sprintf("%d of %d table(s) changed since the copy: copied them again at the slot's snapshot (%s)",
		len(changed), len(results), strings.Join(copied, ", ")))
	// Their statistics are the first copy's: the new rows may differ.
	names := make([]string, len(changed))
	for i, g := range changed {
		names[i] = g.table.Name.Quoted()
	}
	_, warnings, err := analyzeTables(ctx, dst, names)
	for _, w := range warnings {
		s.o.Log(db, "warning: "+w)
	}
	return err
}

// changedTables are the tables whose rows differ, with what copying them
// again needs on the target.
func (s *session) changedTables(ctx context.Context, db string, src, dst *pgx.Conn, results []verify.TableResult) ([]gapTable, error) {
	var differ []string
	for _, r := range results {
		if !r.Match {
			if r.Note != "" {
				return nil, &problem.Problem{Msg: fmt.Sprintf("table %s is %s", r.Table, r.Note), Fix: "copy again: replicator init --sync --drop-existing"}
			}
			differ = append(differ, r.Table)
		}
	}
	if len(differ) == 0 {
		return nil, nil
	}
	tables, err := catalog.Tables(ctx, src)
	if err != nil {
		return nil, err
	}
	byName := map[string]*catalog.Table{}
	for _, t := range tables {
		byName[t.Name.String()] = t
	}
	var out []gapTable
	for _, name := range differ {
		t := byName[name]
		if t == nil {
			return nil, fmt.Errorf("table %s: no longer on the source", name)
		}
		g := gapTable{table: t, predicate: predicateOf(s.o.Filters, db, t)}
		if err := dst.QueryRow(ctx, `SELECT
		  EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE contype = 'f' AND confrelid = $1::pg_catalog.regclass AND conrelid OPERATOR(pg_catalog.<>) confrelid),
		  EXISTS (SELECT 1 FROM pg_catalog.pg_trigger WHERE tgrelid = $1::pg_catalog.regclass AND NOT tgisinternal AND tgenabled OPERATOR(pg_catalog.<>) 'D')`,
			t.Name.Quoted()).Scan(&g.referenced, &g.triggers); err != nil {
			return nil, fmt.Errorf("target: table %s: %w", name, err)
		}
		out = append(out, g)
	}
	return out, nil
}

func predicateOf(rules *filter.Rules, db string, t *catalog.Table) string {
	return rules.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name).Predicate
}

// recopy replaces the changed tables' rows on the target with the source's
// at the snapshot, in one target transaction: all of them, or none. Replica
// mode keeps the target's foreign keys and triggers from firing, as for the
// subscription's own changes; a role that may not set it gets the tables
// that need it refused before any change.
func recopy(ctx context.Context, srcEp, dstEp *conninfo.Endpoint, snapshot string, tables []gapTable) ([]string, error) {
	src, err := srcEp.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer src.Close(context.Background())
	dst, err := dstEp.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer dst.Close(context.Background())
	for _, c := range []*pgx.Conn{src, dst} {
		if _, err := c.Exec(ctx, gapCopySession); err != nil {
			return nil, fmt.Errorf("prepare session: %w", err)
		}
	}
	replica := true
	if _, err := dst.Exec(ctx, "SET session_replication_role = replica"); err != nil {
		var pgErr *pgconn.PgError
		if !errors.As(err, &pgErr) || pgErr.Code != "42501" {
			return nil, fmt.Errorf("target: %w", err)
		}
		replica = false
	}
	if !replica {
		for _, g := range tables {
			if g.referenced || g.triggers {
				why := "other tables' foreign keys point at it"
				if !g.referenced {
					why = "it has triggers"
				}
				return nil, &problem.Problem{
					Msg: fmt.Sprintf("table %s changed since the copy and must be copied again, but %s and the target role may not set session_replication_role to keep them from firing", g.table.Name, why),
					Fix: "run sync as a superuser on the target (or GRANT SET ON PARAMETER session_replication_role TO the role, PostgreSQL 15+), or copy again with replicator init --sync --drop-existing; --accept-gap starts without these changes"}
			}
		}
	}
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "+catalog.ImportSnapshot(snapshot)); err != nil {
		return nil, fmt.Errorf("source: read in the slot's snapshot: %w", err)
	}
	tx, err := dst.Begin(ctx)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	defer tx.Rollback(context.Background())
	var copied []string
	for _, g := range tables {
		rows, err := copyTable(ctx, src, dst, g)
		if err != nil {
			return nil, fmt.Errorf("copy %s again: %w", g.table.Name, err)
		}
		copied = append(copied, fmt.Sprintf("%s: %d rows", g.table.Name, rows))
	}
	if err := tx.Commit(ctx); err != nil {
		return nil, fmt.Errorf("target: commit: %w", err)
	}
	return copied, nil
}

// copyTable empties one table on the target and copies the source's rows
// into it (dst is in a transaction, src in the snapshot).
func copyTable(ctx context.Context, src, dst *pgx.Conn, g gapTable) (int64, error) {
	t := g.table
	empty := "TRUNCATE ONLY " + t.Name.Quoted()
	if g.referenced {
		empty = "DELETE FROM ONLY " + t.Name.Quoted()
	}
	if _, err := dst.Exec(ctx, empty); err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	cols := make([]string, len(t.Columns))
	for i, c := range t.Columns {
		cols[i] = pgx.Identifier{c}.Sanitize()
	}
	list := strings.Join(cols, ", ")
	format := "text"
	if t.Binary {
		format = "binary"
	}
	where := ""
	if g.predicate != "" {
		where = " WHERE " + g.predicate
	}
	srcSQL := fmt.Sprintf("COPY (SELECT %s FROM ONLY %s%s) TO STDOUT (FORMAT %s)", list, t.Name.Quoted(), where, format)
	dstSQL := fmt.Sprintf("COPY %s (%s) FROM STDIN (FORMAT %s)", t.Name.Quoted(), list, format)
	if len(cols) == 0 {
		// A table without copyable columns still has rows.
		srcSQL = fmt.Sprintf("COPY (SELECT FROM ONLY %s%s) TO STDOUT (FORMAT %s)", t.Name.Quoted(), where, format)
		dstSQL = fmt.Sprintf("COPY %s FROM STDIN (FORMAT %s)", t.Name.Quoted(), format)
	}
	pr, pw := io.Pipe()
	srcErr := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, pw, srcSQL)
		pw.CloseWithError(err)
		srcErr <- err
	}()
	tag, err := dst.PgConn().CopyFrom(ctx, pr, dstSQL)
	pr.CloseWithError(errors.New("target COPY ended"))
	if e := <-srcErr; e != nil && err == nil {
		return 0, fmt.Errorf("source: %w", e)
	}
	if err != nil {
		return 0, fmt.Errorf("target: %w", err)
	}
	return tag.RowsAffected(), nil
}
