package engine_test

import (
	"context"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// fidelitySQL is the fidelity fixture for the test clusters' major.
var fidelitySQL = fixture.Fidelity(15)

var rolesOnce sync.Once

func createRoles(t *testing.T) {
	rolesOnce.Do(func() { pgtest.Exec(t, engine.TestPair.Source, "postgres", fixture.Roles) })
}

// events records what the engine reported.
type events struct {
	mu  sync.Mutex
	all []progress.Event
}

func (e *events) Emit(ev progress.Event) {
	e.mu.Lock()
	e.all = append(e.all, ev)
	e.mu.Unlock()
}

func (e *events) of(kind progress.Kind) []progress.Event {
	e.mu.Lock()
	defer e.mu.Unlock()
	var out []progress.Event
	for _, ev := range e.all {
		if ev.Kind == kind {
			out = append(out, ev)
		}
	}
	return out
}

// has reports whether a warning or info event says msg.
func (e *events) has(msg string) bool {
	for _, ev := range append(e.of(progress.Warning), e.of(progress.Info)...) {
		if strings.Contains(ev.Message, msg) {
			return true
		}
	}
	return false
}

// copyCluster runs the engine from the test source to the test target.
func copyCluster(t *testing.T, spec filter.Spec, tweak func(*engine.Options)) (*engine.Result, *events, error) {
	t.Helper()
	src, err := conninfo.Parse("source", engine.TestPair.Source.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	dst, err := conninfo.Parse("target", engine.TestPair.Target.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	rules, err := spec.Compile()
	if err != nil {
		t.Fatal(err)
	}
	ev := &events{}
	opts := engine.Options{
		Source: src, Target: dst, Filters: rules, Tools: pgtest.Tools(t),
		Progress: ev, TempDir: t.TempDir(), Jobs: 3, IndexJobs: 2,
	}
	if tweak != nil {
		tweak(&opts)
	}
	res, err := engine.Run(context.Background(), opts)
	return res, ev, err
}

func assertSameDatabase(t *testing.T, db string) {
	t.Helper()
	fixture.Compare(t, engine.TestPair.Source, engine.TestPair.Target, db)
}

func TestFidelity(t *testing.T) {
	createRoles(t)
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE fidelity OWNER app_owner")
	pgtest.Exec(t, engine.TestPair.Source, "fidelity", fidelitySQL)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "fidelity")
		pgtest.DropDatabases(t, engine.TestPair.Target, "fidelity")
	})

	res, ev, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"fidelity"}}, nil)
	if err != nil {
		t.Fatalf("copy: %v", err)
	}
	assertSameDatabase(t, "fidelity")

	// The next values drawn agree too.
	for _, seq := range []string{"app.counter", "app.serial_t_id_seq", "app.ident_t_id_seq", "app.unused_seq"} {
		q := "SELECT nextval('" + seq + "')"
		if src, dst := pgtest.Query(t, engine.TestPair.Source, "fidelity", q), pgtest.Query(t, engine.TestPair.Target, "fidelity", q); !reflect.DeepEqual(src, dst) {
			t.Errorf("nextval(%s): source %v, target %v", seq, src, dst)
		}
	}
	if n := len(pgtest.Query(t, engine.TestPair.Source, "fidelity", "SELECT oid FROM pg_largeobject_metadata")); n != 3 {
		t.Errorf("the source has %d large objects, want 3", n)
	}
	fixture.CompareRoles(t, engine.TestPair.Source, engine.TestPair.Target)

	// The summary and the events account for every table and step.
	if len(res.Tables) < 20 {
		t.Errorf("summary lists %d tables", len(res.Tables))
	}
	formats := map[string]string{}
	for _, tr := range res.Tables {
		formats[tr.Table] = tr.Format
	}
	if formats["app.kitchen_sink"] != "text" || formats["app.serial_t"] != "binary" {
		t.Errorf("COPY formats: kitchen_sink %q (composite arrays need text), serial_t %q", formats["app.kitchen_sink"], formats["app.serial_t"])
	}
	steps := map[string]bool{}
	for _, e := range ev.of(progress.StepDone) {
		steps[e.Step] = true
	}
	for _, s := range []string{"preflight", "roles", "catalog", "dump schema", "pre-data", "copy", "large objects", "post-data", "sequences"} {
		if !steps[s] {
			t.Errorf("no step_done event for %q", s)
		}
	}
	if n := len(ev.of(progress.TableDone)); n != len(res.Tables) {
		t.Errorf("%d table_done events for %d tables", n, len(res.Tables))
	}
	ticks := ev.of(progress.Tick)
	if len(ticks) == 0 || ticks[len(ticks)-1].Overall.Percent < 99.9 {
		t.Errorf("last progress event is not 100%%: %+v", ticks)
	}
}

func TestExistingTargetDatabase(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE occupied")
	pgtest.Exec(t, engine.TestPair.Source, "occupied", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
	pgtest.Exec(t, engine.TestPair.Target, "postgres", "CREATE DATABASE occupied")
	pgtest.Exec(t, engine.TestPair.Target, "occupied", "CREATE TABLE keep_me (id int); INSERT INTO keep_me VALUES (42)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "occupied")
		pgtest.DropDatabases(t, engine.TestPair.Target, "occupied")
	})
	spec := filter.Spec{IncludeDatabases: []string{"occupied"}}

	_, _, err := copyCluster(t, spec, func(o *engine.Options) { o.SkipRoles = true })
	var ue *problem.Problem
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "database occupied already holds table public.keep_me") || !strings.Contains(err.Error(), "--drop-existing") {
		t.Fatalf("want a user error about occupied, got %v", err)
	}
	// Not confirmed: refused, nothing changed.
	_, _, err = copyCluster(t, spec, func(o *engine.Options) {
		o.SkipRoles = true
		o.DropExisting = true
		o.Confirm = func(string) (bool, error) { return false, nil }
	})
	if err == nil || !strings.Contains(err.Error(), "--yes") {
		t.Fatalf("want refusal without confirmation, got %v", err)
	}
	if got := pgtest.Query(t, engine.TestPair.Target, "occupied", "SELECT id FROM keep_me"); !reflect.DeepEqual(got, []string{"42"}) {
		t.Fatalf("target changed: %v", got)
	}
	// Confirmed: replaced.
	var asked string
	_, _, err = copyCluster(t, spec, func(o *engine.Options) {
		o.SkipRoles = true
		o.DropExisting = true
		o.Confirm = func(q string) (bool, error) { asked = q; return true, nil }
	})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(asked, "occupied") {
		t.Errorf("question did not name the database: %q", asked)
	}
	assertSameDatabase(t, "occupied")
}

func TestSplitTableInRanges(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE splitdb")
	pgtest.Exec(t, engine.TestPair.Source, "splitdb", `
CREATE TABLE big (id bigint PRIMARY KEY, pad text);
INSERT INTO big SELECT g, repeat('x', 200) FROM generate_series(1, 20000) g;
DELETE FROM big WHERE id % 7 = 0;
CREATE INDEX big_pad ON big (pad);
ANALYZE big;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "splitdb")
		pgtest.DropDatabases(t, engine.TestPair.Target, "splitdb")
	})
	res, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"splitdb"}}, func(o *engine.Options) {
		o.SkipRoles = true
		o.SplitThreshold = 512 << 10
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 1 || res.Tables[0].Parts < 4 {
		t.Fatalf("expected big to be split into ranges: %+v", res.Tables)
	}
	assertSameDatabase(t, "splitdb")
}

func TestFilters(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE filters")
	pgtest.Exec(t, engine.TestPair.Source, "filters", `
CREATE SCHEMA other;
CREATE TABLE public.keep (id int PRIMARY KEY, drop_ref int, so_ref int);
CREATE TABLE public.drop_me (id int PRIMARY KEY);
CREATE TABLE public."Quoted Name" (id int);
CREATE TABLE public.schema_only (id int PRIMARY KEY);
CREATE TABLE public.events (id int PRIMARY KEY, kind text);
CREATE TABLE public.logs_2024 (id int);
CREATE TABLE other.logs_old (id int);
CREATE TABLE other.keep (id int);
CREATE TABLE public.parted (id int, k int) PARTITION BY LIST (k);
CREATE TABLE public.parted_1 PARTITION OF public.parted FOR VALUES IN (1);
CREATE TABLE public.event_items (id int PRIMARY KEY, event_id int REFERENCES public.events);
INSERT INTO public.drop_me SELECT generate_series(1, 5);
INSERT INTO public.schema_only SELECT generate_series(1, 5);
INSERT INTO public.keep SELECT g, g, g FROM generate_series(1, 5) g;
INSERT INTO public.events SELECT g, 'k' || g FROM generate_series(1, 10) g;
INSERT INTO public.event_items SELECT g, g FROM generate_series(1, 10) g;
INSERT INTO public."Quoted Name" VALUES (1);
INSERT INTO public.logs_2024 VALUES (1);
INSERT INTO other.logs_old VALUES (1);
INSERT INTO other.keep VALUES (1), (2);
INSERT INTO public.parted VALUES (1, 1);
ALTER TABLE public.keep ADD CONSTRAINT keep_drop_fk FOREIGN KEY (drop_ref) REFERENCES public.drop_me;
ALTER TABLE public.keep ADD CONSTRAINT keep_so_fk FOREIGN KEY (so_ref) REFERENCES public.schema_only;
CREATE VIEW public.v_drop AS SELECT * FROM public.drop_me;
CREATE VIEW public.v_on_view AS SELECT * FROM public.v_drop;
CREATE VIEW public.v_keep AS SELECT * FROM public.keep;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "filters")
		pgtest.DropDatabases(t, engine.TestPair.Target, "filters")
	})
	res, _, err := copyCluster(t, filter.Spec{
		IncludeDatabases: []string{"filters"},
		ExcludeTables:    []string{"filters.public.drop_me", `public."Quoted Name"`, "*.logs_*", "PARTED"},
		SchemaOnlyTables: []string{"schema_only"},
		TableFilters:     []string{"filters.public.events:id % 2 = 0"},
	}, func(o *engine.Options) { o.SkipRoles = true })
	if err != nil {
		t.Fatal(err)
	}
	tables := pgtest.Query(t, engine.TestPair.Target, "filters", `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.relkind IN ('r', 'p', 'v') AND n.nspname IN ('public', 'other') ORDER BY 1`)
	want := []string{"event_items", "events", "keep", "other.keep", "schema_only", "v_keep"}
	if !reflect.DeepEqual(tables, want) {
		t.Errorf("target relations %v, want %v", tables, want)
	}
	counts := pgtest.Query(t, engine.TestPair.Target, "filters", `SELECT (SELECT count(*) FROM keep), (SELECT count(*) FROM schema_only),
	  (SELECT string_agg(id::text, ',' ORDER BY id) FROM events), (SELECT count(*) FROM other.keep)`)
	if want := []string{"5|0|2,4,6,8,10|2"}; !reflect.DeepEqual(counts, want) {
		t.Errorf("row counts %v, want %v", counts, want)
	}
	// Foreign keys into partial tables exist, unvalidated; into dropped ones not at all.
	fks := pgtest.Query(t, engine.TestPair.Target, "filters", `SELECT conname, convalidated FROM pg_constraint WHERE contype = 'f' ORDER BY 1`)
	if want := []string{"event_items_event_id_fkey|false", "keep_so_fk|false"}; !reflect.DeepEqual(fks, want) {
		t.Errorf("foreign keys %v, want %v", fks, want)
	}
	warnings := strings.Join(res.Warnings, "\n")
	for _, w := range []string{"public.v_drop left out", "public.v_on_view left out", "keep_drop_fk", "keep_so_fk on public.keep added NOT VALID", "event_items_event_id_fkey"} {
		if !strings.Contains(warnings, w) {
			t.Errorf("warnings do not mention %q:\n%s", w, warnings)
		}
	}
}

func TestWholeClusterAndEncodings(t *testing.T) {
	createRoles(t)
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE latin ENCODING 'LATIN1' LC_COLLATE 'C' LC_CTYPE 'C' TEMPLATE template0")
	pgtest.Exec(t, engine.TestPair.Source, "latin", "CREATE TABLE words (w text, n numeric); INSERT INTO words VALUES ('café', 1.5), ('naïve', NULL), ('Ærø', 'NaN')")
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE \"second db\" OWNER app_owner")
	pgtest.Exec(t, engine.TestPair.Source, "second db", "CREATE TABLE t AS SELECT g AS id FROM generate_series(1, 1000) g")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "latin", "second db")
		pgtest.DropDatabases(t, engine.TestPair.Target, "latin", "second db")
	})
	if _, _, err := copyCluster(t, filter.Spec{}, nil); err != nil {
		t.Fatal(err)
	}
	assertSameDatabase(t, "latin")
	assertSameDatabase(t, "second db")
	enc := `SELECT pg_encoding_to_char(encoding), datcollate, datctype, datdba::regrole FROM pg_database WHERE datname = $1`
	for _, db := range []string{"latin", "second db"} {
		if src, dst := pgtest.Query(t, engine.TestPair.Source, "postgres", enc, db), pgtest.Query(t, engine.TestPair.Target, "postgres", enc, db); !reflect.DeepEqual(src, dst) {
			t.Errorf("database %s: source %v, target %v", db, src, dst)
		}
	}
}

func TestPostgresDatabaseOnlyWhenNamed(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE TABLE in_postgres (id int PRIMARY KEY); INSERT INTO in_postgres SELECT generate_series(1, 3)")
	t.Cleanup(func() {
		pgtest.Exec(t, engine.TestPair.Source, "postgres", "DROP TABLE in_postgres")
		pgtest.Exec(t, engine.TestPair.Target, "postgres", "DROP TABLE IF EXISTS in_postgres")
	})
	_, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"post*"}}, func(o *engine.Options) { o.SkipRoles = true })
	if err == nil || !strings.Contains(err.Error(), "a pattern never selects postgres: name it") {
		t.Fatalf("a glob must not select postgres: %v", err)
	}
	if _, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"postgres"}}, func(o *engine.Options) { o.SkipRoles = true }); err != nil {
		t.Fatal(err)
	}
	if got := pgtest.Query(t, engine.TestPair.Target, "postgres", "SELECT count(*) FROM in_postgres"); !reflect.DeepEqual(got, []string{"3"}) {
		t.Errorf("in_postgres on target: %v", got)
	}
}

// A target role without SUPERUSER (as on managed services) still gets the roles
// it may create; what it may not do becomes warnings.
func TestRolesOnNonSuperuserTarget(t *testing.T) {
	createRoles(t)
	pgtest.Exec(t, engine.TestPair.Target, "postgres", `
DROP ROLE IF EXISTS app_admin; DROP ROLE IF EXISTS app_reader; DROP ROLE IF EXISTS "Weird ""Role"""; DROP ROLE IF EXISTS app_owner;
CREATE ROLE app_owner LOGIN; CREATE ROLE manager LOGIN PASSWORD 'manager-pw' CREATEDB CREATEROLE; GRANT app_owner TO manager`)
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE owned OWNER app_owner")
	pgtest.Exec(t, engine.TestPair.Source, "owned", "SET ROLE app_owner; CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'one')")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "owned")
		pgtest.DropDatabases(t, engine.TestPair.Target, "owned")
		pgtest.Exec(t, engine.TestPair.Target, "postgres", `DROP ROLE manager; DROP ROLE IF EXISTS app_admin; DROP ROLE IF EXISTS app_reader;
		  DROP ROLE IF EXISTS "Weird ""Role"""; DROP ROLE app_owner`)
	})
	res, ev, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"owned"}}, func(o *engine.Options) {
		dst, err := conninfo.Parse("target", engine.TestPair.Target.URLAs("manager", "manager-pw", "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		o.Target = dst
	})
	if err != nil {
		t.Fatal(err)
	}
	roles := pgtest.Query(t, engine.TestPair.Target, "postgres", `SELECT rolname, rolsuper, rolcanlogin FROM pg_roles WHERE rolname IN ('app_admin', 'app_reader', 'Weird "Role"') ORDER BY 1`)
	if want := []string{`Weird "Role"|false|true`, "app_admin|false|false", "app_reader|false|false"}; !reflect.DeepEqual(roles, want) {
		t.Errorf("roles on target %v, want %v", roles, want)
	}
	warnings := strings.Join(res.Warnings, "\n")
	if !strings.Contains(warnings, "role app_admin created without SUPERUSER") {
		t.Errorf("no warning about app_admin:\n%s", warnings)
	}
	// The summary names the source's roles that were already there (not
	// the target's count of roles).
	var said string
	for _, e := range ev.of(progress.Info) {
		if strings.HasPrefix(e.Message, "roles: ") {
			said = e.Message
		}
	}
	if !strings.HasPrefix(said, "roles: 3 created, ") || !strings.Contains(said, "already on the target and left as they are: ") ||
		!strings.Contains(said, "app_owner") || strings.Contains(said, "manager") {
		t.Errorf("roles summary: %q", said)
	}
	// app_owner existed on the target: its attributes are the target's business.
	if got := pgtest.Query(t, engine.TestPair.Target, "postgres", "SELECT rolcreatedb, rolpassword IS NULL FROM pg_authid WHERE rolname = 'app_owner'"); !reflect.DeepEqual(got, []string{"false|true"}) {
		t.Errorf("existing role app_owner was altered: %v", got)
	}
	assertSameDatabase(t, "owned")
}

func TestProgressReaches100WithExcludedChildren(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE inherit")
	pgtest.Exec(t, engine.TestPair.Source, "inherit", `CREATE TABLE parent (id int); CREATE TABLE child () INHERITS (parent);
	  INSERT INTO child SELECT generate_series(1, 100); CREATE TABLE other AS SELECT generate_series(1, 100) AS id; ANALYZE`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "inherit")
		pgtest.DropDatabases(t, engine.TestPair.Target, "inherit")
	})
	res, ev, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"inherit"}, ExcludeTables: []string{"parent"}}, func(o *engine.Options) { o.SkipRoles = true })
	if err != nil {
		t.Fatal(err)
	}
	if len(res.Tables) != 1 || res.Tables[0].Table != "public.other" {
		t.Errorf("tables copied: %+v", res.Tables)
	}
	if !strings.Contains(strings.Join(res.Warnings, "\n"), "public.child left out") {
		t.Errorf("warnings: %v", res.Warnings)
	}
	ticks := ev.of(progress.Tick)
	if last := ticks[len(ticks)-1].Overall; last.Percent < 99.9 || last.TablesTotal != 1 {
		t.Errorf("final progress %+v", last)
	}
}

// A managed target (RDS, Cloud SQL, Neon, Supabase) gives a role with CREATEDB
// and CREATEROLE but not SUPERUSER. Everything copies; what such a role may not do
// becomes warnings in the summary.
func TestManagedTarget(t *testing.T) {
	createRoles(t)
	src, dst := engine.TestPair.Source, engine.TestPair.Target
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE fidelity OWNER app_owner")
	pgtest.Exec(t, src, "fidelity", fidelitySQL)
	pgtest.Exec(t, dst, "postgres", `DROP ROLE IF EXISTS app_admin; DROP ROLE IF EXISTS app_reader; DROP ROLE IF EXISTS "Weird ""Role"""; DROP ROLE IF EXISTS app_owner;
	  CREATE ROLE cloud_admin LOGIN PASSWORD 'cloud-pw' CREATEDB CREATEROLE`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, src, "fidelity")
		pgtest.DropDatabases(t, dst, "fidelity")
		pgtest.Exec(t, dst, "postgres", `DROP ROLE cloud_admin; DROP ROLE IF EXISTS app_admin; DROP ROLE IF EXISTS app_reader;
		  DROP ROLE IF EXISTS "Weird ""Role"""; DROP ROLE IF EXISTS app_owner`)
	})
	res, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"fidelity"}}, func(o *engine.Options) {
		ep, err := conninfo.Parse("target", dst.URLAs("cloud_admin", "cloud-pw", "postgres"))
		if err != nil {
			t.Fatal(err)
		}
		o.Target = ep
	})
	if err != nil {
		t.Fatalf("copy into a managed target failed: %v", err)
	}
	// Every row arrived.
	srcHashes, dstHashes := pgtest.TableHashes(t, src, "fidelity"), pgtest.TableHashes(t, dst, "fidelity")
	if !reflect.DeepEqual(srcHashes, dstHashes) {
		t.Errorf("data differs:\nsource %v\ntarget %v", srcHashes, dstHashes)
	}
	// The refusals are reported, grouped, in the summary.
	warnings := strings.Join(res.Warnings, "\n")
	for _, want := range []string{
		"role app_admin created without SUPERUSER",
		"ownership changes (the objects stay owned by the connecting role)",
		"privileges not granted",
		"settings that need a superuser",
		"objects only a superuser may create",
		"LANGUAGE internal",
		"EVENT TRIGGER",
	} {
		if !strings.Contains(warnings, want) {
			t.Errorf("warnings lack %q:\n%s", want, warnings)
		}
	}
	// Objects stay with the connecting role, and grants it could make were made.
	if got := pgtest.Query(t, dst, "fidelity", `SELECT tableowner FROM pg_tables WHERE schemaname = 'app' AND tablename = 'kitchen_sink'`); !reflect.DeepEqual(got, []string{"cloud_admin"}) {
		t.Errorf("kitchen_sink owner %v", got)
	}
	if got := pgtest.Query(t, dst, "fidelity", `SELECT has_table_privilege('app_reader', 'app.v_happy', 'SELECT')`); !reflect.DeepEqual(got, []string{"true"}) {
		t.Errorf("grant to app_reader missing: %v", got)
	}
	// A refused setting does not take the database's other settings with it.
	if got := pgtest.Query(t, dst, "postgres", `SELECT array_to_string(setconfig, ',') FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
	  WHERE d.datname = 'fidelity' AND s.setrole = 0`); !reflect.DeepEqual(got, []string{"work_mem=8MB"}) {
		t.Errorf("database settings on the target: %v", got)
	}
}

// A copy that fails part-way says what it copied before the failure (it said
// "Copied 0 tables" after 19 of 21): here the last table's rows break a
// domain's check on the target only (the check reads the server's port).
func TestFailedCopySaysWhatItCopied(t *testing.T) {
	src := engine.TestPair.Source
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE halfway")
	pgtest.Exec(t, src, "halfway", fmt.Sprintf(`
CREATE DOMAIN here_only AS int CHECK (VALUE < 0 OR pg_catalog.inet_server_port() = %d);
CREATE TABLE a (id int PRIMARY KEY, pad text); INSERT INTO a SELECT g, repeat('a', 300) FROM generate_series(1, 3000) g;
CREATE TABLE b (id int PRIMARY KEY, pad text); INSERT INTO b SELECT g, repeat('b', 200) FROM generate_series(1, 3000) g;
CREATE TABLE c (id int PRIMARY KEY, pad text); INSERT INTO c SELECT g, repeat('c', 100) FROM generate_series(1, 3000) g;
CREATE TABLE z (v here_only); INSERT INTO z VALUES (1); ANALYZE`, src.Port))
	t.Cleanup(func() {
		pgtest.DropDatabases(t, src, "halfway")
		pgtest.DropDatabases(t, engine.TestPair.Target, "halfway")
	})
	// One copier, largest table first: a, b and c are in when z fails.
	res, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"halfway"}}, func(o *engine.Options) { o.SkipRoles, o.Jobs = true, 1 })
	if err == nil || !strings.Contains(err.Error(), "here_only") {
		t.Fatalf("want the copy of z to fail on the domain's check, got %v", err)
	}
	var got []string
	for _, tr := range res.Tables {
		got = append(got, fmt.Sprintf("%s:%d", tr.Table, tr.Rows))
	}
	if strings.Join(got, " ") != "public.a:3000 public.b:3000 public.c:3000" || res.Rows != 9000 {
		t.Errorf("a failed run's result lists %v (%d rows), want a, b and c", got, res.Rows)
	}
}
