package peer_test

import (
	"reflect"
	"strings"
	"testing"
)

// pgcopydb tests/filtering: pagila plus extra.sql (testdata/filtering-*),
// copied with the filters of exclude.ini, then with those of include.ini,
// translated into replicator's flags. The pgcopydb database is named
// "filtering" here, so every pattern starts with "filtering.".
const filteringDB = "filtering"

// The translation of tests/filtering/exclude.ini:
//
//	[exclude-schema]        public, bar, schema_name_20_chars  → --exclude-schemas
//	[exclude-table]         foo.test_tbl_2, app.foo, foo.matview_1_exclude_as_table,
//	                        foo.~/^tbl/ (a regexp: the glob foo.tbl*) → --exclude-tables
//	[exclude-table-data]    foo.matview_1_exclude_data,
//	                        partitioned_tables.sellers_archive → --schema-only-tables
var excludeINI = []string{
	"--exclude-schemas", "filtering.public,filtering.bar,filtering.schema_name_20_chars",
	"--exclude-tables", "filtering.foo.test_tbl_2,filtering.app.foo,filtering.foo.matview_1_exclude_as_table,filtering.foo.tbl*",
	"--schema-only-tables", "filtering.foo.matview_1_exclude_data,filtering.partitioned_tables.sellers_archive",
}

// The translation of tests/filtering/include.ini, without its
// [exclude-index] (TestPeerFilteringIndexesAndExtensions):
//
//	[include-only-schema]   public, schema_name_20_chars, ~/^seq$/ → --include-schemas
//	[include-only-table]    public.actor ... public.rental,
//	                        schema_name_20_chars.very_..._50_chars → --include-tables
//	[exclude-table-data]    public.rental → --schema-only-tables
var (
	includeSchemas = []string{"--include-schemas", "filtering.public,filtering.schema_name_20_chars,filtering.seq"}
	includeTables  = "filtering.public.actor,filtering.public.category,filtering.public.film,filtering.public.film_actor," +
		"filtering.public.film_category,filtering.public.language,filtering.public.rental," +
		"filtering.schema_name_20_chars.very______long______table______name_______50_chars"
	includeData = "filtering.public.rental"
)

// loadFiltering creates the filtering database on the source: pagila and
// pgcopydb's extra.sql, loaded as the superuser as pgcopydb's test does.
func loadFiltering(t *testing.T) {
	t.Helper()
	cleanup(t, []string{filteringDB})
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+filteringDB)
	loadPagila(t, pair.Source.URL(filteringDB), false)
	psql(t, pair.Source.URL(filteringDB), testdata(t, "filtering-extra.sql"), true, nil)
}

func filteringRun(args ...string) []string {
	return append(append([]string{"init"}, conn()...), append([]string{"--no-roles", "--include-databases", filteringDB}, args...)...)
}

func TestPeerFiltering(t *testing.T) {
	const db = filteringDB
	loadFiltering(t)

	t.Run("exclude.ini", func(t *testing.T) {
		r := replicator(t, filteringRun(excludeINI...)...)
		mustSucceed(t, "init with exclude.ini's filters", r)
		// An exclude pattern that matches nothing is a warning.
		if !strings.Contains(r.stderr, `--exclude-tables "filtering.foo.test_tbl_2" matches no table`) {
			t.Errorf("no warning for the exclude pattern that matches nothing:\n%s", r.stderr)
		}
		// Excluded schemas are not created (public comes with every new
		// database: it must hold nothing of the source's).
		expect(t, pair.Target, db, `SELECT nspname FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1`,
			"app", "copy", "foo", "partitioned_tables", "public", "seq")
		expect(t, pair.Target, db, `SELECT count(*) FROM pg_class WHERE relnamespace = 'public'::regnamespace`, "0")
		expect(t, pair.Target, db, `SELECT count(*) FROM pg_proc WHERE pronamespace = 'public'::regnamespace`, "0")
		expect(t, pair.Target, db, `SELECT count(*) FROM pg_type WHERE typnamespace = 'public'::regnamespace`, "0")
		// Exactly these tables and materialized views.
		if got, want := tables(t, pair.Target, db), []string{"copy.foo", "foo.matview_1", "foo.matview_1_exclude_data",
			"partitioned_tables.sellers", "partitioned_tables.sellers_active", "partitioned_tables.sellers_archive",
			"seq.default_table", "seq.identity_table"}; !reflect.DeepEqual(got, want) {
			t.Errorf("tables on the target:\n got %q\nwant %q", got, want)
		}
		// exclude/expected/1-ignore-matview.out: the schema-only one is
		// there WITH NO DATA; the one over an excluded one is left out.
		expect(t, pair.Target, db, "select schemaname, matviewname, ispopulated from pg_matviews order by 1, 2",
			"foo|matview_1|true", "foo|matview_1_exclude_data|false")
		expect(t, pair.Target, db, "SELECT * FROM foo.matview_1", "1")
		if !strings.Contains(r.stderr, "foo.matview_2_depends_on_matview_1_exclude_as_table left out") {
			t.Errorf("no warning for the materialized view left out:\n%s", r.stderr)
		}
		// exclude/expected/2-sequences.out.
		for _, q := range [][2]string{
			{"seq.default_table_id_seq", "667"}, {"seq.identity_table_id_seq", "668"}, {"seq.standalone_id_seq", "669"},
			{"seq.standalone_smallint_id_seq", "670"}, {"seq.standalone_minvalue_id_seq", "671"},
		} {
			expect(t, pair.Target, db, "select last_value from "+q[0], q[1])
		}
		same(t, db, "SELECT sequencename, last_value FROM pg_sequences WHERE schemaname = 'seq' ORDER BY 1")
		// exclude/expected/3-regex-filter.out: no foo.tbl* table.
		expect(t, pair.Target, db, "select tablename from pg_tables where schemaname = 'foo' and tablename like 'tbl%' order by 1")
		// The schema-only partition has no rows, the other has its own.
		expect(t, pair.Target, db, "SELECT id, archive FROM partitioned_tables.sellers ORDER BY id", "1|0", "3|0")
		expect(t, pair.Target, db, "SELECT count(*) FROM partitioned_tables.sellers_archive", "0")
		// pgcopydb issue 390: copy.foo is "like app.foo including all": its
		// default draws from app.foo's sequence, which therefore stays.
		expect(t, pair.Target, db, "SELECT to_regclass('app.foo') IS NULL, to_regclass('app.foo_id_seq') IS NOT NULL", "true|true")
		expect(t, pair.Target, db, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'copy.foo'::regclass",
			"nextval('app.foo_id_seq'::regclass)")
		// A sequence owned by a table follows the table (README, Filters):
		// the bigserial sequences of the excluded foo.tbl* tables, which
		// nothing kept uses, are not created.
		expect(t, pair.Target, db, "SELECT relname FROM pg_class WHERE relnamespace = 'foo'::regnamespace AND relkind = 'S' ORDER BY 1")
		// verify with the same filters agrees.
		verify(t, append(append(conn(), "--include-databases", db), excludeINI...)...)
	})

	t.Run("include.ini", func(t *testing.T) {
		before := tables(t, pair.Target, db)
		run := func(args ...string) result {
			return replicator(t, filteringRun(append(append([]string{"--drop-existing", "--yes"}, includeSchemas...), args...)...)...)
		}
		// public.rewards_report() returns SETOF public.customer, which
		// --include-tables leaves out: refused before any change.
		r := run("--include-tables", includeTables, "--schema-only-tables", includeData)
		refused(t, r, "function public.rewards_report(integer,numeric) needs public.customer", "--schema-only-tables")
		if after := tables(t, pair.Target, db); !reflect.DeepEqual(before, after) {
			t.Fatalf("the refused run changed the target: %v, then %v", before, after)
		}
		// The fix it gives must work when the table was left out by
		// --include-tables (not --exclude-tables): it has to be named
		// there too, which the refusal should say.
		r = run("--include-tables", includeTables, "--schema-only-tables", includeData+",filtering.public.customer")
		if r.code != 0 && !strings.Contains(r.stderr, "--include-tables") {
			t.Errorf("following the refusal's fix (customer in --schema-only-tables) is refused again, and the refusal does not say to name it in --include-tables:\n%s", r.stderr)
		}
		if after := tables(t, pair.Target, db); r.code != 0 && !reflect.DeepEqual(before, after) {
			t.Fatalf("the refused run changed the target: %v, then %v", before, after)
		}

		// The run as the refusal means it: customer's structure, no rows.
		filters := []string{"--include-tables", includeTables + ",filtering.public.customer", "--schema-only-tables", includeData + ",filtering.public.customer"}
		r = run(filters...)
		mustSucceed(t, "init with include.ini's filters", r)
		// include/expected/1-empty-rental.out, 2-payment-does-not-exists.out.
		expect(t, pair.Target, db, "select count(*) from public.rental", "0")
		expect(t, pair.Target, db, "select count(*) from public.customer", "0")
		expect(t, pair.Target, db, `select exists (select 1 from pg_class c join pg_namespace n on n.oid = c.relnamespace
			where n.nspname = 'public' and c.relname = 'payment')`, "false")
		// 3-schema-bar-does-not-exists.out, on a target of its own: only
		// the included schemas.
		expect(t, pair.Target, db, `select nspname from pg_namespace where nspname !~ '^pg_' and nspname <> 'information_schema' order by nspname`,
			"public", "schema_name_20_chars", "seq")
		// 6-exact-schema-survives-regex-filter.out.
		expect(t, pair.Target, db, "select count(*) from pg_tables where schemaname = 'schema_name_20_chars'", "1")
		// Exactly the included tables, with the source's rows but for the
		// schema-only ones. The seq schema is included, but none of its
		// tables is named by --include-tables: its tables stay out, its
		// standalone sequences come (5-regex-schema-filter.out counted the
		// tables an earlier pgcopydb run had left on the same target).
		if got, want := tables(t, pair.Target, db), []string{"public.actor", "public.category", "public.customer", "public.film",
			"public.film_actor", "public.film_category", "public.language", "public.rental",
			"schema_name_20_chars.very______long______table______name_______50_chars"}; !reflect.DeepEqual(got, want) {
			t.Errorf("tables on the target:\n got %q\nwant %q", got, want)
		}
		for _, table := range []string{"actor", "category", "film", "film_actor", "film_category", "language"} {
			expect(t, pair.Target, db, "SELECT count(*) FROM public."+table, pagilaCounts["public."+table])
			same(t, db, "SELECT md5(string_agg(t::text, ',' ORDER BY t::text)) FROM public."+table+" t")
		}
		for _, q := range [][2]string{{"seq.standalone_id_seq", "669"}, {"seq.standalone_smallint_id_seq", "670"}, {"seq.default_table_id_seq", "667"}} {
			expect(t, pair.Target, db, "select last_value from "+q[0], q[1])
		}
		// 4-exclude-index.out is TestPeerFilteringIndexesAndExtensions's:
		// here the index is copied.
		expect(t, pair.Target, db, "select count(*) from pg_indexes where schemaname = 'public' and tablename = 'actor' and indexname = 'idx_actor_last_name'", "1")
		// Views over left-out tables are left out; those over kept ones stay
		// and answer as on the source.
		expect(t, pair.Target, db, "SELECT to_regclass('public.sales_by_store') IS NULL, to_regclass('public.staff_list') IS NULL", "true|true")
		// (Not its actors column: pagila's group_concat lists them in scan
		// order, which differs between two servers under load.)
		same(t, db, "SELECT count(*), md5(string_agg((fid, title, category, price, length, rating)::text, ',' ORDER BY fid, category)) FROM public.film_list")
		// The foreign key between the two schema-only tables is there
		// (rental has no rows to break it); those into left-out tables
		// are skipped, with a warning.
		expect(t, pair.Target, db, "SELECT conname FROM pg_constraint WHERE conrelid = 'public.rental'::regclass AND contype = 'f' ORDER BY 1",
			"rental_customer_id_fkey")
		for _, fk := range []string{"rental_inventory_id_fkey on table public.rental skipped", "rental_staff_id_fkey on table public.rental skipped"} {
			if !strings.Contains(r.stderr, fk) {
				t.Errorf("no warning %q:\n%s", fk, r.stderr)
			}
		}
		verify(t, append(append(conn(), "--include-databases", db), append(includeSchemas, filters...)...)...)
	})
}

// include.ini's [exclude-index] (include/expected/4-exclude-index.out) and
// tests/extensions' exclude-extension.ini ([exclude-extension] intarray),
// as --exclude-indexes db.schema.index and --exclude-extensions db.extname.
// (include-only-extension.ini has no counterpart: replicator has no
// --include-extensions.)
func TestPeerFilteringIndexesAndExtensions(t *testing.T) {
	t.Run("exclude-index", func(t *testing.T) {
		const db = filteringDB
		loadFiltering(t)
		filters := append(append([]string{}, includeSchemas...),
			"--include-tables", includeTables+",filtering.public.customer", "--schema-only-tables", includeData+",filtering.public.customer")
		// An index that backs a primary key: refused before any change.
		r := replicator(t, filteringRun(append(filters, "--exclude-indexes", "filtering.public.actor_pkey")...)...)
		refused(t, r, "actor_pkey")
		if databaseOnTarget(t, db) {
			t.Fatal("the refused run created the target database")
		}
		r = replicator(t, filteringRun(append(filters, "--exclude-indexes", "filtering.public.idx_actor_last_name")...)...)
		mustSucceed(t, "init with --exclude-indexes", r)
		// 4-exclude-index.out: that index is not built, the others are.
		expect(t, pair.Target, db, `select exists(select schemaname, tablename, indexname from pg_indexes
			where schemaname = 'public' and tablename = 'actor' and indexname = 'idx_actor_last_name')`, "false")
		expect(t, pair.Target, db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'actor' ORDER BY 1", "actor_pkey")
		same(t, db, "SELECT indexname FROM pg_indexes WHERE schemaname = 'public' AND tablename = 'film' ORDER BY 1")
		expect(t, pair.Target, db, "SELECT count(*) FROM public.actor", "200")
		verify(t, append(append(conn(), "--include-databases", db), filters...)...)
	})

	t.Run("exclude-extension", func(t *testing.T) {
		const db = "extfilter"
		cleanup(t, []string{db})
		sql(t, pair.Source, "postgres", "CREATE DATABASE "+db)
		// tests/extensions: intarray in public, hstore in schema foo
		// (postgis too there: not in PostgreSQL's contrib), the circular
		// foreign keys of its ddl.sql; a table of hstore values.
		sql(t, pair.Source, db, `create extension intarray cascade;
create schema foo;
create extension hstore with schema foo cascade;
create table kv (id int primary key, h foo.hstore);
insert into kv select g, foo.hstore('k', g::text) from generate_series(1, 50) g;`)
		psql(t, pair.Source.URL(db), testdata(t, "extensions-ddl.sql"), false, nil)
		base := append(append([]string{"init"}, conn()...), "--no-roles", "--include-databases", db)

		// A kept table needs hstore: leaving hstore out is refused before
		// anything changes.
		r := replicator(t, append(base, "--exclude-extensions", db+".hstore")...)
		refused(t, r, "hstore")
		if databaseOnTarget(t, db) {
			t.Fatalf("the refused run created the target database")
		}
		// Left out with what needs it, as the refusal says.
		r = replicator(t, append(base, "--exclude-extensions", db+".hstore", "--exclude-tables", db+".public.kv")...)
		if r.code != 0 {
			t.Errorf("init without hstore and the only table that uses it (as the refusal says) failed:\n%s", r)
		} else {
			expect(t, pair.Target, db, "SELECT extname FROM pg_extension ORDER BY 1", "intarray", "plpgsql")
			expect(t, pair.Target, db, "SELECT to_regclass('public.kv') IS NULL, to_regnamespace('foo') IS NOT NULL", "true|true")
			pgtestDrop(t, db)
		}

		// exclude-extension.ini: intarray left out, hstore copied.
		r = replicator(t, append(base, "--exclude-extensions", db+".intarray")...)
		mustSucceed(t, "init with --exclude-extensions intarray", r)
		expect(t, pair.Target, db, "SELECT count(*) FROM pg_extension WHERE extname = 'intarray'", "0")
		expect(t, pair.Target, db, "SELECT extname || ' ' || extnamespace::regnamespace::text FROM pg_extension WHERE extname IN ('hstore', 'intarray')", "hstore foo")
		same(t, db, "SELECT extversion FROM pg_extension WHERE extname = 'hstore'")
		same(t, db, "SELECT id, h::text FROM kv ORDER BY id")
		// Nothing of intarray's is left on the target.
		expect(t, pair.Target, db, "SELECT count(*) FROM pg_proc WHERE proname = 'intset'", "0")
		same(t, db, "SELECT conname FROM pg_constraint WHERE contype = 'f' ORDER BY 1")
		verify(t, append(conn(), "--include-databases", db)...)
	})
}

// pgtestDrop drops db on the target only (between two runs of a test).
func pgtestDrop(t *testing.T, db string) {
	t.Helper()
	sql(t, pair.Target, "postgres", "DROP DATABASE IF EXISTS "+db+" WITH (FORCE)")
}
