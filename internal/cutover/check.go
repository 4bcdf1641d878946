package cutover

import (
	"context"
	"fmt"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/verify"
)

// sequences copies every sequence's value: with writes fenced, it is exact.
func (r *run) sequences(ctx context.Context) error {
	for _, d := range r.dbs {
		seqs, err := catalog.Sequences(ctx, d.up)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		n, err := engine.SetSequences(ctx, d.down, seqs, r.o.SequenceMargin)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		r.o.Log(Sequences, d.db, fmt.Sprintf("%d sequence(s) set", n))
	}
	return nil
}

// check compares row counts of every replicated table on both sides (and
// with Verify a content hash), then makes sure no write reached the up side
// after the fence: the target must not have applied anything since the drain.
func (r *run) check(ctx context.Context) error {
	var diffs []string
	for _, d := range r.dbs {
		tables := 0
		for _, t := range d.tables {
			up, down, err := countBoth(ctx, d, t)
			if err != nil {
				return fmt.Errorf("database %s: count %s: %w", d.db, t.Quoted(), err)
			}
			if up != down {
				diffs = append(diffs, fmt.Sprintf("%s.%s has %d row(s) on the %s and %d on the %s", d.db, t.Quoted(), up, r.up.role, down, r.down.role))
			}
			tables++
		}
		if r.o.Verify {
			res, err := verify.Database(ctx, verify.Options{Source: r.up.ep, Target: r.down.ep, Filters: r.o.Filters, Jobs: 4, Quick: true}, d.db)
			if err != nil {
				return fmt.Errorf("database %s: verify: %w", d.db, err)
			}
			for _, t := range res {
				if !t.Match {
					diffs = append(diffs, fmt.Sprintf("%s.%s differs in content", d.db, t.Table))
				}
			}
		}
		r.o.Log(Check, d.db, fmt.Sprintf("%d table(s) match", tables))
	}
	if len(diffs) > 0 {
		return &problem.Problem{Msg: fmt.Sprintf("%d table(s) differ between the sides: %s", len(diffs), problem.ListSome(diffs, 5)),
			Fix: "see replicator verify for the rows, and replicator status for the replication's state"}
	}
	return r.noLateWrites(ctx)
}

// noLateWrites drains once more and checks that the down side applied no
// transaction since the first drain: one would be a write that reached the
// up side after the fence (a session that turned the read-only default off,
// or with --fence=none an application still running), which the switch
// would lose.
func (r *run) noLateWrites(ctx context.Context) error {
	for _, d := range r.dbs {
		lsn, err := replication.CommittedLSN(ctx, d.up)
		if err != nil {
			return err
		}
		ok, _, err := replication.Applied(ctx, d.up, d.down, d.n, lsn, r.o.SwitchTimeout)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if !ok {
			return fmt.Errorf("database %s: the %s applies changes made after the fence: writes still reach the %s", d.db, r.down.role, r.up.role)
		}
		applied, known, err := replication.AppliedLSN(ctx, d.down, d.n.Subscription)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if known && applied != d.applied {
			return &problem.Problem{Msg: fmt.Sprintf("database %s: writes reached the %s after the fence (the %s applied a transaction committed at %s, after %s)", d.db, r.up.role, r.down.role, applied, r.res.FenceLSN),
				Fix: "stop the writer (a session that sets default_transaction_read_only = off, or with --fence=none an application still running) and run cutover again"}
		}
	}
	return nil
}

// countBoth counts a table's rows on both sides at once.
func countBoth(ctx context.Context, d *dbRun, t catalog.Name) (up, down int64, err error) {
	q := "SELECT count(*) FROM " + t.Quoted()
	errc := make(chan error, 1)
	go func() { errc <- d.down.QueryRow(ctx, q).Scan(&down) }()
	err = d.up.QueryRow(ctx, q).Scan(&up)
	if derr := <-errc; err == nil {
		err = derr
	}
	return up, down, err
}
