package engine

import (
	"context"
	"fmt"
	"os"
	"path/filepath"
)

// early is the first database's snapshot and schema dump, started as soon as
// preflight knows which database comes first. Both only read the source, so
// they may run while the checks (and validate) still decide whether the run
// goes ahead; against a far source pg_dump's few dozen round trips are the
// longest wait before the first row moves.
type early struct {
	w       *dbWork
	archive string
	cleanup func() // removes a temporary archive directory
	cancel  context.CancelFunc
	// exported is closed once the snapshot is exported (ok) or failed to be:
	// a failure is left to the regular path, which reports it.
	exported chan struct{}
	ok       bool
}

// startEarly begins the snapshot and schema dump of the first database of
// names the filters select, in the background, when the run is one that can
// use them: no sync (its snapshot comes with the slot, a change on the
// source), no table left out (the dump's exclusions come from the catalog),
// and a dump still to make. Preflight hands it to that database's plan, or
// abandons it.
func (r *run) startEarly(ctx context.Context, names []string) *early {
	if r.opts.Sync != nil || r.opts.Filters.LeavesOutTables() || r.opts.Tools == nil {
		return nil
	}
	var db *dbPlan
	for _, name := range names {
		if r.opts.Filters.Database(name) && !r.cp.done(keyDB(name, "done")) {
			db = &dbPlan{name: name}
			break
		}
	}
	if db == nil {
		return nil
	}
	w, err := r.openDatabase(db)
	if err != nil {
		return nil
	}
	archive, cleanup, err := r.archiveFor(db)
	if err != nil {
		return nil
	}
	if !r.needDump(db, archive) {
		cleanup()
		return nil
	}
	dctx, cancel := context.WithCancel(ctx)
	e := &early{w: w, archive: archive, cleanup: cleanup, cancel: cancel, exported: make(chan struct{})}
	go func() {
		defer close(e.exported)
		if err := r.exportSnapshot(dctx, w); err != nil {
			w.closeSnapshot()
			return
		}
		ch := make(chan error, 1)
		go func() { ch <- r.dumpSchema(dctx, w, archive) }()
		w.earlyDump, e.ok = ch, true
	}()
	return e
}

// take hands the early work to the database's copy: its work (snapshot and
// dump under way), or nil when the export failed and the copy starts afresh.
func (e *early) take() *dbWork {
	<-e.exported
	if !e.ok {
		e.abandon()
		return nil
	}
	return e.w
}

// abandon stops the early work of a run that does not go ahead: pg_dump is
// stopped and waited for (never left writing the archive), the snapshot's
// session closed, a temporary archive removed.
func (e *early) abandon() {
	e.cancel()
	<-e.exported
	if e.w.earlyDump != nil {
		<-e.w.earlyDump
		e.w.earlyDump = nil
	}
	e.w.closeSnapshot()
	e.cleanup()
}

// abandonEarly abandons the early work no database took.
func (p *plan) abandonEarly() {
	if p == nil {
		return
	}
	for _, db := range p.databases {
		if db.early != nil {
			db.early.abandon()
			db.early = nil
		}
	}
}

// archiveFor is where the database's schema archive goes: the run's archive
// directory (kept for a resumed run) or a temporary one, which cleanup
// removes.
func (r *run) archiveFor(db *dbPlan) (archive string, cleanup func(), err error) {
	dir := r.opts.ArchiveDir
	cleanup = func() {}
	if dir == "" {
		if dir, err = os.MkdirTemp(r.opts.TempDir, "replicator-schema-"); err != nil {
			return "", nil, err
		}
		cleanup = func() { os.RemoveAll(dir) }
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return "", nil, err
	}
	return filepath.Join(dir, fmt.Sprintf("%x.dump", db.name)), cleanup, nil
}
