package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/retry"
)

// dbWork is everything known about one database being copied.
type dbWork struct {
	name     string
	src, dst *conninfo.Endpoint
	encoding string

	// The exporting session and its snapshot; replaced if lost (but with sync).
	snapMu    sync.Mutex
	renewMu   sync.Mutex
	snapClose func()
	snapshot  string
	// exporter is the exporting session (no sync), until a reader takes it.
	exporter *pgx.Conn
	// slot is the replication slot whose snapshot the copy reads (sync).
	slot        string
	slotCreated bool

	// ahead lets the copy read the source before pre-data is restored.
	ahead *readAhead
	// postJobs is post-data's pg_restore --jobs, lowered when the target
	// runs out of sessions (0 until post-data runs: --index-jobs).
	postJobs int

	tables   []*tableWork
	excluded []catalog.Name // relations left out of the schema (pg_dump -T)
	// schemasOut: schemas left out by --include-schemas/--exclude-schemas
	// (pg_dump -N, by exact name).
	schemasOut []string
	earlyDump  chan error      // the schema dump started with the catalog's reading, if it was
	matviews   []catalog.Name  // materialized views populated on the source, refreshed after post-data
	skipPost   map[tocKey]bool // post-data archive entries not restored by pg_restore
	afterPost  []string        // statements run after post-data (NOT VALID foreign keys)
	sequences  []catalog.Sequence
	blobs      []uint32

	// copying counts table parts not yet copied.
	copying atomic.Int64
	// analyze receives each table once its rows, indexes and constraints
	// are in (nil: no ANALYZE).
	analyze chan *tableWork
}

// tableWork is one table of the dump: copied with or without data.
type tableWork struct {
	*catalog.Table
	decision filter.Decision
	copyData bool
	indexes  []catalog.Index
	progress *progress.Table

	mu           sync.Mutex
	partsLeft    int
	indexesLeft  int
	started      time.Time
	copySeconds  float64
	indexSeconds float64
	rows, bytes  int64
	parts        int
	resumed      int // parts found done by an earlier run
}

// tocKey names an archive entry by its catalog and object OIDs.
type tocKey struct{ catalog, oid uint32 }

// Catalog OIDs of the archive entries the copy handles itself or skips.
const (
	pgClassOID      = 1259
	pgConstraintOID = 2606
	pgRewriteOID    = 2618
	pgTriggerOID    = 2620
	pgPolicyOID     = 3256
	pgNamespaceOID  = 2615
	pgExtensionOID  = 3079
)

// copyDatabase copies one database in its snapshot: catalog, schema, rows and
// indexes, the rest of the schema, sequences, large objects. With sync, it
// hands the database over to replication.
func (r *run) copyDatabase(ctx context.Context, db *dbPlan) error {
	if r.cp.done(keyDB(db.name, "done")) {
		r.info(db.name, "already copied by the interrupted run: skipped")
		return nil
	}
	var w *dbWork
	if db.early != nil {
		w = db.early.take()
	}
	if w == nil {
		var err error
		if w, err = r.openDatabase(db); err != nil {
			return err
		}
	}
	defer w.closeSnapshot()
	if r.opts.Sync != nil {
		return r.copyAndHandOver(ctx, db, w)
	}
	if err := r.copySnapshot(ctx, db, w); err != nil {
		return err
	}
	return r.cp.set(ctx, keyDB(db.name, "done"), checkpoint.Done)
}

func (r *run) openDatabase(db *dbPlan) (*dbWork, error) {
	src, err := r.opts.Source.WithDatabase(db.name)
	if err != nil {
		return nil, err
	}
	dst, err := r.opts.Target.WithDatabase(db.name)
	if err != nil {
		return nil, err
	}
	return &dbWork{name: db.name, src: src, dst: dst, skipPost: map[tocKey]bool{}}, nil
}

// copyAndHandOver is the copy of a database that continues into logical
// replication: the publication and the slot first (the slot's snapshot is
// the copy's), then the copy, then the subscription, which streams from
// exactly where the snapshot ends. Any failure drops the slot and the
// publication, which would otherwise retain WAL on the source.
func (r *run) copyAndHandOver(ctx context.Context, db *dbPlan, w *dbWork) error {
	err := r.step(ctx, db.name, "publication", func() error { return r.preparePublication(ctx, w) })
	if err == nil {
		err = r.copySnapshot(ctx, db, w)
	}
	if err == nil {
		// Every reader is done with the snapshot: release the slot to the
		// subscription.
		w.closeSnapshot()
		err = r.step(ctx, db.name, "subscription", func() error { return r.subscribe(ctx, w) })
	}
	if err == nil {
		err = r.cp.set(ctx, keyDB(db.name, "done"), checkpoint.Done)
	}
	if err != nil {
		r.abandonSync(w)
	}
	return err
}

// copySnapshot runs the steps that read the database's snapshot.
func (r *run) copySnapshot(ctx context.Context, db *dbPlan, w *dbWork) error {
	var archive string
	cleanup, cancelDump := func() {}, func() {}
	if e := db.early; e != nil && e.w == w {
		// Started in preflight: the snapshot is exported, pg_dump runs.
		archive, cleanup, cancelDump = e.archive, e.cleanup, e.cancel
		db.early = nil
	} else {
		var err error
		if archive, cleanup, err = r.archiveFor(db); err != nil {
			return err
		}
		db.early = nil
	}
	archiveDir := filepath.Dir(archive)
	// Otherwise the schema dump runs while the catalog is read when no table
	// is left out (the dump's exclusions come from the catalog): against a
	// far source both are a string of round trips, pg_dump's the longer.
	startDump := w.earlyDump == nil && !r.opts.Filters.LeavesOutTables() && r.needDump(db, archive)
	dctx, cancel := context.WithCancel(ctx)
	defer func() {
		cancel()
		cancelDump()
		if w.earlyDump != nil {
			<-w.earlyDump // never leave pg_dump writing the archive
		}
		cleanup()
	}()
	err := r.step(ctx, db.name, "catalog", func() error {
		return r.readCatalog(ctx, w, func() {
			if startDump {
				ch := make(chan error, 1)
				go func() { ch <- r.dumpSchema(dctx, w, archive) }()
				w.earlyDump = ch
			}
		})
	})
	if err != nil {
		return err
	}
	if err := r.schemaAndRows(ctx, db, w, archive); err != nil {
		r.recordTables(w, true) // the summary of a failed run says what it copied
		return err
	}
	if err := r.finishSteps(ctx, w, archive, archiveDir); err != nil {
		r.recordTables(w, false)
		return err
	}
	r.recordTables(w, false)
	os.Remove(archive)
	return nil
}

// schemaAndRows restores pre-data while the copy reads ahead: each copy
// worker's first part streams from the source into a spool file until the
// target's tables exist (see readAhead). Nothing reaches the target before
// pre-data is in; a failure of either side stops the other.
func (r *run) schemaAndRows(ctx context.Context, db *dbPlan, w *dbWork, archive string) error {
	ready := make(chan struct{})
	w.ahead = &readAhead{ready: ready, dir: filepath.Dir(archive), limit: readAheadBudget}
	pctx, stopPre := context.WithCancel(ctx)
	defer stopPre()
	cctx, stopCopy := context.WithCancelCause(ctx)
	defer stopCopy(nil)
	preErr := make(chan error, 1)
	start := time.Now()
	var waited time.Duration
	go func() {
		err := r.preData(pctx, db, w, archive)
		if err != nil && pctx.Err() == nil {
			stopCopy(err) // its own failure, not the copy's
		} else if err == nil {
			waited = time.Since(start)
			close(ready)
		}
		preErr <- err
	}()
	err := r.copyAndIndex(cctx, w)
	if err != nil {
		stopPre()
	}
	perr := <-preErr
	// The side that failed first is the one to report: the other was
	// stopped because of it.
	if perr != nil && (err == nil || context.Cause(cctx) == perr) {
		return perr
	}
	if n := w.ahead.spooled.Load(); n > 0 {
		r.record(StepResult{Database: w.name, Name: "  read ahead", Seconds: waited.Seconds(), Count: int(w.ahead.parts.Load()), Bytes: n})
	}
	return err
}

// readCatalog exports (or takes the slot's) snapshot and reads the database's
// tables, indexes and large objects in it; exported runs once the snapshot
// exists.
func (r *run) readCatalog(ctx context.Context, w *dbWork, exported func()) error {
	if w.currentSnapshot() == "" {
		if err := r.exportSnapshot(ctx, w); err != nil {
			return err
		}
		exported()
	}
	if conn := w.takeExporter(); conn != nil {
		return r.inspect(ctx, conn, w)
	}
	conn, err := w.src.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := r.beginInSnapshot(ctx, w, conn, sourceSessionSQL); err != nil {
		return err
	}
	return r.inspect(ctx, conn, w)
}

// preData dumps the schema (unless an interrupted run's archive is there) and
// restores its pre-data section (unless that run finished it).
func (r *run) preData(ctx context.Context, db *dbPlan, w *dbWork, archive string) error {
	preDone := r.cp.done(keyDB(db.name, "pre-data"))
	if r.needDump(db, archive) {
		err := r.step(ctx, db.name, "dump schema", func() error {
			if w.earlyDump != nil {
				err := <-w.earlyDump
				w.earlyDump = nil
				return err
			}
			return r.dumpSchema(ctx, w, archive)
		})
		if err != nil {
			return err
		}
	}
	if preDone {
		r.info(db.name, "pre-data restored by the interrupted run: skipped")
		return nil
	}
	return r.step(ctx, db.name, "pre-data", func() error { return r.restorePreData(ctx, w, db, archive) })
}

// needDump reports whether the schema must be dumped: unless an interrupted
// run restored pre-data and left its archive.
func (r *run) needDump(db *dbPlan, archive string) bool {
	_, err := os.Stat(archive)
	return err != nil || !r.cp.done(keyDB(db.name, "pre-data"))
}

// finishSteps are the steps after the rows, each checkpointed.
func (r *run) finishSteps(ctx context.Context, w *dbWork, archive, archiveDir string) error {
	for _, s := range []struct {
		name string
		fn   func(resuming bool) error
	}{
		{"large objects", func(bool) error { return r.copyLargeObjects(ctx, w) }},
		{"post-data", func(resuming bool) error { return r.restorePostData(ctx, w, archive, archiveDir, resuming) }},
		{"sequences", func(bool) error { return r.setSequences(ctx, w) }},
		{"database settings", func(bool) error { return r.applyDatabaseSettings(ctx, w, archive) }},
	} {
		key := keyDB(w.name, s.name)
		rec, seen := r.cp.get(key)
		if seen && rec.Status == checkpoint.Done {
			continue
		}
		if err := r.cp.set(ctx, key, checkpoint.Running); err != nil {
			return err
		}
		// A step that fails on a lost connection runs again, as a resumed
		// run would: its statements are made to tolerate what the failed
		// attempt already did.
		resuming := seen
		err := r.step(ctx, w.name, s.name, func() error {
			return retry.Do(ctx, r.opts.Retry, func(err error, wait time.Duration) {
				r.retrying(w.name, "%s failed (%s); retrying in %s", s.name, oneLine(err), wait.Round(time.Millisecond))
			}, func() error {
				err := s.fn(resuming)
				resuming = true
				return err
			})
		})
		if err != nil {
			return err
		}
		if err := r.cp.set(ctx, key, checkpoint.Done); err != nil {
			return err
		}
	}
	return nil
}

// recordTables adds the database's tables to the run's result: those whose
// rows are all in, when finished is set (a copy that failed part-way).
func (r *run) recordTables(w *dbWork, finished bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, t := range w.tables {
		if !t.copyData {
			continue
		}
		t.mu.Lock()
		// parts is set once the copy planned the table's parts.
		done := t.parts > 0 && t.partsLeft == 0
		t.mu.Unlock()
		if finished && !done {
			continue
		}
		format := "text"
		if t.Binary {
			format = "binary"
		}
		r.result.Tables = append(r.result.Tables, TableResult{
			Database: w.name, Table: t.Name.String(), Rows: t.rows, Bytes: t.bytes,
			CopySeconds: t.copySeconds, IndexSeconds: t.indexSeconds, Parts: t.parts,
			Indexes: len(t.indexes), Format: format, ResumedParts: t.resumed,
		})
	}
}

// noTransactionTimeout turns off PostgreSQL 17's transaction_timeout, which
// would end a long copy's snapshot transaction (see catalog).
const noTransactionTimeout = catalog.NoTransactionTimeout + ";"

// sourceSessionSQL makes a source session read faithfully: no timeouts
// killing long copies, row security off (fail rather than silently skip
// rows), unambiguous text formats, and catalog output fully schema-qualified.
const sourceSessionSQL = `
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
` + noTransactionTimeout + `
SET row_security = off;
SET extra_float_digits = 3;
SET DateStyle = ISO;
SET IntervalStyle = postgres;
SET TimeZone = 'UTC';
SELECT pg_catalog.set_config('search_path', '', false);`

// targetSession prepares a target session for loading. Commits stay
// synchronous: a part recorded as done must survive a crash of the target
// (one wait for the disk per part, which is nothing next to its COPY).
func targetSession(ctx context.Context, conn *pgx.Conn, extra string) error {
	_, err := conn.Exec(ctx, `
SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
`+noTransactionTimeout+`
SET DateStyle = ISO;
SET IntervalStyle = postgres;
SET TimeZone = 'UTC';
SELECT pg_catalog.set_config('search_path', '', false);`+extra)
	if err != nil {
		return fmt.Errorf("prepare target session: %w", err)
	}
	return nil
}
