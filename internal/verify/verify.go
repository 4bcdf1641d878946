// Package verify compares the rows of a source and a target table by table: row
// counts and content hashes, computed by each server over ranges of the table's
// key, so that a difference is located (table, key range, and the keys
// themselves) while the client's memory stays flat whatever the table size.
package verify

import (
	"context"
	"fmt"
	"sort"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/progress"
)

// Options of a verification.
type Options struct {
	Source, Target *conninfo.Endpoint
	Filters        *filter.Rules
	// Jobs is how many tables are compared at once (default 4).
	Jobs int
	// RangeRows is the target number of rows per hashed range (default 100000).
	RangeRows int64
	Progress  progress.Sink
	// Snapshot, when set, is an exported source snapshot every comparison
	// reads in (a replication slot's, so that the result holds at its start).
	Snapshot string
	// Quick compares whole tables only: it says which differ, not where.
	Quick bool
}

// Result of a verification.
type Result struct {
	Tables    []TableResult `json:"tables"`
	Different int           `json:"different"`
	Seconds   float64       `json:"seconds"`
}

// TableResult is one table's comparison.
type TableResult struct {
	Database   string  `json:"database"`
	Table      string  `json:"table"`
	Match      bool    `json:"match"`
	SourceRows int64   `json:"source_rows"`
	TargetRows int64   `json:"target_rows"`
	Key        string  `json:"key,omitempty"` // what the ranges are over
	Ranges     int     `json:"ranges"`
	Diffs      []Diff  `json:"diffs,omitempty"`
	Note       string  `json:"note,omitempty"`
	Seconds    float64 `json:"seconds"`
}

// Diff is one range whose rows differ.
type Diff struct {
	Range      string   `json:"range"`
	SourceRows int64    `json:"source_rows"`
	TargetRows int64    `json:"target_rows"`
	Keys       []string `json:"keys,omitempty"` // keys whose rows differ (a few)
}

// ErrDifferent is returned (wrapped) when any table differs.
type ErrDifferent struct{ Tables int }

func (e *ErrDifferent) Error() string {
	return fmt.Sprintf("%d table(s) differ between source and target", e.Tables)
}

// Run verifies every selected table of every selected database.
func Run(ctx context.Context, opts Options) (*Result, error) {
	if opts.Jobs <= 0 {
		opts.Jobs = 4
	}
	if opts.RangeRows <= 0 {
		opts.RangeRows = 100000
	}
	if opts.Filters == nil {
		opts.Filters = &filter.Rules{}
	}
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	start := time.Now()
	conn, err := opts.Source.Connect(ctx)
	if err != nil {
		return nil, err
	}
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_catalog.pg_database WHERE NOT datistemplate AND datallowconn ORDER BY 1`)
	if err != nil {
		conn.Close(ctx)
		return nil, fmt.Errorf("source: list databases: %w", err)
	}
	dbs, err := pgx.CollectRows(rows, pgx.RowTo[string])
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	if err := checkNames(ctx, opts, dbs); err != nil {
		return nil, err
	}
	res := &Result{}
	for _, db := range dbs {
		if !opts.Filters.Database(db) {
			continue
		}
		tables, err := Database(ctx, opts, db)
		if err != nil {
			return nil, fmt.Errorf("database %s: %w", db, err)
		}
		res.Tables = append(res.Tables, tables...)
	}
	for _, t := range res.Tables {
		if !t.Match {
			res.Different++
		}
	}
	res.Seconds = time.Since(start).Seconds()
	if res.Different > 0 {
		return res, &ErrDifferent{Tables: res.Different}
	}
	return res, nil
}

// job is one table to compare.
type job struct {
	db    string
	table *catalog.Table
	pred  string
}

// Database verifies the selected tables of one database (Run's defaults do
// not apply: Jobs and RangeRows must be set).
func Database(ctx context.Context, opts Options, db string) ([]TableResult, error) {
	if opts.Progress == nil {
		opts.Progress = progress.Discard
	}
	src, err := opts.Source.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	dst, err := opts.Target.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	conn, err := src.Connect(ctx)
	if err != nil {
		return nil, err
	}
	tables, err := catalog.Tables(ctx, conn)
	conn.Close(ctx)
	if err != nil {
		return nil, err
	}
	var jobs []job
	var out []TableResult
	for _, t := range tables {
		d := opts.Filters.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name)
		if !d.Copy || t.Kind != 'r' || t.ExtensionConfig && opts.Filters.ExtensionExcluded(db, t.Extension) {
			continue
		}
		if d.SchemaOnly {
			out = append(out, TableResult{Database: db, Table: t.Name.String(), Match: true, Note: "schema only: rows not compared"})
			continue
		}
		pred := d.Predicate
		if t.ExtensionConfig && t.ExtensionCondition != "" {
			continue // rows created by the extension itself on each side
		}
		jobs = append(jobs, job{db: db, table: t, pred: pred})
	}
	// Biggest first: the long ones start early.
	sort.SliceStable(jobs, func(i, j int) bool { return jobs[i].table.Bytes > jobs[j].table.Bytes })

	var mu sync.Mutex
	ch := make(chan job)
	g, gctx := errgroup.WithContext(ctx)
	g.Go(func() error {
		defer close(ch)
		for _, j := range jobs {
			select {
			case ch <- j:
			case <-gctx.Done():
				return gctx.Err()
			}
		}
		return nil
	})
	for i := 0; i < min(opts.Jobs, len(jobs)); i++ {
		g.Go(func() error {
			s, err := newSides(gctx, src, dst, opts.Snapshot)
			if err != nil {
				return err
			}
			defer s.close()
			for j := range ch {
				opts.Progress.Emit(progress.Event{Time: time.Now(), Kind: progress.TableStarted, Database: db, Step: "verify", Table: j.table.Name.String()})
				r, err := s.compare(gctx, j, opts.RangeRows, opts.Quick)
				if err != nil {
					return fmt.Errorf("verify %s: %w", j.table.Name, err)
				}
				msg := "match"
				if !r.Match {
					msg = "differ"
				}
				opts.Progress.Emit(progress.Event{Time: time.Now(), Kind: progress.TableDone, Database: db, Step: "verify", Table: r.Table,
					Rows: r.SourceRows, Seconds: r.Seconds, Message: msg})
				mu.Lock()
				out = append(out, *r)
				mu.Unlock()
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return nil, err
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

// checkNames refuses filter patterns that match nothing, as a copy does: a
// verify that quietly compares less than asked would say "same" wrongly.
func checkNames(ctx context.Context, opts Options, dbs []string) error {
	warnings, err := opts.Filters.CheckDatabases(dbs)
	if err != nil {
		return err
	}
	var selected []string
	for _, db := range dbs {
		if opts.Filters.Database(db) {
			selected = append(selected, db)
		}
	}
	more, err := catalog.CheckFilters(ctx, opts.Source, selected, opts.Filters)
	if err != nil {
		return err
	}
	for _, w := range append(warnings, more...) {
		opts.Progress.Emit(progress.Event{Time: time.Now(), Kind: progress.Warning, Message: w})
	}
	return nil
}
