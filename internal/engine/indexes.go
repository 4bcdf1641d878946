package engine

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/retry"
)

// indexTask builds one index of a table, or (index nil) adds the table's key
// constraints once all its indexes exist.
type indexTask struct {
	table *tableWork
	index *catalog.Index
	// counted: this task's index has been subtracted from the table's remaining
	// ones; last: it was the last, so the constraints are this task's too.
	counted, last bool
}

// enqueueIndexes queues the CREATE INDEX of every index of the table not built
// yet. CREATE INDEX takes a SHARE lock, so a table's indexes build concurrently;
// the constraints that need ACCESS EXCLUSIVE come after, and are cheap because
// they reuse the indexes just built.
func (r *run) enqueueIndexes(w *dbWork, t *tableWork, ch chan<- indexTask) {
	var todo []*catalog.Index
	for i := range t.indexes {
		ix := &t.indexes[i]
		if (ix.Constraint == nil || ix.Constraint.Type != 'x') && !r.cp.done(keyIndex(w.name, ix.Name)) {
			todo = append(todo, ix)
		}
	}
	t.mu.Lock()
	t.indexesLeft = len(todo)
	t.mu.Unlock()
	if len(todo) == 0 {
		if t.hasConstraints() && !r.cp.done(keyConstraints(w.name, t.Name)) {
			ch <- indexTask{table: t}
			return
		}
		r.analyzeLater(w, t)
		return
	}
	for _, ix := range todo {
		ch <- indexTask{table: t, index: ix}
	}
}

func (t *tableWork) hasConstraints() bool {
	for _, ix := range t.indexes {
		if ix.Constraint != nil {
			return true
		}
	}
	return false
}

// span tracks the wall-clock extent of overlapping work.
type span struct {
	mu          sync.Mutex
	first, last time.Time
}

func (s *span) add(start, end time.Time) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() || start.Before(s.first) {
		s.first = start
	}
	if end.After(s.last) {
		s.last = end
	}
}

func (s *span) seconds() float64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.first.IsZero() {
		return 0
	}
	return s.last.Sub(s.first).Seconds()
}

// indexer is one index worker's target session.
type indexer struct {
	r        *run
	w        *dbWork
	dst      *pgx.Conn
	parallel bool // the session's max_parallel_maintenance_workers is the server's
}

func (ix *indexer) ensure(ctx context.Context) error {
	if ix.dst != nil {
		return nil
	}
	dst, err := ix.w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	ix.dst, ix.parallel = dst, true
	return targetSession(ctx, dst, "; SET maintenance_work_mem = "+quoteLiteral(ix.r.opts.MaintenanceWorkMem))
}

func (ix *indexer) reset() {
	if ix.dst != nil {
		ix.dst.Close(context.Background())
		ix.dst = nil
	}
}

// indexFeed hands index tasks to the index workers: those the copiers send,
// and those of workers that left. A target out of sessions (SQLSTATE 53300)
// costs one index worker at once, as it costs a copier, rather than every
// worker retrying for minutes; the last one stays, so no task is left behind.
type indexFeed struct {
	ch   <-chan indexTask
	wake chan struct{} // a task was given back
	mu   sync.Mutex
	back []indexTask
	live int
}

func newIndexFeed(ch <-chan indexTask, workers int) *indexFeed {
	return &indexFeed{ch: ch, wake: make(chan struct{}, 1), live: workers}
}

// next is the next task; ok is false once none is left (the worker then
// leaves) or ctx is done.
func (f *indexFeed) next(ctx context.Context) (task indexTask, ok bool) {
	for {
		f.mu.Lock()
		if len(f.back) > 0 {
			task, f.back = f.back[0], f.back[1:]
			f.mu.Unlock()
			return task, true
		}
		f.mu.Unlock()
		select {
		case task, open := <-f.ch:
			if open {
				return task, true
			}
			// Under the lock that giveBack takes: a task given back by
			// a worker that saw this one live is seen here.
			f.mu.Lock()
			if len(f.back) > 0 {
				f.mu.Unlock()
				continue
			}
			f.live--
			f.mu.Unlock()
			return indexTask{}, false
		case <-f.wake:
		case <-ctx.Done():
			return indexTask{}, false
		}
	}
}

// giveBack hands the task to the other workers and counts its worker out,
// unless it is the last one; n is how many workers remain.
func (f *indexFeed) giveBack(task indexTask) (n int, ok bool) {
	f.mu.Lock()
	defer f.mu.Unlock()
	if f.live <= 1 {
		return f.live, false
	}
	f.back = append([]indexTask{task}, f.back...)
	f.live--
	select {
	case f.wake <- struct{}{}:
	default:
	}
	return f.live, true
}

func (r *run) indexWorker(ctx context.Context, w *dbWork, feed *indexFeed, sp *span) error {
	ix := &indexer{r: r, w: w}
	defer ix.reset()
	if err := w.ahead.wait(ctx); err != nil {
		return err
	}
	for {
		task, ok := feed.next(ctx)
		if !ok {
			return ctx.Err()
		}
		t := task.table
		start := time.Now()
		what := "constraints on " + t.Name.String()
		if task.index != nil {
			what = "index " + task.index.Name.String()
		}
		var left bool
		err := retry.Do(ctx, r.opts.Retry, func(err error, wait time.Duration) {
			r.retrying(w.name, "%s failed (%s); retrying in %s", what, oneLine(err), wait.Round(time.Millisecond))
		}, func() error {
			err := ix.once(ctx, &task)
			if err != nil {
				ix.reset()
				if tooManyConnections(err) {
					if n, ok := feed.giveBack(task); ok {
						r.warn(w.name, "%s: %s: building indexes with %d connection(s) from now on", what, oneLine(err), n)
						left = true
						return nil
					}
				}
			}
			return err
		})
		if left {
			return nil
		}
		if err != nil {
			if p := diskFull(err, "building "+what); p != nil {
				return p
			}
			return fmt.Errorf("%s: %w", what, err)
		}
		end := time.Now()
		sp.add(start, end)
		t.mu.Lock()
		t.indexSeconds += end.Sub(start).Seconds()
		t.mu.Unlock()
	}
}

// once builds one index (then, if it was the table's last, the constraints).
func (ix *indexer) once(ctx context.Context, task *indexTask) error {
	if err := ix.ensure(ctx); err != nil {
		return err
	}
	r, w, t := ix.r, ix.w, task.table
	if task.index != nil && !task.counted {
		// While tables are still copying every core is busy: parallel index
		// workers would only add coordination. Once the copies are done, the
		// last index builds may use them.
		if want := w.copying.Load() == 0; want != ix.parallel {
			stmt := "SET max_parallel_maintenance_workers = 0"
			if want {
				stmt = "RESET max_parallel_maintenance_workers"
			}
			if err := exec(ctx, ix.dst, stmt); err != nil {
				return err
			}
			ix.parallel = want
		}
		if err := ix.createIndex(ctx, task.index); err != nil {
			return err
		}
		if err := r.cp.set(ctx, keyIndex(w.name, task.index.Name), checkpoint.Done); err != nil {
			return err
		}
		t.mu.Lock()
		t.indexesLeft--
		task.counted, task.last = true, t.indexesLeft == 0
		t.mu.Unlock()
	}
	if task.index != nil && !task.last {
		return nil
	}
	if t.hasConstraints() {
		if err := addConstraints(ctx, ix.dst, t); err != nil {
			return err
		}
		if err := r.cp.set(ctx, keyConstraints(w.name, t.Name), checkpoint.Done); err != nil {
			return err
		}
	}
	r.analyzeLater(w, t)
	return nil
}

// analyzeLater hands a table whose rows, indexes and constraints are all in
// to the database's analyzer (expression indexes get their statistics too).
func (r *run) analyzeLater(w *dbWork, t *tableWork) {
	if w.analyze != nil && !r.cp.done(keyAnalyze(w.name, t.Name)) {
		w.analyze <- t
	}
}

// analyzer runs ANALYZE on each table it is handed, in one target session,
// while other tables still copy and index: a copy that says it is done is
// ready for queries. A table the role may not analyze is a warning, not a
// failed copy.
func (r *run) analyzer(ctx context.Context, w *dbWork, sp *span, count *int, sum *float64) error {
	// As the index workers: the target's tables exist once pre-data is in.
	if err := w.ahead.wait(ctx); err != nil {
		return err
	}
	var dst *pgx.Conn
	defer func() {
		if dst != nil {
			dst.Close(context.Background())
		}
	}()
	for t := range w.analyze {
		if err := ctx.Err(); err != nil {
			return err
		}
		start := time.Now()
		var skipped string
		// A lost connection or a restarting target is retried as a copy is;
		// anything else (a permission, a table gone) leaves it to the user.
		err := retry.Do(ctx, r.opts.Retry, func(err error, wait time.Duration) {
			r.retrying(w.name, "ANALYZE %s failed (%s); retrying in %s", t.Name, oneLine(err), wait.Round(time.Millisecond))
		}, func() error {
			if dst == nil {
				conn, err := w.dst.Connect(ctx)
				if err != nil {
					return err
				}
				dst = conn
				if err := targetSession(ctx, dst, "; SET maintenance_work_mem = "+quoteLiteral(r.opts.MaintenanceWorkMem)); err != nil {
					return dropOnError(&dst, err)
				}
			}
			may, err := catalog.MayAnalyze(ctx, dst, t.Name.Quoted())
			if err != nil {
				return dropOnError(&dst, err)
			}
			if !may {
				skipped = "only its owner may"
				return nil
			}
			return dropOnError(&dst, exec(ctx, dst, "ANALYZE "+t.Name.Quoted()))
		})
		if ctx.Err() != nil {
			return ctx.Err()
		}
		if retry.Transient(err) {
			// Retried until the policy gave up: the target is gone, and
			// every table left would wait as long.
			return fmt.Errorf("ANALYZE %s: %w", t.Name, err)
		}
		if err != nil {
			r.info(w.name, "warning: ANALYZE %s failed (%s): run it on the target before heavy queries", t.Name, oneLine(err))
			continue
		}
		if skipped != "" {
			r.info(w.name, "warning: ANALYZE %s skipped (%s): run it on the target before heavy queries", t.Name, skipped)
			continue
		}
		end := time.Now()
		sp.add(start, end)
		*count++
		*sum += end.Sub(start).Seconds()
		if err := r.cp.set(ctx, keyAnalyze(w.name, t.Name), checkpoint.Done); err != nil {
			return err
		}
	}
	return nil
}

// dropOnError closes the analyzer's session after a failure (the next
// attempt opens a new one) and passes the failure on.
func dropOnError(dst **pgx.Conn, err error) error {
	if err != nil && *dst != nil {
		(*dst).Close(context.Background())
		*dst = nil
	}
	return err
}

// createIndex builds an index unless an earlier attempt already did (its session
// may have finished the build after the client was gone).
func (ix *indexer) createIndex(ctx context.Context, idx *catalog.Index) error {
	exists, err := relationExists(ctx, ix.dst, idx.Name)
	if err != nil || exists {
		return err
	}
	err = exec(ctx, ix.dst, idx.Def)
	var pgErr *pgconn.PgError
	// 42P07, or 23505 on pg_class when an earlier attempt's build committed
	// while this one ran.
	if errors.As(err, &pgErr) && (pgErr.Code == "42P07" || pgErr.Code == "23505") {
		if exists, err2 := relationExists(ctx, ix.dst, idx.Name); err2 == nil && exists {
			return nil
		}
	}
	return err
}

func relationExists(ctx context.Context, conn *pgx.Conn, n catalog.Name) (bool, error) {
	var exists bool
	err := conn.QueryRow(ctx, "SELECT pg_catalog.to_regclass($1) IS NOT NULL", n.Quoted()).Scan(&exists)
	return exists, err
}

// addConstraints attaches primary key and unique constraints to the indexes built
// for them (ADD CONSTRAINT ... USING INDEX, a catalog change) and adds exclusion
// constraints, which build their own index. Constraints already there (from an
// interrupted run) are left as they are.
func addConstraints(ctx context.Context, dst *pgx.Conn, t *tableWork) error {
	for _, ix := range t.indexes {
		c := ix.Constraint
		if c == nil {
			continue
		}
		table := t.Name.Quoted()
		var exists bool
		if err := dst.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_constraint WHERE conrelid = $1::regclass AND conname = $2)",
			table, c.Name).Scan(&exists); err != nil {
			return err
		}
		if exists {
			continue
		}
		name := pgx.Identifier{c.Name}.Sanitize()
		if c.Type == 'x' {
			if err := exec(ctx, dst, fmt.Sprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s", table, name, c.Def)); err != nil {
				return fmt.Errorf("add constraint %s on %s: %w", c.Name, t.Name, err)
			}
			continue
		}
		kind := "UNIQUE"
		if c.Type == 'p' {
			kind = "PRIMARY KEY"
		}
		var opts []string
		if c.Deferrable {
			opts = append(opts, "DEFERRABLE")
		}
		if c.Deferred {
			opts = append(opts, "INITIALLY DEFERRED")
		}
		stmt := fmt.Sprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s USING INDEX %s %s",
			table, name, kind, pgx.Identifier{ix.Name.Name}.Sanitize(), strings.Join(opts, " "))
		if err := exec(ctx, dst, stmt); err != nil {
			if retry.Transient(err) {
				return err
			}
			// Should the index not qualify, fall back to the constraint's own
			// definition, which builds the index again.
			drop := "DROP INDEX " + ix.Name.Quoted()
			add := fmt.Sprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s", table, name, c.Def)
			if err2 := exec(ctx, dst, drop+"; "+add); err2 != nil {
				return fmt.Errorf("add constraint %s on %s: %w", c.Name, t.Name, err)
			}
		}
	}
	return nil
}
