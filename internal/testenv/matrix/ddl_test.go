package matrix_test

import (
	"context"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// Schema change replication on every major from 12 to 18, source and
// target of the same major: first what a plain role on either side could
// try through it (schemaChangeTrust), then every kind of DDL the sync guide
// lists (schemaChangeKinds), each replayed and equal on both sides, or
// reported by status with a fix that works.
func TestSchemaChangesAcrossMajors(t *testing.T) {
	for m := 12; m <= 18; m++ {
		t.Run(fmt.Sprintf("pg%d", m), func(t *testing.T) {
			parallel(t)
			src := start(t, "src", m, pgtest.LogicalSettings)
			dst := start(t, "dst", m, nil)
			// Plain roles on both sides (roles are cluster-wide: not replicated).
			for _, c := range []*pgcluster.Cluster{src, dst} {
				pgtest.Exec(t, c, "postgres", `CREATE ROLE mallory LOGIN PASSWORD 'mallory-pw'; CREATE ROLE alice LOGIN PASSWORD 'alice-pw';
					CREATE ROLE reader LOGIN PASSWORD 'reader-pw'`)
			}
			t.Run("trust", func(t *testing.T) { schemaChangeTrust(t, m, src, dst) })
			t.Run("kinds", func(t *testing.T) { schemaChangeKinds(t, m, src, dst) })
		})
	}
}

// ddlPair is one database replicated between two servers.
type ddlPair struct {
	t        *testing.T
	major    int
	src, dst *pgcluster.Cluster
	db       string
	conn     []string // the CLI's connection flags
}

func newDDLPair(t *testing.T, major int, src, dst *pgcluster.Cluster, db, schema string) *ddlPair {
	t.Helper()
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, src, db, schema)
	p := &ddlPair{t: t, major: major, src: src, dst: dst, db: db,
		conn: []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", db}}
	r := replicator(t, append([]string{"init", "--sync", "--no-roles", "--replicate-ddl"}, p.conn...)...)
	if r.code != 0 {
		t.Fatalf("init --sync --replicate-ddl (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	t.Cleanup(func() {
		replicator(t, append([]string{"sync", "--stop"}, p.conn...)...)
		for _, c := range []*pgcluster.Cluster{src, dst} {
			// DROP DATABASE ... WITH (FORCE) is 13+.
			pgtest.Query(t, c, "postgres", "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1", db)
			pgtest.Exec(t, c, "postgres", "DROP DATABASE IF EXISTS "+db)
		}
	})
	return p
}

// as runs sql (one query string: several statements go in one message, as
// psql -c and migration tools send them) on c as role ("" for the
// superuser).
func (p *ddlPair) as(c *pgcluster.Cluster, role, sql string) error {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	url := c.URL(p.db)
	if role != "" {
		url = c.URLAs(role, role+"-pw", p.db)
	}
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func (p *ddlPair) source(role, sql string) {
	p.t.Helper()
	if err := p.as(p.src, role, sql); err != nil {
		p.t.Fatalf("on the source as %q: %v\n%s", role, err, sql)
	}
}

// catchUp waits until the target has applied everything the source has
// written so far.
func (p *ddlPair) catchUp() {
	p.t.Helper()
	lsn := pgtest.Query(p.t, p.src, "postgres", "SELECT pg_current_wal_insert_lsn()::text")[0]
	deadline := time.Now().Add(time.Minute)
	for {
		rows := pgtest.Query(p.t, p.src, "postgres", "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2",
			lsn, replication.NamesFor(p.db).Slot)
		if len(rows) == 1 && rows[0] == "true" {
			return
		}
		if time.Now().After(deadline) {
			r := replicator(p.t, append([]string{"status"}, p.conn...)...)
			p.t.Fatalf("the target did not catch up with %s:\n%s%s", lsn, r.stdout, r.stderr)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// problems are the queue's rows after id that status would report.
func (p *ddlPair) problems(after string) []string {
	out := pgtest.Query(p.t, p.src, p.db, `SELECT id || ' source: ' || concat_ws(' / ', unreplicated, note) FROM replicator_ddl.queue
		WHERE id > $1::bigint AND (unreplicated IS NOT NULL OR note IS NOT NULL) ORDER BY id`, after)
	return append(out, pgtest.Query(p.t, p.dst, p.db, `SELECT id || ' target: ' || error FROM replicator_ddl.queue
		WHERE id > $1::bigint AND error IS NOT NULL ORDER BY id`, after)...)
}

func (p *ddlPair) lastID() string {
	return pgtest.Query(p.t, p.src, p.db, "SELECT coalesce(max(id), 0)::text FROM replicator_ddl.queue")[0]
}

// sameSchema compares pg_dump --schema-only of both sides.
func (p *ddlPair) sameSchema(what string) {
	p.t.Helper()
	var s, d string
	var wg sync.WaitGroup
	wg.Add(1)
	go func() { defer wg.Done(); d = pgtest.WithoutReplication(pgtest.SchemaDump(p.t, p.dst, p.db)) }()
	s = pgtest.WithoutReplication(pgtest.SchemaDump(p.t, p.src, p.db))
	wg.Wait()
	if s != d {
		p.t.Errorf("%s: the schemas differ:\n%s", what, pgtest.Diff(s, d))
	}
}

func (p *ddlPair) status(args ...string) result {
	return replicator(p.t, append(append([]string{"status"}, args...), p.conn...)...)
}

func (p *ddlPair) superuser(c *pgcluster.Cluster, role string) bool {
	return pgtest.Query(p.t, c, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = $1", role)[0] == "true"
}

// escalate is the body of a function that makes role a superuser when
// whoever runs it is one, and only then: on the source while the
// superuser runs DDL, or on the target inside the apply worker. Planted
// by a plain role, it must never run with those rights through sync.
func escalate(role, ret string) string {
	return fmt.Sprintf(`BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    BEGIN EXECUTE 'ALTER ROLE %s SUPERUSER'; EXCEPTION WHEN OTHERS THEN NULL; END;
  END IF;
  RETURN %s;
END`, role, ret)
}

// schemaChangeTrust: what the capture installs on the source and the apply
// on the target runs in other people's sessions; a plain role must gain
// nothing through it (CVE-2018-1058: a function or operator planted where
// unqualified names resolve).
func schemaChangeTrust(t *testing.T, major int, src, dst *pgcluster.Cluster) {
	p := newDDLPair(t, major, src, dst, "trust", `
		GRANT CREATE ON SCHEMA public TO mallory, alice;
		CREATE TABLE items (id int PRIMARY KEY, val text);
		INSERT INTO items SELECT g, 'v' || g FROM generate_series(1, 20) g;
		CREATE TABLE alice_items (id int PRIMARY KEY, v text);
		ALTER TABLE alice_items OWNER TO alice`)

	// Every session replicator opens resolves names in the catalog only,
	// whatever the connection string asks for.
	ep, err := conninfo.Parse("source", src.URL(p.db)+"&options=-csearch_path%3Dpublic")
	if err != nil {
		t.Fatal(err)
	}
	conn, err := ep.Connect(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	var path string
	if err := conn.QueryRow(context.Background(), "SHOW search_path").Scan(&path); err != nil || path != conninfo.SafeSearchPath {
		t.Errorf("replicator's session has search_path %q (%v), want %q", path, err, conninfo.SafeSearchPath)
	}
	conn.Close(context.Background())

	// The repro, then variants: an operator on text, functions
	// that shadow the built-ins the capture calls, and an implicit cast
	// into a type of mallory's. Each is planted by mallory, then the
	// superuser runs DDL, with the default search_path and with public
	// before pg_catalog.
	plants := map[string]string{
		"operator on (integer, text)": `
			CREATE FUNCTION public.cat_it(a int, b text) RETURNS text LANGUAGE plpgsql AS $$` + escalate("mallory", "a::text OPERATOR(pg_catalog.||) b") + `$$;
			CREATE OPERATOR public.|| (LEFTARG = integer, RIGHTARG = text, FUNCTION = public.cat_it)`,
		"operator on text": `
			CREATE FUNCTION public.cat_tt(a text, b text) RETURNS text LANGUAGE plpgsql AS $$` + escalate("mallory", "a OPERATOR(pg_catalog.||) b") + `$$;
			CREATE OPERATOR public.|| (LEFTARG = text, RIGHTARG = text, FUNCTION = public.cat_tt);
			CREATE FUNCTION public.eq_tt(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$` + escalate("mallory", "a OPERATOR(pg_catalog.=) b") + `$$;
			CREATE OPERATOR public.= (LEFTARG = text, RIGHTARG = text, FUNCTION = public.eq_tt)`,
		"function-name shadows": `
			CREATE FUNCTION public.cardinality(a text[]) RETURNS int LANGUAGE plpgsql AS $$` + escalate("mallory", "pg_catalog.cardinality(a)") + `$$;
			CREATE FUNCTION public.array_length(a text[], d int) RETURNS int LANGUAGE plpgsql AS $$` + escalate("mallory", "pg_catalog.array_length(a, d)") + `$$;
			CREATE FUNCTION public.array_to_string(a text[], s text) RETURNS text LANGUAGE plpgsql AS $$` + escalate("mallory", "pg_catalog.array_to_string(a, s)") + `$$;
			CREATE FUNCTION public.starts_with(a text, b text) RETURNS boolean LANGUAGE plpgsql AS $$` + escalate("mallory", "pg_catalog.starts_with(a, b)") + `$$;
			CREATE FUNCTION public.acc(s text[], v text) RETURNS text[] LANGUAGE plpgsql AS $$` + escalate("mallory", "s OPERATOR(pg_catalog.||) v") + `$$;
			CREATE AGGREGATE public.array_agg(text) (SFUNC = public.acc, STYPE = text[])`,
		"implicit cast": `
			CREATE TYPE public.evil AS (v text);
			CREATE FUNCTION public.evil_of(n name) RETURNS public.evil LANGUAGE plpgsql AS $$` + escalate("mallory", "ROW(n::text)::public.evil") + `$$;
			CREATE CAST (name AS public.evil) WITH FUNCTION public.evil_of(name) AS IMPLICIT;
			CREATE FUNCTION public.evil_like(a public.evil, b text) RETURNS boolean LANGUAGE plpgsql AS $$` + escalate("mallory", "a.v OPERATOR(pg_catalog.~~) b") + `$$;
			CREATE OPERATOR public.~~ (LEFTARG = public.evil, RIGHTARG = text, FUNCTION = public.evil_like);
			CREATE OPERATOR public.!~~ (LEFTARG = public.evil, RIGHTARG = text, FUNCTION = public.evil_like)`,
	}
	i := 0
	for name, plant := range plants {
		p.source("mallory", plant)
		i++
		p.source("", fmt.Sprintf("CREATE INDEX items_val_%d ON items (val)", i))
		p.source("", fmt.Sprintf("SET search_path = public, pg_catalog; ALTER TABLE items ADD COLUMN c%d text; COMMENT ON COLUMN items.c%d IS 'x'; DROP INDEX items_val_%d", i, i, i))
		p.source("", fmt.Sprintf("SET search_path = public, pg_catalog; CREATE TABLE t%d (id int PRIMARY KEY); DROP TABLE t%d", i, i))
		if p.superuser(src, "mallory") {
			t.Fatalf("%s: the capture made mallory a superuser on the source", name)
		}
	}
	p.catchUp()
	if p.superuser(dst, "mallory") {
		t.Fatal("the apply made mallory a superuser on the target")
	}
	if probs := p.problems("0"); len(probs) > 0 {
		t.Errorf("the attacks' DDL did not replicate cleanly: %v", probs)
	}
	p.sameSchema("after the search-path attacks")
	if got := pgtest.Query(t, src, p.db, "SELECT DISTINCT role::text FROM replicator_ddl.queue ORDER BY 1"); !reflect.DeepEqual(got, []string{"mallory", "postgres"}) {
		t.Errorf("authors in the queue: %v (want mallory's and postgres's DDL, each as its own)", got)
	}

	// The queue takes rows from the capture only, and its functions are
	// the sync role's alone.
	for _, try := range []string{
		"INSERT INTO replicator_ddl.queue (role, command_tag, statements, source_key) VALUES ('postgres', 'ALTER ROLE', '{\"ALTER ROLE mallory SUPERUSER\"}', 'forged')",
		"SELECT replicator_ddl.record('public', 'ddl_command_end', 'CREATE TABLE')",
		"SELECT replicator_ddl.publish('public.items'::regclass, true)",
		"UPDATE replicator_ddl.queue SET statements = '{}'",
		"DELETE FROM replicator_ddl.config",
	} {
		for _, role := range []string{"mallory", "alice"} {
			if err := p.as(src, role, try); err == nil || !strings.Contains(err.Error(), "permission denied") {
				t.Errorf("%s on the source: %v (want permission denied)\n%s", role, err, try)
			}
		}
	}
	if err := p.as(dst, "mallory", "SELECT replicator_ddl.run_as('postgres')"); err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Errorf("mallory calling the target's run_as: %v (want permission denied)", err)
	}

	// On a target before 16 the apply worker runs triggers, check
	// constraints and index expressions as the subscription's owner. A
	// plain role's change that would run its own code there is reported,
	// not replayed; from 16 it is replayed and runs as the table's owner.
	p.source("alice", `CREATE FUNCTION alice_trig() RETURNS trigger LANGUAGE plpgsql AS $$`+escalate("alice", "NEW")+`$$;
		CREATE TRIGGER always BEFORE INSERT ON alice_items FOR EACH ROW EXECUTE FUNCTION alice_trig()`)
	before := p.lastID()
	p.source("alice", "ALTER TABLE alice_items ENABLE ALWAYS TRIGGER always")
	p.source("alice", `CREATE FUNCTION alice_ok(int) RETURNS boolean LANGUAGE plpgsql AS $$`+escalate("alice", "true")+`$$`)
	p.source("alice", "ALTER TABLE alice_items ADD CONSTRAINT checked CHECK (alice_ok(id))")
	p.source("alice", "INSERT INTO alice_items VALUES (1, 'a'), (2, 'b')")
	p.catchUp()
	if p.superuser(src, "alice") || p.superuser(dst, "alice") {
		t.Fatalf("alice's trigger or check constraint made her a superuser (source %v, target %v)", p.superuser(src, "alice"), p.superuser(dst, "alice"))
	}
	if got := pgtest.Query(t, dst, p.db, "SELECT count(*) FROM alice_items")[0]; got != "2" {
		t.Errorf("alice's rows on the target: %s, want 2", got)
	}
	r := p.status("--check")
	enabled := pgtest.Query(t, dst, p.db, "SELECT tgenabled::text FROM pg_trigger WHERE tgname = 'always'")[0]
	if major < 16 {
		for _, want := range []string{
			"(ALTER TABLE by alice,", "failed on the target: not replayed: on PostgreSQL before 16",
			"trigger always on public.alice_items calls public.alice_trig()", "statement: ALTER TABLE alice_items ENABLE ALWAYS TRIGGER always",
			"check constraint checked on public.alice_items calls public.alice_ok(integer)", "replicate into PostgreSQL 16 or later",
		} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("status --check on a %d target does not say %q:\n%s", major, want, r.stderr)
			}
		}
		if r.code != 1 || enabled != "O" {
			t.Errorf("on a %d target: status --check exit %d, trigger enabled %q (want 1 and O: not replayed)", major, r.code, enabled)
		}
		if n := len(p.problems(before)); n != 2 {
			t.Errorf("%d problems after alice's changes, want 2 (the trigger and the constraint): %v", n, p.problems(before))
		}
	} else if enabled != "A" || len(p.problems(before)) != 0 {
		t.Errorf("on a %d target the trigger is enabled %q (want A) and problems are %v (want none)", major, enabled, p.problems(before))
	}
}

// A ddlCase is one kind of DDL: the sync guide's table lists each by kind.
type ddlCase struct {
	kind string
	min  int      // the first source major that has it
	as   string   // the role that runs it ("" the superuser)
	sql  []string // query strings, one after another
	// concurrently runs while the last query string runs (a write).
	concurrently string
	// report is what status --check says ("" when the change is replayed
	// and equal on both sides); fixTarget and fixSource are what the user
	// then does, after which both sides are equal again. fixFromStatus
	// runs the fix status printed for the target.
	report               string
	fixTarget, fixSource string
	fixFromStatus        bool
	// ignored: not captured by design; nothing is queued or reported.
	ignored bool
	check   func(p *ddlPair)
}

var ddlCases = []ddlCase{
	{kind: "CREATE TABLE, then its rows", sql: []string{"CREATE TABLE tenants (id bigint PRIMARY KEY, name text NOT NULL)",
		"INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 50) g"}},
	{kind: "ALTER TABLE: ADD, DROP, ALTER TYPE, RENAME COLUMN", sql: []string{
		"ALTER TABLE items ADD COLUMN note text", "UPDATE items SET note = 'added' WHERE id <= 10",
		"ALTER TABLE items ALTER COLUMN note TYPE varchar(40)", "UPDATE items SET note = 'retyped' WHERE id <= 20",
		"ALTER TABLE items RENAME COLUMN note TO remark", "UPDATE items SET remark = 'renamed' WHERE id <= 30",
		"ALTER TABLE items ADD COLUMN gone int", "ALTER TABLE items DROP COLUMN gone"}},
	{kind: "ALTER TABLE ... RENAME TO", sql: []string{"CREATE TABLE old_name (id int PRIMARY KEY)", "ALTER TABLE old_name RENAME TO new_name", "INSERT INTO new_name VALUES (1)"}},
	{kind: "ALTER TABLE ... SET SCHEMA", sql: []string{"CREATE SCHEMA archive", "CREATE TABLE moved (id int PRIMARY KEY)", "ALTER TABLE moved SET SCHEMA archive"}},
	{kind: "DROP TABLE", sql: []string{"CREATE TABLE scratch (id int PRIMARY KEY)", "DROP TABLE scratch"}},
	{kind: "CREATE INDEX, DROP INDEX", sql: []string{"CREATE INDEX items_val ON items (val)", "CREATE UNIQUE INDEX items_val_id ON items (val, id)", "DROP INDEX items_val"}},
	{kind: "CREATE INDEX CONCURRENTLY, DROP INDEX CONCURRENTLY", sql: []string{"CREATE INDEX CONCURRENTLY items_qty ON items (qty)", "DROP INDEX CONCURRENTLY items_qty"}},
	{kind: "CREATE SCHEMA, then a table in it", sql: []string{"CREATE SCHEMA s2", "CREATE TABLE s2.t (id int PRIMARY KEY)", "INSERT INTO s2.t VALUES (1), (2)"}},
	{kind: "DROP SCHEMA ... CASCADE", sql: []string{"CREATE SCHEMA doomed", "CREATE TABLE doomed.t (id int PRIMARY KEY)", "DROP SCHEMA doomed CASCADE"}},
	{kind: "CREATE TYPE, ALTER TYPE ... ADD VALUE", sql: []string{"CREATE TYPE color AS ENUM ('red')", "ALTER TYPE mood ADD VALUE 'ecstatic'",
		"INSERT INTO feelings (m) VALUES ('ecstatic')", "ALTER TYPE color ADD VALUE 'blue' BEFORE 'red'"}},
	{kind: "CREATE DOMAIN, ALTER DOMAIN", sql: []string{"CREATE DOMAIN positive AS int CHECK (VALUE > 0)", "ALTER DOMAIN positive ADD CONSTRAINT small CHECK (VALUE < 1000000)"}},
	{kind: "CREATE SEQUENCE, ALTER SEQUENCE", sql: []string{"CREATE SEQUENCE invoice_no START 1000", "ALTER SEQUENCE invoice_no INCREMENT BY 10"}},
	{kind: "CREATE VIEW, CREATE OR REPLACE VIEW", sql: []string{"CREATE VIEW cheap AS SELECT id, val FROM items WHERE qty < 5",
		"CREATE OR REPLACE VIEW cheap AS SELECT id, val, qty FROM items WHERE qty < 5"}},
	{kind: "CREATE FUNCTION, CREATE PROCEDURE", sql: []string{
		"CREATE FUNCTION bump(n int) RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN n + 1; END; $$",
		"CREATE PROCEDURE touch(i int) LANGUAGE sql AS $body$ UPDATE items SET qty = qty + 1 WHERE id = i; $body$"}},
	{kind: "CREATE FUNCTION ... BEGIN ATOMIC", min: 14, sql: []string{
		"CREATE FUNCTION twice(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN a * 2 ELSE 0 END; END; CREATE TABLE after_atomic (id int PRIMARY KEY)"}},
	{kind: "CREATE TRIGGER", sql: []string{
		"CREATE FUNCTION stamp() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.val := coalesce(NEW.val, 'stamped'); RETURN NEW; END $$",
		"CREATE TRIGGER stamp BEFORE INSERT ON items FOR EACH ROW EXECUTE FUNCTION stamp()", "INSERT INTO items (id, qty) VALUES (1001, 1)"}},
	{kind: "CREATE OR REPLACE TRIGGER", min: 14, sql: []string{"CREATE OR REPLACE TRIGGER stamp BEFORE INSERT OR UPDATE ON items FOR EACH ROW EXECUTE FUNCTION stamp()"}},
	{kind: "CREATE POLICY, ENABLE ROW LEVEL SECURITY", sql: []string{"CREATE POLICY mine ON items USING (qty >= 0)", "ALTER TABLE items ENABLE ROW LEVEL SECURITY"}},
	{kind: "CREATE RULE", sql: []string{"CREATE TABLE audit (id int, what text, PRIMARY KEY (id, what))",
		"CREATE RULE audited AS ON DELETE TO feelings DO ALSO (INSERT INTO audit VALUES (OLD.id, 'deleted'); INSERT INTO audit VALUES (OLD.id, 'twice'))"}},
	{kind: "GRANT ... ON, REVOKE ... ON", sql: []string{"GRANT SELECT, UPDATE ON items TO reader", "REVOKE UPDATE ON items FROM reader"},
		check: func(p *ddlPair) {
			if got := pgtest.Query(p.t, p.dst, p.db, "SELECT has_table_privilege('reader', 'items', 'SELECT')::text || has_table_privilege('reader', 'items', 'UPDATE')::text")[0]; got != "truefalse" {
				p.t.Errorf("reader on the target: SELECT, UPDATE = %s (want true, false)", got)
			}
		}},
	{kind: "ALTER DEFAULT PRIVILEGES", sql: []string{"ALTER DEFAULT PRIVILEGES GRANT SELECT ON TABLES TO reader"}},
	{kind: "COMMENT ON", sql: []string{"COMMENT ON SCHEMA public IS 'the app'", "COMMENT ON TABLE items IS 'what we sell'", "COMMENT ON COLUMN items.qty IS 'in stock'"}},
	{kind: "SELECT ... INTO, CREATE TABLE AS", sql: []string{
		"SELECT id, val INTO items_copy FROM items WHERE id <= 10; ALTER TABLE items_copy ADD PRIMARY KEY (id)",
		"CREATE TABLE top_items AS SELECT id, qty FROM items WHERE qty > 5; ALTER TABLE top_items ADD PRIMARY KEY (id)"}},
	{kind: "A query string with SET search_path", sql: []string{"CREATE SCHEMA app; SET search_path = app; CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b VALUES (1)"},
		check: func(p *ddlPair) {
			if got := pgtest.Query(p.t, p.dst, p.db, "SELECT to_regclass('app.b') IS NOT NULL AND to_regclass('public.b') IS NULL")[0]; got != "true" {
				p.t.Error("table b did not land in schema app on the target")
			}
		}},
	{kind: "A query string mixing DDL and row changes", sql: []string{
		"ALTER TABLE items ADD COLUMN tier int; UPDATE items SET tier = 1; ALTER TABLE items ALTER COLUMN tier SET NOT NULL; INSERT INTO feelings (m) VALUES ('happy')"}},
	{kind: "A query string with BEGIN, ROLLBACK, SAVEPOINT", sql: []string{
		"BEGIN; CREATE TABLE gone (id int PRIMARY KEY); ROLLBACK; BEGIN; SAVEPOINT a; CREATE TABLE gone_too (id int PRIMARY KEY); ROLLBACK TO a; CREATE TABLE kept (id int PRIMARY KEY); COMMIT"},
		check: func(p *ddlPair) {
			if got := pgtest.Query(p.t, p.dst, p.db, "SELECT count(*) FROM pg_tables WHERE tablename IN ('gone', 'gone_too', 'kept')")[0]; got != "1" {
				p.t.Errorf("%s of gone, gone_too, kept on the target (want kept only)", got)
			}
		}},
	{kind: "A partitioned table with a key, created while replicating", sql: []string{
		"CREATE TABLE logs (id bigint, at date, msg text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at)",
		"CREATE TABLE logs_2024 PARTITION OF logs FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
		"INSERT INTO logs SELECT g, '2024-03-01', 'x' FROM generate_series(1, 20) g", "UPDATE logs SET msg = 'y' WHERE id <= 5"}},
	{kind: "A partitioned table without a key, created while replicating", sql: []string{
		"CREATE TABLE metrics (at date, v int) PARTITION BY RANGE (at)",
		"CREATE TABLE metrics_2024 PARTITION OF metrics FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')",
		// The application's writes go on: the partition is not published.
		"INSERT INTO metrics VALUES ('2024-02-02', 1)", "UPDATE metrics SET v = 2", "DELETE FROM metrics WHERE v = 3"},
		report: "public.metrics_2024 has no primary key or replica identity, so it is not published", fixSource: "ALTER TABLE metrics_2024 REPLICA IDENTITY FULL"},
	{kind: "A new table without a key", sql: []string{"CREATE TABLE keyless (a int, b text)", "INSERT INTO keyless VALUES (1, 'x')", "UPDATE keyless SET b = 'y'"},
		report: "public.keyless has no primary key or replica identity", fixSource: "ALTER TABLE keyless ADD PRIMARY KEY (a)"},
	{kind: "ALTER TABLE ... DETACH PARTITION", sql: []string{"ALTER TABLE events DETACH PARTITION events_2024", "INSERT INTO events_2024 VALUES (9001, '2024-05-05', 'after detach')"}},
	{kind: "ALTER TABLE ... DETACH PARTITION CONCURRENTLY", min: 14, sql: []string{"ALTER TABLE events DETACH PARTITION events_2025 CONCURRENTLY",
		"INSERT INTO events_2025 VALUES (9002, '2025-05-05', 'after detach')"}},
	{kind: "ALTER TABLE ... ATTACH PARTITION", sql: []string{"CREATE TABLE events_2026 (id bigint NOT NULL, at date NOT NULL, v text, PRIMARY KEY (id, at))",
		"ALTER TABLE events ATTACH PARTITION events_2026 FOR VALUES FROM ('2026-01-01') TO ('2027-01-01')", "INSERT INTO events VALUES (9003, '2026-02-02', 'attached')"}},
	{kind: "CREATE MATERIALIZED VIEW, REFRESH", sql: []string{"CREATE MATERIALIZED VIEW item_totals AS SELECT count(*) AS n, sum(qty) AS q FROM items",
		"UPDATE items SET qty = qty + 1 WHERE id <= 3", "REFRESH MATERIALIZED VIEW item_totals"}},
	{kind: "REFRESH MATERIALIZED VIEW while the source is written",
		sql: []string{"CREATE OR REPLACE FUNCTION pause() RETURNS int LANGUAGE sql AS 'SELECT 1 FROM pg_sleep(1)'",
			"CREATE MATERIALIZED VIEW slower_totals AS SELECT count(*) AS n, pause() AS p FROM feelings; CREATE UNIQUE INDEX ON slower_totals (n)",
			"REFRESH MATERIALIZED VIEW CONCURRENTLY slower_totals"},
		// Committed while the refresh sleeps, after its snapshot: the target
		// applies it first, then refreshes, and counts one row more.
		concurrently: "INSERT INTO feelings (m) VALUES ('sad')",
		report:       "materialized view public.slower_totals differs from the source's", fixSource: "REFRESH MATERIALIZED VIEW slower_totals"},
	{kind: "ALTER TABLE ... ADD COLUMN with a default evaluated once (now())", sql: []string{"ALTER TABLE items ADD COLUMN added_at timestamptz DEFAULT now()"},
		report: "column added_at of public.items was added with default now(), which gave the existing rows", fixFromStatus: true},
	{kind: "ALTER TABLE ... ADD COLUMN with an identity or a default per row", sql: []string{"ALTER TABLE items ADD COLUMN seq_no int GENERATED BY DEFAULT AS IDENTITY"},
		report: "column seq_no of public.items was added with an identity: each side gave the existing rows values of its own", fixSource: "UPDATE items SET seq_no = seq_no"},
	{kind: "DDL inside a function, procedure or DO block", sql: []string{"DO $$ BEGIN EXECUTE 'ALTER TABLE feelings ADD COLUMN tier int'; END $$"},
		report: "ALTER TABLE ran inside a function, procedure or DO block", fixTarget: "ALTER TABLE feelings ADD COLUMN tier int"},
	{kind: "A statement the target refuses", sql: []string{"CREATE ROLE only_here", "GRANT SELECT ON items TO only_here"},
		report: `failed on the target: role "only_here" does not exist`, fixTarget: "CREATE ROLE only_here; GRANT SELECT ON items TO only_here"},
	{kind: "ALTER TABLE ... DROP CONSTRAINT (a published table's key)", sql: []string{"ALTER TABLE pk_lost DROP CONSTRAINT pk_lost_pkey"},
		report: "public.pk_lost is published but has no primary key or replica identity any more", fixSource: "ALTER TABLE pk_lost ADD PRIMARY KEY (id)"},
	{kind: "ALTER TABLE ... DROP CONSTRAINT (a new table's key)", sql: []string{"CREATE TABLE pk_gone (id int CONSTRAINT pk_gone_pkey PRIMARY KEY)",
		"INSERT INTO pk_gone VALUES (1)", "ALTER TABLE pk_gone DROP CONSTRAINT pk_gone_pkey"},
		report: "public.pk_gone has no primary key or replica identity, so it is not published", fixSource: "ALTER TABLE pk_gone ADD PRIMARY KEY (id)"},
	{kind: "CREATE EXTENSION", sql: []string{"CREATE EXTENSION citext", "CREATE TABLE emails (id int PRIMARY KEY, addr citext)"}},
	{kind: "Cluster-wide objects (roles, databases, tablespaces, GRANT role TO role)", ignored: true, sql: []string{"CREATE ROLE elsewhere", "GRANT reader TO elsewhere"}},
	{kind: "Temporary objects", ignored: true, sql: []string{"CREATE TEMP TABLE tmp (id int); INSERT INTO tmp VALUES (1); DROP TABLE tmp"}},
}

// schemaChangeKinds runs every case while a writer keeps the source busy,
// then checks that every table's rows are equal.
func schemaChangeKinds(t *testing.T, major int, src, dst *pgcluster.Cluster) {
	p := newDDLPair(t, major, src, dst, "kinds", `
		CREATE TABLE items (id int PRIMARY KEY, val text, qty int NOT NULL DEFAULT 0);
		INSERT INTO items SELECT g, 'v' || g, g % 10 FROM generate_series(1, 100) g;
		CREATE TYPE mood AS ENUM ('sad', 'happy');
		CREATE TABLE feelings (id serial PRIMARY KEY, m mood NOT NULL);
		INSERT INTO feelings (m) VALUES ('sad'), ('happy');
		CREATE TABLE events (id bigint, at date NOT NULL, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
		CREATE TABLE events_2024 PARTITION OF events FOR VALUES FROM ('2024-01-01') TO ('2025-01-01');
		CREATE TABLE events_2025 PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2026-01-01');
		INSERT INTO events SELECT g, '2024-01-01'::date + g * 3, 'seed' FROM generate_series(1, 200) g;
		CREATE TABLE pk_lost (id int CONSTRAINT pk_lost_pkey PRIMARY KEY);
		INSERT INTO pk_lost VALUES (1);
		CREATE TABLE bench (id int PRIMARY KEY, n int NOT NULL);
		INSERT INTO bench SELECT g, 0 FROM generate_series(1, 100) g`)
	// The application writes throughout.
	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	wg.Add(1)
	go func() {
		defer wg.Done()
		conn, err := pgx.Connect(ctx, src.URL(p.db))
		if err != nil {
			return
		}
		defer conn.Close(context.Background())
		for i := 0; ctx.Err() == nil; i++ {
			conn.Exec(ctx, "UPDATE bench SET n = n + 1 WHERE id = $1", i%100+1)
			time.Sleep(20 * time.Millisecond)
		}
	}()
	defer func() { stop(); wg.Wait() }()

	for _, c := range ddlCases {
		if major < c.min {
			continue
		}
		t.Run(c.kind, func(t *testing.T) {
			p.t = t
			before := p.lastID()
			for i, sql := range c.sql {
				if i == len(c.sql)-1 && c.concurrently != "" {
					var err error
					done := make(chan struct{})
					go func() { defer close(done); err = p.as(src, c.as, sql) }()
					// Once the statement runs its snapshot is taken (a moment
					// after it shows as active); the statement then pauses 1 s.
					deadline := time.Now().Add(30 * time.Second)
					for pgtest.Query(t, src, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND state = 'active' AND query = $2", p.db, sql)[0] != "1" {
						if time.Now().After(deadline) {
							t.Fatal("the statement did not start")
						}
						time.Sleep(20 * time.Millisecond)
					}
					time.Sleep(300 * time.Millisecond)
					p.source("", c.concurrently)
					<-done
					if err != nil {
						t.Fatalf("%v\n%s", err, sql)
					}
					continue
				}
				p.source(c.as, sql)
			}
			p.catchUp()
			probs := p.problems(before)
			switch {
			case c.ignored:
				if n := pgtest.Query(t, src, p.db, "SELECT count(*) FROM replicator_ddl.queue WHERE id > $1::bigint", before)[0]; n != "0" {
					t.Errorf("%s row(s) queued, want none", n)
				}
			case c.report == "":
				if len(probs) > 0 {
					t.Errorf("not replayed cleanly: %v", probs)
				}
			default:
				r := p.status("--check")
				if r.code != 1 || !strings.Contains(strings.ReplaceAll(r.stderr, "\n", " "), c.report) {
					t.Errorf("status --check (%d) does not say %q:\n%s", r.code, c.report, r.stderr)
				}
				if c.fixFromStatus {
					fix := regexp.MustCompile(`fix: on the target, (UPDATE .*?), then DELETE FROM replicator_ddl\.queue`).FindStringSubmatch(r.stderr)
					if fix == nil {
						t.Fatalf("no fix for the target in:\n%s", r.stderr)
					}
					c.fixTarget = fix[1]
				}
				if c.fixTarget != "" {
					if err := p.as(dst, "", c.fixTarget); err != nil {
						t.Fatalf("the fix on the target: %v\n%s", err, c.fixTarget)
					}
				}
				if c.fixSource != "" {
					p.source("", c.fixSource)
				}
				// Dealt with: cleared on the source (the delete replicates).
				p.source("", "DELETE FROM replicator_ddl.queue WHERE id > "+before)
				p.catchUp()
				deadline := time.Now().Add(30 * time.Second)
				for pgtest.Query(t, dst, p.db, "SELECT count(*) FROM replicator_ddl.queue WHERE id > $1::bigint", before)[0] != "0" {
					if time.Now().After(deadline) {
						t.Fatal("the queue rows cleared on the source stay on the target")
					}
					time.Sleep(50 * time.Millisecond)
				}
				if probs := p.problems(before); len(probs) > 0 {
					t.Errorf("left after the fix: %v", probs)
				}
			}
			p.sameSchema(c.kind)
			if c.check != nil {
				c.check(p)
			}
		})
		p.t = t
	}

	// New tables join, their rows arriving once; then every table's rows,
	// and every materialized view's, are equal.
	if r := replicator(t, append([]string{"sync"}, p.conn...)...); r.code != 0 {
		t.Fatalf("sync (joins the new tables): %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	stop()
	wg.Wait()
	deadline := time.Now().Add(time.Minute)
	for pgtest.Query(t, dst, p.db, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")[0] != "0" {
		if time.Now().After(deadline) {
			t.Fatal("the new tables' copy did not finish")
		}
		time.Sleep(100 * time.Millisecond)
	}
	p.catchUp()
	if s, d := pgtest.TableHashes(t, src, p.db), pgtest.TableHashes(t, dst, p.db); !reflect.DeepEqual(s, d) {
		t.Errorf("rows differ after catch-up:\nsource %v\ntarget %v", s, d)
	}
	mv := "SELECT string_agg(format('%s %s', c.oid::regclass, replicator_ddl.fingerprint(c.oid)), ', ' ORDER BY c.oid::regclass::text) FROM pg_class c WHERE relkind = 'm'"
	if s, d := pgtest.Query(t, src, p.db, mv), pgtest.Query(t, dst, p.db, mv); !reflect.DeepEqual(s, d) {
		t.Errorf("materialized views differ:\nsource %v\ntarget %v", s, d)
	}
	if r := p.status("--check"); r.code != 0 {
		t.Errorf("status --check at the end: %d\n%s", r.code, r.stderr)
	}
}

// The sync guide's table of schema changes lists every kind the cases test,
// with the outcome they test, and nothing else.
func TestSchemaChangeTableMatchesTheTests(t *testing.T) {
	readme, err := os.ReadFile("../../../docs/guides/sync.md")
	if err != nil {
		t.Fatal(err)
	}
	table := regexp.MustCompile(`(?s)<!-- schema-change-kinds -->(.*?)<!-- /schema-change-kinds -->`).FindSubmatch(readme)
	if table == nil {
		t.Fatal("docs/guides/sync.md has no <!-- schema-change-kinds --> table")
	}
	rows := map[string]string{}
	for _, line := range strings.Split(string(table[1]), "\n") {
		cells := strings.Split(line, "|")
		if len(cells) < 4 || strings.HasPrefix(strings.TrimSpace(cells[1]), "---") || strings.TrimSpace(cells[1]) == "Change" {
			continue
		}
		rows[strings.Trim(strings.TrimSpace(cells[1]), "`")] = strings.TrimSpace(cells[2])
	}
	for _, c := range ddlCases {
		want := "replayed"
		if c.report != "" {
			want = "reported"
		} else if c.ignored {
			want = "not captured"
		}
		got, ok := rows[c.kind]
		if !ok {
			t.Errorf("the sync guide's table lacks %q (%s)", c.kind, want)
		} else if !strings.HasPrefix(got, want) {
			t.Errorf("the sync guide says %q is %q; the test checks %q", c.kind, got, want)
		}
		delete(rows, c.kind)
	}
	for kind, outcome := range rows {
		if outcome != "not captured" {
			t.Errorf("the sync guide's table lists %q as %q, which no test case checks", kind, outcome)
		}
	}
}
