package peer_test

import (
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

const pagilaPassword = "0wn3d-pagila"

// loadPagila loads pagila's schema and data (devrimgunduz/pagila at
// e0e35a6, the last revision without pgvector) into db on c, through url
// (the role that will own it all). ownFilter drops "OWNER TO postgres"
// lines, as pgcopydb's tests do to load it as a role without SUPERUSER.
func loadPagila(t *testing.T, url string, ownFilter bool) {
	t.Helper()
	var filter func(string) bool
	if ownFilter {
		filter = func(l string) bool { return strings.Contains(l, "OWNER TO postgres") }
	}
	psql(t, url, testdata(t, "pagila-schema.sql"), true, filter)
	psql(t, url, testdata(t, "pagila-data.sql.gz"), true, nil)
}

// pagilaCounts are the rows of pagila-data.sql, per table.
var pagilaCounts = map[string]string{
	"public.actor": "200", "public.address": "603", "public.category": "16", "public.city": "600",
	"public.country": "109", "public.customer": "599", "public.film": "1000", "public.film_actor": "5462",
	"public.film_category": "2367", "public.inventory": "4581", "public.language": "6", "public.rental": "16044",
	"public.staff": "1500", "public.store": "500", "public.payment_p2022_01": "723", "public.payment_p2022_02": "2401",
	"public.payment_p2022_03": "2713", "public.payment_p2022_04": "2547", "public.payment_p2022_05": "2677",
	"public.payment_p2022_06": "2654", "public.payment_p2022_07": "2334",
}

// pgcopydb tests/pagila: the database is owned by a role without
// SUPERUSER, which runs the copy on both sides; extensions live in odd
// schemas; the target database is already there with two empty schemas
// of the source's (bar, "With a space"); the source database's
// CONNECTION LIMIT 8 is below --jobs 12.
func TestPeerPagila(t *testing.T) {
	const db = "pagila"
	cleanup(t, []string{db}, "pagila")
	for _, c := range []*pgcluster.Cluster{pair.Source, pair.Target} {
		sql(t, c, "postgres", "CREATE ROLE pagila NOSUPERUSER CREATEDB NOCREATEROLE LOGIN PASSWORD '"+pagilaPassword+"'")
	}
	sql(t, pair.Source, "postgres", "CREATE DATABASE pagila OWNER pagila CONNECTION LIMIT 8")
	sql(t, pair.Target, "postgres", "CREATE DATABASE pagila OWNER pagila CONNECTION LIMIT 10")
	src, dst := pair.Source.URLAs("pagila", pagilaPassword, db), pair.Target.URLAs("pagila", pagilaPassword, db)

	// Extensions in the default and in other schemas (all trusted: the
	// database owner may create them).
	sqlAs(t, src, `create extension ltree;
create extension hstore;
create schema foo;
create extension intarray schema foo cascade;
create schema bar;
create extension pg_trgm schema bar cascade;
create schema "Foo Bar";
create extension pgcrypto schema "Foo Bar" cascade;
create schema "With a space";
create extension seg schema "With a space" cascade;`)
	// Schemas pre-created on the target, empty: kept.
	sqlAs(t, dst, `create schema bar;
create schema "With a space";`)
	loadPagila(t, src, true)
	// pagila creates its materialized view WITH NO DATA: populated, the
	// copy has one to refresh.
	sqlAs(t, src, "REFRESH MATERIALIZED VIEW public.rental_by_category")
	for table, want := range pagilaCounts {
		expect(t, pair.Source, db, "SELECT count(*) FROM ONLY "+table, want)
	}

	r := replicator(t, "init", "--source", pair.Source.URLAs("pagila", pagilaPassword, "postgres"),
		"--target", pair.Target.URLAs("pagila", pagilaPassword, "postgres"),
		"--include-databases", db, "--jobs", "12", "--no-roles")
	mustSucceed(t, "init", r)

	// The jobs were fitted to the source database's limit, said so, and
	// never hit it.
	for _, want := range []string{"database pagila's CONNECTION LIMIT 8", "instead of 12"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("init does not say %q:\n%s", want, r.stderr)
		}
	}
	if strings.Contains(r.stderr, "too many connections") {
		t.Errorf("the copy ran into the connection limit:\n%s", r.stderr)
	}
	// The pre-created schemas were kept, and said so.
	for _, want := range []string{"pagila: kept schema bar, already on the target", `pagila: kept schema "With a space", already on the target`} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("the summary does not say %q:\n%s", want, r.stdout)
		}
	}
	// The source's limit is the target's, once the copy is done.
	expect(t, pair.Target, "postgres", "SELECT datconnlimit FROM pg_database WHERE datname = 'pagila'", "8")
	expect(t, pair.Target, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = 'pagila'", "pagila")

	// Every extension in its schema, at the source's version.
	same(t, db, "SELECT extname, extnamespace::regnamespace::text, extversion, pg_get_userbyid(extowner) FROM pg_extension ORDER BY 1")
	expect(t, pair.Target, db, "SELECT extname || ' ' || extnamespace::regnamespace::text FROM pg_extension WHERE extname <> 'plpgsql' ORDER BY 1",
		"hstore public", "intarray foo", "ltree public", `pg_trgm bar`, `pgcrypto "Foo Bar"`, `seg "With a space"`)
	// Schemas, owned by pagila.
	same(t, db, "SELECT nspname, pg_get_userbyid(nspowner) FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema' ORDER BY 1")
	// Every table's rows, counted and hashed; every object, sequence and
	// materialized view (fixture.Compare).
	for table, want := range pagilaCounts {
		expect(t, pair.Target, db, "SELECT count(*) FROM ONLY "+table, want)
	}
	fixture.Compare(t, pair.Source, pair.Target, db)
	expect(t, pair.Target, db, "SELECT count(*) FROM public.payment", "16049")
	expect(t, pair.Target, db, "SELECT relispopulated FROM pg_class WHERE oid = 'public.rental_by_category'::regclass", "true")
	same(t, db, "SELECT * FROM public.rental_by_category ORDER BY 1")
	same(t, db, "SELECT last_value FROM public.rental_rental_id_seq")
	// The functions work on the target (they read the copied rows).
	same(t, db, "SELECT public.inventory_in_stock(i) FROM generate_series(1, 100) i")
	same(t, db, "SELECT count(*) FROM public.film_in_stock(1, 1)")

	verify(t, "--source", src, "--target", dst, "--include-databases", db)
}
