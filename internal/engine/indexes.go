package engine

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
)

// indexTask builds one index of a table, or (index nil) adds the table's key
// constraints once all its indexes exist.
type indexTask struct {
	table *tableWork
	index *catalog.Index
}

// enqueueIndexes queues the CREATE INDEX of every index of the table. CREATE INDEX
// takes a SHARE lock, so a table's indexes build concurrently; the constraints
// that need ACCESS EXCLUSIVE come after, and are cheap because they reuse the
// indexes just built.
func (t *tableWork) enqueueIndexes(ch chan<- indexTask) {
	t.mu.Lock()
	n := 0
	for i := range t.indexes {
		if t.indexes[i].Constraint == nil || t.indexes[i].Constraint.Type != 'x' {
			n++
		}
	}
	t.indexesLeft = n
	t.mu.Unlock()
	if n == 0 {
		if len(t.indexes) > 0 {
			ch <- indexTask{table: t}
		}
		return
	}
	for i := range t.indexes {
		if ix := &t.indexes[i]; ix.Constraint == nil || ix.Constraint.Type != 'x' {
			ch <- indexTask{table: t, index: ix}
		}
	}
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

func (r *run) indexWorker(ctx context.Context, w *dbWork, tasks <-chan indexTask, sp *span) error {
	var dst *pgx.Conn
	parallel := true // the session's max_parallel_maintenance_workers is the server's
	defer func() {
		if dst != nil {
			dst.Close(context.Background())
		}
	}()
	for task := range tasks {
		if err := ctx.Err(); err != nil {
			return err
		}
		if dst == nil {
			var err error
			if dst, err = w.dst.Connect(ctx); err != nil {
				return err
			}
			if err := targetSession(ctx, dst, "; SET maintenance_work_mem = "+quoteLiteral(r.opts.MaintenanceWorkMem)); err != nil {
				return err
			}
		}
		t := task.table
		start := time.Now()
		// While tables are still copying every core is busy: parallel index
		// workers would only add coordination. Once the copies are done, the last
		// index builds may use them.
		if want := w.copying.Load() == 0; want != parallel {
			stmt := "SET max_parallel_maintenance_workers = 0"
			if want {
				stmt = "RESET max_parallel_maintenance_workers"
			}
			if err := exec(ctx, dst, stmt); err != nil {
				return err
			}
			parallel = want
		}
		if task.index != nil {
			if err := exec(ctx, dst, task.index.Def); err != nil {
				return fmt.Errorf("create index %s on %s: %w", task.index.Name.Name, t.Name, err)
			}
		}
		last := task.index == nil
		if task.index != nil {
			t.mu.Lock()
			t.indexesLeft--
			last = t.indexesLeft == 0
			t.mu.Unlock()
		}
		if last {
			if err := addConstraints(ctx, dst, t); err != nil {
				return err
			}
		}
		end := time.Now()
		sp.add(start, end)
		t.mu.Lock()
		t.indexSeconds += end.Sub(start).Seconds()
		t.mu.Unlock()
	}
	return nil
}

// addConstraints attaches primary key and unique constraints to the indexes built
// for them (ADD CONSTRAINT ... USING INDEX, a catalog change) and adds exclusion
// constraints, which build their own index.
func addConstraints(ctx context.Context, dst *pgx.Conn, t *tableWork) error {
	for _, ix := range t.indexes {
		c := ix.Constraint
		if c == nil {
			continue
		}
		table := t.Name.Quoted()
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
