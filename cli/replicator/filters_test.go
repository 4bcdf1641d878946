package main_test

import (
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// pgcopydb's filtering scenarios, on a pagila-like schema: a function that
// returns a table's rows, a partitioned table, materialized views. Each
// filter does what it says, or is refused before anything changes.
func TestFiltersOverRealSchemas(t *testing.T) {
	t.Parallel()
	const db = "filtering"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `
CREATE TABLE customer (id int PRIMARY KEY, name text);
INSERT INTO customer SELECT g, 'c' || g FROM generate_series(1, 100) g;
CREATE FUNCTION public.customers() RETURNS SETOF public.customer LANGUAGE sql AS 'SELECT * FROM public.customer';
CREATE TABLE payment (id int, paid date NOT NULL, amount numeric, PRIMARY KEY (id, paid)) PARTITION BY RANGE (paid);
CREATE TABLE payment_p2022_01 PARTITION OF payment FOR VALUES FROM ('2022-01-01') TO ('2022-02-01');
CREATE TABLE payment_p2022_02 PARTITION OF payment FOR VALUES FROM ('2022-02-01') TO ('2022-03-01');
INSERT INTO payment SELECT g, DATE '2022-01-01' + (g % 59), g FROM generate_series(1, 590) g;
CREATE MATERIALIZED VIEW mv_total AS SELECT paid, sum(amount) AS total FROM payment GROUP BY paid;
CREATE MATERIALIZED VIEW mv_names AS SELECT name FROM customer;
CREATE TABLE rental (id int PRIMARY KEY); INSERT INTO rental SELECT generate_series(1, 10)`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	args := func(more ...string) []string {
		return append([]string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles"}, more...)
	}
	noTarget := func(when string) {
		t.Helper()
		if got := pgtest.Query(t, pair.Target, "postgres", "SELECT count(*) FROM pg_database WHERE datname = '"+db+"'"); got[0] != "0" {
			t.Fatalf("%s: the target database was created", when)
		}
	}

	// A kept function returns the excluded table's rows: refused up front,
	// with both fixes (pgcopydb's run failed half-way in pre-data).
	r := replicator(t, nil, args("--exclude-tables", db+".public.customer")...)
	assertOneLineError(t, r, "the filters leave out tables that kept objects need: filtering: function public.customers() needs public.customer")
	if !strings.Contains(r.stderr, "--schema-only-tables instead of --exclude-tables") {
		t.Errorf("refusal lacks the fix: %s", r.stderr)
	}
	noTarget("excluded customer")

	// Partitions named without their table: refused, never ignored.
	r = replicator(t, nil, args("--exclude-tables", db+".public.payment_p*")...)
	assertOneLineError(t, r, `--exclude-tables "filtering.public.payment_p*" names partitions of public.payment (public.payment_p2022_01, public.payment_p2022_02) but not the table`)
	noTarget("excluded partitions")

	// What each filter does: a schema-only table and partition keep their
	// structure without rows, a schema-only materialized view is created
	// WITH NO DATA, an excluded one is not created.
	r = replicator(t, nil, args("--schema-only-tables", "customer,payment_p2022_01,mv_total", "--exclude-tables", "mv_names")...)
	if r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	for q, want := range map[string]string{
		"SELECT count(*) FROM customer":                                  "0",
		"SELECT count(*) FROM public.customers()":                        "0",
		"SELECT count(*) FROM payment_p2022_01":                          "0",
		"SELECT count(*) FROM payment_p2022_02":                          pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM payment_p2022_02")[0],
		"SELECT count(*) FROM rental":                                    "10",
		"SELECT relispopulated FROM pg_class WHERE relname = 'mv_total'": "false",
		"SELECT count(*) FROM pg_class WHERE relname = 'mv_names'":       "0",
	} {
		if got := pgtest.Query(t, pair.Target, db, q); !reflect.DeepEqual(got, []string{want}) {
			t.Errorf("%s: %v, want %s", q, got, want)
		}
	}
	// verify agrees: the schema-only partition's rows are not compared.
	r = replicator(t, nil, "verify", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db,
		"--schema-only-tables", "customer,payment_p2022_01,mv_total", "--exclude-tables", "mv_names")
	if r.code != 0 || strings.Contains(r.stdout, "DIFFERENT") {
		t.Errorf("verify (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// --include-schemas and --exclude-schemas, as pg_dump's -n and -N: a schema
// left out goes with everything in it (tables, sequences, views, functions).
func TestSchemaFilters(t *testing.T) {
	t.Parallel()
	const db = "schemafilter"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `
CREATE TABLE t1 (id int PRIMARY KEY); INSERT INTO t1 VALUES (1);
CREATE SCHEMA sales; CREATE TABLE sales.orders (id serial PRIMARY KEY, v text); INSERT INTO sales.orders (v) SELECT 'o' FROM generate_series(1, 30);
CREATE VIEW sales.recent AS SELECT * FROM sales.orders WHERE id > 20;
CREATE SCHEMA audit; CREATE TABLE audit.log (id bigserial PRIMARY KEY, at timestamptz DEFAULT now()); INSERT INTO audit.log DEFAULT VALUES;
CREATE FUNCTION audit.last() RETURNS SETOF audit.log LANGUAGE sql AS 'SELECT * FROM audit.log';
CREATE SCHEMA "Mixed Case"; CREATE TABLE "Mixed Case".x (id int)`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	run := func(args ...string) result {
		return replicator(t, nil, append(append([]string{"init", "--no-roles", "--drop-existing", "--yes"}, conn...), args...)...)
	}
	r := run("--include-schemas", "mixed case")
	assertOneLineError(t, r, `--include-schemas "mixed case" matches no schema: unquoted names are folded to lower case; to match "Mixed Case", quote it`)

	r = run("--exclude-schemas", db+".audit")
	if r.code != 0 {
		t.Fatalf("--exclude-schemas: %d\n%s", r.code, r.stderr)
	}
	schemas := func() []string {
		return pgtest.Query(t, pair.Target, db, "SELECT string_agg(nspname, ',' ORDER BY nspname) FROM pg_namespace WHERE nspname !~ '^pg_' AND nspname <> 'information_schema'")
	}
	if got := schemas(); !reflect.DeepEqual(got, []string{"Mixed Case,public,sales"}) {
		t.Errorf("schemas after --exclude-schemas audit: %v", got)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) || ' ' || (SELECT last_value FROM sales.orders_id_seq) FROM sales.recent"); !reflect.DeepEqual(got, []string{"10 30"}) {
		t.Errorf("sales after --exclude-schemas audit: %v", got)
	}

	r = run("--include-schemas", `sales,"Mixed Case"`)
	if r.code != 0 {
		t.Fatalf("--include-schemas: %d\n%s", r.code, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_class WHERE relname IN ('t1', 'log', 'orders', 'x')"); !reflect.DeepEqual(got, []string{"2"}) {
		t.Errorf("tables after --include-schemas sales: %v", got)
	}
	r = replicator(t, nil, append(append([]string{"verify"}, conn...), "--include-schemas", `sales,"Mixed Case"`)...)
	if r.code != 0 || strings.Contains(r.stdout, "DIFFERENT") || strings.Contains(r.stdout, "t1") {
		t.Errorf("verify --include-schemas (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// Issue 22, 9: a predicate that closes its parenthesis and stacks
// statements ran them on the source as the caller's role (COMMIT ended the
// read-only snapshot, then CREATE TABLE). Predicates are now read by the
// server as one expression first, with a protocol that takes a single
// statement, for init, sync and verify alike; nothing runs.
func TestStackedPredicateIsRefused(t *testing.T) {
	t.Parallel()
	const db = "stacked"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.DropDatabases(t, pair.Source, db); pgtest.DropDatabases(t, pair.Target, db) })
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
	attack := db + ".public.t:id<0)) TO STDOUT; COMMIT; CREATE TABLE pwned (x int); COPY (SELECT 1 WHERE (true"
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	for _, cmd := range [][]string{{"init", "--no-roles", "--skip-validate"}, {"verify"}, {"sync", "--replica-identity-full"}} {
		r := replicator(t, nil, append(append(cmd, "--table-filter", attack), conn...)...)
		assertOneLineError(t, r, "is not one SQL expression over the table")
		if got := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_class WHERE relname = 'pwned'"); got[0] != "0" {
			t.Fatalf("%s ran the predicate's stacked statements on the source", cmd[0])
		}
	}
	if slicesContain(pgtest.Databases(t, pair.Target), db) {
		t.Errorf("a refused init created database %s", db)
	}
	// The same through an extension's configuration table (PostGIS's
	// spatial_ref_sys, pg_partman's): its rows are copied with the user's
	// predicate too, so it is checked as any other table's.
	if dir := extensionDir(t); dir != "" {
		control, script := filepath.Join(dir, "replicator_cfgext.control"), filepath.Join(dir, "replicator_cfgext--1.0.sql")
		os.WriteFile(control, []byte("default_version = '1.0'\nrelocatable = true\n"), 0o644)
		os.WriteFile(script, []byte("CREATE TABLE cfg (id int PRIMARY KEY);\nSELECT pg_catalog.pg_extension_config_dump('cfg', '');\n"), 0o644)
		t.Cleanup(func() { os.Remove(control); os.Remove(script) })
		pgtest.Exec(t, pair.Source, db, "CREATE EXTENSION replicator_cfgext; INSERT INTO cfg VALUES (1)")
		cfgAttack := db + ".public.cfg:id<0)) TO STDOUT; COMMIT; CREATE TABLE pwned (x int); COPY (SELECT 1 WHERE (true"
		r := replicator(t, nil, append([]string{"init", "--no-roles", "--skip-validate", "--table-filter", cfgAttack}, conn...)...)
		assertOneLineError(t, r, "is not one SQL expression over the table")
		if got := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_class WHERE relname = 'pwned'"); got[0] != "0" {
			t.Fatal("a predicate on an extension's configuration table ran its stacked statements on the source")
		}
	}
	// A predicate that is one expression still works, with a semicolon in
	// a literal.
	r := replicator(t, nil, append([]string{"init", "--no-roles", "--table-filter", db + ".public.t:id <= 3 OR 'a;b' = 'c'"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM t"); got[0] != "3" {
		t.Errorf("filtered rows: %v", got)
	}
}

// extensionDir is the server's extension directory when this test may write
// to it ("" otherwise).
func extensionDir(t *testing.T) string {
	out, err := exec.Command(filepath.Join(pair.Source.BinDir, "pg_config"), "--sharedir").Output()
	if err != nil {
		return ""
	}
	dir := filepath.Join(strings.TrimSpace(string(out)), "extension")
	probe := filepath.Join(dir, ".replicator-probe")
	if err := os.WriteFile(probe, nil, 0o644); err != nil {
		// CI runs as root, where the directory is always writable: there a
		// failure to write is a broken set-up, never a reason to skip.
		if os.Geteuid() == 0 {
			t.Fatalf("the server's extension directory: %v", err)
		}
		t.Log("the server's extension directory is not writable: part of the test skipped")
		return ""
	}
	os.Remove(probe)
	return dir
}

// Issue 21, 3: kept objects on a table the filters leave out (a view over
// it, a foreign key into it) go with it; validate, and so init before any
// change, names them with the way to keep them.
func TestKeptDependentsAreNamedFirst(t *testing.T) {
	t.Parallel()
	const db = "dependents"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE customer (id int PRIMARY KEY); INSERT INTO customer SELECT generate_series(1, 5);
	  CREATE TABLE orders (id int PRIMARY KEY, customer_id int REFERENCES customer); INSERT INTO orders SELECT g, g FROM generate_series(1, 5) g;
	  CREATE VIEW v_customers AS SELECT id FROM customer`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--exclude-tables", db + ".public.customer"}
	r := replicator(t, nil, append([]string{"validate"}, conn...)...)
	for _, want := range []string{"2 kept object(s) need tables the filters leave out, and are left out with them",
		"dependents: constraint orders_customer_id_fkey on table public.orders", "dependents: view public.v_customers", "--schema-only-tables instead of --exclude-tables"} {
		if r.code != 0 || !strings.Contains(r.stdout, want) {
			t.Errorf("validate (%d) does not say %q:\n%s", r.code, want, r.stdout)
		}
	}
	r = replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "left out with them") {
		t.Fatalf("init (%d) does not warn first:\n%s", r.code, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT (SELECT count(*) FROM pg_class WHERE relname IN ('customer', 'v_customers')) || '/' || (SELECT count(*) FROM pg_constraint WHERE contype = 'f') || '/' || (SELECT count(*) FROM orders)"); got[0] != "0/0/5" {
		t.Errorf("target: tables and views %v", got)
	}
}
