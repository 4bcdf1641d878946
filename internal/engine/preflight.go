package engine

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/existing"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/replication"
)

// plan is what preflight decided, before anything on the target changed.
type plan struct {
	srcVersion, dstVersion pgtools.Version
	databases              []*dbPlan
}

type dbPlan struct {
	name string
	// redoPreData: an interrupted run had started this database's pre-data
	// without finishing it.
	redoPreData bool
	// ours: this run series created the target database (its OID is
	// recorded): the only one it may drop without --drop-existing.
	ours bool
	// intoExisting: the target already has this database, not the copy's
	// (the "postgres" database, one a provider prepared): restore into it,
	// never drop it.
	intoExisting bool
	// skipPre: pre-data archive entries not restored (the kept objects,
	// excluded extensions); skipExtensions: the excluded extensions, whose
	// COMMENT entries have no key.
	skipPre        map[tocKey]bool
	skipExtensions []string
	// extensions of the source database, which pre-data creates first, at
	// their versions (createExtensions).
	extensions []catalog.Extension
	// drop: the target has it and --drop-existing asked to replace it.
	drop bool
	// early: the snapshot and schema dump started during preflight.
	early *early
}

func userErrorf(format string, args ...any) error { return problem.Errorf(format, args...) }

// preflight decides the plan and refuses what cannot work, before anything on
// the target changes: the servers, resume, the databases and what the target
// already holds.
func (r *run) preflight(ctx context.Context) (_ *plan, err error) {
	o := r.opts
	src, dst, si, di, e, openErr := r.openServers(ctx)
	p := &plan{}
	defer func() {
		if src != nil {
			src.Close(context.Background())
		}
		if dst != nil {
			dst.Close(context.Background())
		}
		if e != nil {
			e.abandon()
		}
		if err != nil {
			p.abandonEarly()
		}
	}()
	if openErr != nil {
		return nil, openErr
	}
	if err := r.checkServers(ctx, dst, si, di); err != nil {
		return nil, err
	}
	if err := checkWritable(di); err != nil {
		return nil, err
	}
	p.srcVersion, p.dstVersion = si.Version, di.Version
	r.targetSuper, r.srcVersion, r.dstVersion = di.Superuser, si.Version, di.Version
	r.srcFree, r.dstFree = si.MaxConnections-si.Connections, di.MaxConnections-di.Connections
	if r.srcRTT, err = catalog.RoundTrip(ctx, src); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if err := r.checkResume(ctx, si, di); err != nil {
		return nil, err
	}
	// Strict names: a pattern that matches nothing stops the run here.
	warnings, err := o.Filters.CheckDatabases(si.Databases)
	if err != nil {
		return nil, err
	}
	for _, name := range si.Databases {
		if o.Filters.Database(name) {
			p.databases = append(p.databases, &dbPlan{name: name})
		}
	}
	if len(p.databases) == 0 {
		return nil, userErrorf("no database to copy: the source has %s; every database except postgres is copied by default (name postgres in --include-databases to copy it)", listOrNone(si.Databases))
	}
	for _, db := range p.databases {
		if e != nil && e.w.name == db.name {
			db.early, e = e, nil
		}
	}
	// Size the work for progress and make sure every source database is readable.
	seen := &sourceFacts{tablespaces: map[string][]string{}, schemas: map[string][]string{},
		indexes: map[string][][2]string{}, extensionNames: map[string][][2]string{}, extensions: map[string]*extensionFacts{}}
	for _, db := range p.databases {
		if err := r.estimate(ctx, db.name, seen); err != nil {
			return nil, err
		}
	}
	if err := r.checkNames(seen, warnings); err != nil {
		return nil, err
	}
	if err := checkBlocking(seen); err != nil {
		return nil, err
	}
	if err := r.checkTargets(ctx, p, dst, di); err != nil {
		return nil, err
	}
	if err := r.checkExclusions(ctx, p, seen, dst); err != nil {
		return nil, err
	}
	if err := checkPlacement(ctx, p, seen, src, dst, di); err != nil {
		return nil, err
	}
	if err := r.fitConnections(p, si, di); err != nil {
		return nil, err
	}
	if o.Ready != nil {
		if err := o.Ready(ctx); err != nil {
			return nil, err
		}
	}
	// Work starts: from now on an interruption leaves a run to resume.
	if err := r.cp.mark(ctx, r.meta, true); err != nil {
		return nil, err
	}
	return p, nil
}

// openServers connects to both servers and reads them, side by side (each
// is a few round trips); as soon as the source is read, the first
// database's snapshot and schema dump start (startEarly). The error is the
// source's when both fail; what was opened is returned either way, for the
// caller to close.
func (r *run) openServers(ctx context.Context) (src, dst *pgx.Conn, si, di *catalog.Server, e *early, err error) {
	var dstErr error
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := r.opts.Target.Connect(ctx)
		if err == nil {
			if di, err = catalog.ReadServer(ctx, conn); err != nil {
				conn.Close(context.Background())
				err = fmt.Errorf("target: %w", err)
			} else {
				dst = conn
			}
		}
		dstErr = err
	}()
	conn, srcErr := r.opts.Source.Connect(ctx)
	if srcErr == nil {
		if si, srcErr = catalog.ReadServer(ctx, conn); srcErr != nil {
			conn.Close(context.Background())
			srcErr = fmt.Errorf("source: %w", srcErr)
		} else {
			src = conn
			e = r.startEarly(ctx, si.Databases)
		}
	}
	wg.Wait()
	return src, dst, si, di, e, cmp.Or(srcErr, dstErr)
}

// checkServers refuses a pair of servers that cannot work.
func (r *run) checkServers(ctx context.Context, dst *pgx.Conn, si, di *catalog.Server) error {
	o := r.opts
	if catalog.SameServer(si, di) {
		return userErrorf("source and target are the same server (%s and %s): point --target at another cluster", o.Source.Address(), o.Target.Address())
	}
	if err := o.Tools.CheckSource(si.Version); err != nil {
		return &problem.Problem{Msg: err.Error()}
	}
	if si.Version.Major < 12 {
		return userErrorf("source server is PostgreSQL %s; replicator needs 12 or newer", si.Version)
	}
	if di.Version.Major < si.Version.Major {
		r.warn("", "target server %d is older than source %d: schema objects new in %d may fail to restore", di.Version.Major, si.Version.Major, si.Version.Major)
	}
	if o.Sync != nil {
		if err := checkSync(ctx, si, di, dst); err != nil {
			return err
		}
		capture, warning, err := o.Sync.DDL.Decide(si)
		if err != nil {
			return err
		}
		if warning != "" {
			r.warn("", "%s", warning)
		}
		r.captureDDL = capture
	}
	return nil
}

// checkWritable refuses a target that takes no writes.
func checkWritable(di *catalog.Server) error {
	if di.InRecovery {
		return userErrorf("the target is a standby (in recovery) and takes no writes: point --target at the primary")
	}
	if di.ReadOnly {
		return userErrorf("the target's sessions are read-only (default_transaction_read_only is on for role %s, its database or the server): turn it off with ALTER ROLE %s SET default_transaction_read_only = off, or connect as another role",
			di.User, pgx.Identifier{di.User}.Sanitize())
	}
	return nil
}

// checkTargets decides what becomes of each database on the target: created,
// resumed, restored into an existing one, or dropped and replaced (asked
// first). A database is dropped only with --drop-existing or when this run
// series created it (its recorded OID is the one there now). An existing
// database is restored into only when nothing in it conflicts with the
// source (see package existing); otherwise the run is refused here.
func (r *run) checkTargets(ctx context.Context, p *plan, dst *pgx.Conn, di *catalog.Server) error {
	o := r.opts
	onTarget := map[string]bool{}
	for _, d := range di.Databases {
		onTarget[d] = true
	}
	var refusals, toDrop []string
	needCreate := false
	for _, db := range p.databases {
		created, ours, err := r.createdByUs(ctx, dst, db.name)
		if err != nil {
			return err
		}
		rec, started := r.cp.get(keyDB(db.name, "pre-data"))
		if started && !onTarget[db.name] {
			return userErrorf("database %s, which the interrupted run restored into, is gone from the target: start over with --no-resume", db.name)
		}
		switch {
		case ours:
			db.ours = true
			db.redoPreData = rec.Status != checkpoint.Done
			needCreate = needCreate || db.redoPreData
			continue // this run's own database: resumed, not refused
		case created != "" && !o.DropExisting:
			refusals = append(refusals, created)
			continue
		case started && o.DropExisting:
			// Restored into by the interrupted run, and now to be replaced.
		case started:
			// Restored into by the interrupted run: resumed in place, never
			// dropped (it was there before the copy).
			db.intoExisting = true
			db.redoPreData = rec.Status != checkpoint.Done
			continue
		}
		if !onTarget[db.name] {
			needCreate = true
			continue
		}
		if o.DropExisting {
			db.drop, needCreate = true, true
			toDrop = append(toDrop, db.name)
			continue
		}
		v, err := r.judgeExisting(ctx, db)
		if err != nil {
			return err
		}
		if len(v.Conflicts) > 0 {
			refusals = append(refusals, existing.Conflicting(db.name, v))
			continue
		}
		db.intoExisting = true
		for _, n := range v.Notes() {
			r.mu.Lock()
			r.result.Existing = append(r.result.Existing, db.name+": "+n)
			r.mu.Unlock()
			r.info(db.name, "%s", n)
		}
	}
	if len(refusals) > 0 {
		return userErrorf("%s", existing.Refusal(refusals))
	}
	if needCreate && !di.Superuser && !di.CreateDB {
		return userErrorf("target role %q lacks CREATEDB, needed to create the databases: run ALTER ROLE %s CREATEDB as an administrator, or connect as another role",
			di.User, pgx.Identifier{di.User}.Sanitize())
	}
	if err := r.chooseMaintenance(p); err != nil {
		return err
	}
	if len(toDrop) == 0 {
		return nil
	}
	ok, err := r.ask(fmt.Sprintf("Drop and replace %d database(s) on target %s: %s?", len(toDrop), o.Target.Address(), strings.Join(toDrop, ", ")))
	if err != nil {
		return err
	}
	if !ok {
		return userErrorf("refusing to drop %s on the target without confirmation: pass --yes to confirm", strings.Join(toDrop, ", "))
	}
	return nil
}

// createdByUs reports whether this run series created the target database
// name, which it then may drop and create again: the OID recorded when it was
// created is the one the target has now. refusal is set when a record exists
// but does not prove it (the creation was interrupted before its OID was
// recorded, or the database was replaced since); --drop-existing still
// replaces it, as it would any database.
func (r *run) createdByUs(ctx context.Context, dst *pgx.Conn, name string) (refusal string, ours bool, err error) {
	rec, ok := r.cp.get(keyDB(name, "created"))
	if !ok {
		return "", false, nil
	}
	var oid string
	err = dst.QueryRow(ctx, "SELECT oid::text FROM pg_catalog.pg_database WHERE datname = $1", name).Scan(&oid)
	switch {
	case errors.Is(err, pgx.ErrNoRows):
		return "", false, nil // gone: created again as a new database
	case err != nil:
		return "", false, fmt.Errorf("target: %w", err)
	case rec.Status == checkpoint.Done && rec.Data == oid:
		return "", true, nil
	case rec.Status == checkpoint.Done:
		return fmt.Sprintf("database %s is not the one the interrupted run created (it was replaced since; OID %s, not %s; --no-resume starts over and judges it as any existing database)", name, oid, rec.Data), false, nil
	default:
		return fmt.Sprintf("the interrupted run stopped while creating database %s, before it could record it as its own (--no-resume starts over and judges it as any existing database)", name), false, nil
	}
}

// judgeExisting judges what an existing target database holds against the
// source database (package existing); the kept objects' archive entries are
// left out of pre-data, by the source's OIDs (the archive's).
func (r *run) judgeExisting(ctx context.Context, db *dbPlan) (*existing.Verdict, error) {
	in, err := existing.Inspect(ctx, r.opts.Source, r.opts.Target, db.name, func(s string) bool {
		return s != replication.DDLSchema && r.opts.Filters.Schema(db.name, s)
	})
	if err != nil {
		return nil, err
	}
	if in.TemplateErr != nil {
		r.warn(db.name, "could not read the target's template1 to tell its objects from the database's own (%s): every object counts", oneLine(in.TemplateErr))
	}
	if len(in.Conflicts) > 0 {
		return in.Verdict, nil
	}
	db.skipPre = map[tocKey]bool{}
	for _, k := range in.Kept {
		cat := uint32(pgNamespaceOID)
		if k.Kind == "extension" {
			cat = pgExtensionOID
		}
		db.skipPre[tocKey{cat, k.SourceOID}] = true
	}
	for _, n := range in.VersionNotes(in.Source) {
		r.warn(db.name, "%s", n)
	}
	return in.Verdict, nil
}

// chooseMaintenance picks the target database that drops and creates go
// through, as dropdb does: the one in the target URL, unless the run replaces
// it (PostgreSQL cannot drop the database a session is in), then postgres,
// then template1.
func (r *run) chooseMaintenance(p *plan) error {
	replaced := map[string]bool{}
	for _, db := range p.databases {
		if db.drop || db.redoPreData && db.ours {
			replaced[db.name] = true
		}
	}
	r.maintenance = r.opts.Target
	for _, name := range []string{r.opts.Target.Database(), "postgres", "template1"} {
		if !replaced[name] {
			if name != r.opts.Target.Database() {
				ep, err := r.opts.Target.WithDatabase(name)
				if err != nil {
					return err
				}
				r.maintenance = ep
				r.info("", "the target URL's database %s is one of those replaced: dropping and creating through %s", r.opts.Target.Database(), name)
			}
			return nil
		}
	}
	return userErrorf("every maintenance database of the target (postgres, template1) is among those to replace: connect through another database")
}

// sourceFacts is what preflight reads in the source databases beyond sizes:
// the tables (for strict names) and the tablespaces each database uses.
type sourceFacts struct {
	tables      []filter.Table
	tablespaces map[string][]string
	// blocking: kept objects that need a table the filters leave out.
	blocking []string
	// schemas of each database, read when schema filters are given.
	schemas map[string][]string
	// indexes (with --exclude-indexes) and extensions of each database, as
	// {schema, name}; badIndexes: excluded indexes that take more with them.
	indexes, extensionNames map[string][][2]string
	badIndexes              []string
	extensions              map[string]*extensionFacts
}

// checkPlacement refuses what CREATE DATABASE or pg_restore would fail on
// part-way: a tablespace or a locale the target lacks.
func checkPlacement(ctx context.Context, p *plan, seen *sourceFacts, src, dst *pgx.Conn, di *catalog.Server) error {
	var missing []string
	for _, db := range p.databases {
		for _, ts := range seen.tablespaces[db.name] {
			if !slices.Contains(di.Tablespaces, ts) {
				missing = append(missing, fmt.Sprintf("%s (database %s)", ts, db.name))
			}
		}
	}
	if len(missing) > 0 {
		return userErrorf("the target has no tablespace %s: nothing was changed; create it on the target (CREATE TABLESPACE ... LOCATION ...), or move the objects to pg_default on the source",
			strings.Join(missing, ", "))
	}
	for _, db := range p.databases {
		if db.intoExisting {
			continue // restored into, not created
		}
		l, err := catalog.ReadLocale(ctx, src, db.name)
		if err != nil {
			return fmt.Errorf("source: %w", err)
		}
		if err := catalog.LocaleAvailable(ctx, dst, l); err != nil {
			return userErrorf("database %s: %v: nothing was changed; install the locale on the target's server, or create the database there yourself with a locale it has (replicator restores into an empty database)", db.name, err)
		}
	}
	return nil
}

// checkSync refuses a sync the servers cannot do, before anything changes.
func checkSync(ctx context.Context, si, di *catalog.Server, dst *pgx.Conn) error {
	err := replication.CheckSource(si)
	if err == nil {
		err = replication.CheckTarget(ctx, dst, di)
	}
	return err
}

// checkResume decides what to make of checkpoints left by an interrupted run: they
// are kept only when source and target are still the same clusters.
func (r *run) checkResume(ctx context.Context, si, di *catalog.Server) error {
	ids, _ := json.Marshal(map[string]string{"source": si.SystemID, "target": di.SystemID})
	r.meta = checkpoint.Record{Key: keyMeta, Status: checkpoint.Done, Data: string(ids)}
	if r.cp.started() {
		meta, _ := r.cp.get(keyMeta)
		if meta.Data == string(ids) {
			r.warn("", "resuming an interrupted run (started %s): finished tables, indexes and steps are skipped. Tables copied before the interruption come from an earlier snapshot than the rest, so the copy is not consistent across tables; for a consistent copy start over with --no-resume --drop-existing",
				meta.Updated.Local().Format("2006-01-02 15:04"))
			return nil
		}
		r.info("", "the checkpoints found belong to other clusters at these addresses: starting over")
	}
	return r.cp.clear(ctx)
}

// estimate registers the tables of a source database with the progress tracker so
// that the overall percentage covers the whole run from the start.
func (r *run) estimate(ctx context.Context, db string, seen *sourceFacts) error {
	ep, err := r.opts.Source.WithDatabase(db)
	if err != nil {
		return err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := catalog.Untimed(ctx, conn); err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	tables, err := catalog.Tables(ctx, conn)
	if err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	if err := catalog.CheckPredicates(ctx, conn, db, tables, r.opts.Filters); err != nil {
		return err
	}
	if seen.tablespaces[db], err = catalog.UsedTablespaces(ctx, conn); err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	names, mvs, err := catalog.FilterNames(ctx, conn, db, tables)
	if err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	seen.tables = append(seen.tables, names...)
	if err := r.readExclusions(ctx, conn, db, seen); err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	if r.opts.Filters.FiltersSchemas() {
		if seen.schemas[db], err = catalog.Schemas(ctx, conn); err != nil {
			return fmt.Errorf("source database %s: %w", db, err)
		}
	}
	var left []uint32
	for _, t := range tables {
		d := r.opts.Filters.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name)
		if t.Kind == 'r' && d.Copy && !d.SchemaOnly {
			r.tracker.Register(db, t.Name.String(), t.Rows, t.Bytes)
		}
		if !d.Copy {
			left = append(left, t.OID)
		}
	}
	for _, mv := range mvs {
		if !r.opts.Filters.Table(db, mv.Name.Schema, mv.Name.Name).Copy {
			left = append(left, mv.OID)
		}
	}
	blocking, err := catalog.Blocking(ctx, conn, left)
	if err != nil {
		return fmt.Errorf("source database %s: %w", db, err)
	}
	for _, b := range blocking {
		if b.Schema == "" || r.opts.Filters.Schema(db, b.Schema) {
			seen.blocking = append(seen.blocking, db+": "+b.What)
		}
	}
	return nil
}

// checkNames refuses include patterns that match no table or schema, and
// says the warnings (the databases' with them).
func (r *run) checkNames(seen *sourceFacts, warnings []string) error {
	more, err := r.opts.Filters.CheckTables(seen.tables)
	if err != nil {
		return err
	}
	if r.opts.Filters.FiltersSchemas() {
		w, err := r.opts.Filters.CheckSchemas(seen.schemas)
		if err != nil {
			return err
		}
		more = append(more, w...)
	}
	for _, w := range append(warnings, more...) {
		r.warn("", "%s", w)
	}
	return nil
}

// checkBlocking refuses filters that leave out tables which kept objects
// need (a function returning SETOF one): pg_restore would fail on them
// half-way through the schema.
func checkBlocking(seen *sourceFacts) error {
	if len(seen.blocking) == 0 {
		return nil
	}
	list := seen.blocking
	more := ""
	if len(list) > 10 {
		list, more = list[:10], fmt.Sprintf(" and %d more", len(seen.blocking)-10)
	}
	return userErrorf("the filters leave out tables that kept objects need: %s%s: nothing was changed; keep those tables' structure without their rows (--schema-only-tables instead of --exclude-tables), or leave out what needs them too",
		strings.Join(list, "; "), more)
}

// fitConnections sizes the copy to the sessions each side allows the
// connecting roles: max_connections, and for a role without SUPERUSER its
// own CONNECTION LIMIT and the database's (on the target, only for a
// database already there: one the copy creates gets its limit at the end).
// A database copies with --jobs copy sessions and three more on the source
// (the snapshot's, pg_dump's, the catalog's),
// and with --jobs copy and --index-jobs index sessions and two more on the
// target. Too few for that lowers the jobs, with a warning; too few for one
// job is refused before anything changes.
func (r *run) fitConnections(p *plan, si, di *catalog.Server) error {
	o := &r.opts
	for _, db := range p.databases {
		room, limit := si.Room(db.name, true)
		r.srcFree = min(r.srcFree, room)
		if room < 4 {
			return userErrorf("the source allows role %s %d more session(s) in database %s (%s), and the copy needs at least 4: nothing was changed; raise the limit (ALTER DATABASE %s CONNECTION LIMIT ..., ALTER ROLE %s CONNECTION LIMIT ...), or end idle sessions",
				si.User, room, db.name, cmp.Or(limit, "max_connections"), pgx.Identifier{db.name}.Sanitize(), pgx.Identifier{si.User}.Sanitize())
		}
		if need := catalog.SourceSessions(o.Jobs); room < need {
			jobs := room - catalog.SourceSessions(0)
			r.warn(db.name, "the source allows role %s %d more sessions here (%s): copying with %d jobs instead of %d",
				si.User, room, cmp.Or(limit, "max_connections"), jobs, o.Jobs)
			o.Jobs = jobs
			o.IndexJobs = min(o.IndexJobs, o.Jobs)
		}
		room, limit = di.Room(db.name, db.intoExisting)
		r.dstFree = min(r.dstFree, room)
		if room < 4 {
			return userErrorf("the target allows role %s %d more session(s) in database %s (%s), and the copy needs at least 4: nothing was changed; raise the limit, or end idle sessions",
				di.User, room, db.name, cmp.Or(limit, "max_connections"))
		}
		if need := catalog.TargetSessions(o.Jobs, o.IndexJobs); room < need {
			jobs := max(1, (room-catalog.TargetSessions(0, 0))/2)
			r.warn(db.name, "the target allows role %s %d more sessions here (%s): copying with %d jobs and %d index jobs instead of %d and %d",
				di.User, room, cmp.Or(limit, "max_connections"), jobs, jobs, o.Jobs, o.IndexJobs)
			o.Jobs, o.IndexJobs = min(o.Jobs, jobs), min(o.IndexJobs, jobs)
		}
	}
	return nil
}

func listOrNone(s []string) string {
	if len(s) == 0 {
		return "no databases"
	}
	return "only " + strings.Join(s, ", ")
}
