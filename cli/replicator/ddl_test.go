package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// Schema changes made on the source while it replicates, under pgbench's
// writes, each followed by writes that use it, reach the target in order:
// after catch-up every table's rows and the whole schema are equal. The
// kinds: ADD, ALTER TYPE, RENAME and DROP COLUMN; CREATE INDEX
// (CONCURRENTLY) and DROP INDEX; CREATE TABLE then rows (joined with
// replicator sync, its rows arriving once); RENAME TABLE; DROP TABLE; a new
// enum value; a new sequence; a string of several statements mixing DDL
// and an INSERT (the INSERT must not run twice).
func TestSchemaChangesReplicate(t *testing.T) {
	t.Parallel()
	const db = "ddldb"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgbenchInit(t, db, "1")
	pgtest.Exec(t, pair.Source, db, `CREATE TYPE mood AS ENUM ('sad', 'happy');
CREATE TABLE feelings (id serial PRIMARY KEY, m mood NOT NULL);
INSERT INTO feelings (m) VALUES ('sad'), ('happy');
CREATE TABLE scratch (id int PRIMARY KEY); INSERT INTO scratch VALUES (1)`)
	conn := syncedDB(t, db)
	r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles", "--replica-identity-full"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init --sync: %s", r.stderr)
	}
	if strings.Contains(r.stderr, "schema changes on the source are not replicated") {
		t.Fatalf("a superuser source did not replicate schema changes:\n%s", r.stderr)
	}
	stopBench := pgbenchOn(t, db, "-c", "2", "-T", "25")
	src := func(sql string) { t.Helper(); pgtest.Exec(t, pair.Source, db, sql) }

	src("ALTER TABLE pgbench_accounts ADD COLUMN note text")
	src("UPDATE pgbench_accounts SET note = 'added' WHERE aid <= 10")
	src("ALTER TABLE pgbench_accounts ALTER COLUMN note TYPE varchar(40)")
	src("UPDATE pgbench_accounts SET note = 'retyped' WHERE aid BETWEEN 5 AND 15")
	src("ALTER TABLE pgbench_accounts RENAME COLUMN note TO remark")
	src("UPDATE pgbench_accounts SET remark = 'renamed' WHERE aid BETWEEN 10 AND 20")
	src("ALTER TABLE pgbench_tellers ADD COLUMN gone int DEFAULT 7")
	src("UPDATE pgbench_tellers SET gone = 8 WHERE tid = 1")
	src("ALTER TABLE pgbench_tellers DROP COLUMN gone")
	src("UPDATE pgbench_tellers SET filler = 'after drop' WHERE tid = 2")
	src("CREATE INDEX CONCURRENTLY accounts_remark ON pgbench_accounts (remark)")
	src("CREATE INDEX branches_filler ON pgbench_branches (filler)")
	src("DROP INDEX branches_filler")
	src("CREATE TABLE tenants (id bigint PRIMARY KEY, name text NOT NULL)")
	src("INSERT INTO tenants SELECT g, 'tenant ' || g FROM generate_series(1, 100) g")
	src("ALTER TYPE mood ADD VALUE 'ecstatic'")
	src("INSERT INTO feelings (m) VALUES ('ecstatic')")
	src("CREATE SEQUENCE invoice_no START 1000")
	// Several statements in one string: the DDL is replayed, the INSERT
	// reaches the target once, as a row change.
	src("ALTER TABLE feelings ADD COLUMN invoice bigint; INSERT INTO feelings (m, invoice) VALUES ('happy', nextval('invoice_no')); ALTER TABLE feelings ALTER COLUMN invoice SET DEFAULT nextval('invoice_no')")
	src("INSERT INTO feelings (m) VALUES ('sad')")
	src("DROP TABLE scratch")

	// The new table: created on the target by the queue, then joined.
	waitFor(t, "tenants on the target", time.Minute, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT to_regclass('public.tenants') IS NOT NULL")[0] == "true"
	})
	r = replicator(t, nil, append([]string{"status", "--check"}, conn...)...)
	if r.code != 1 || !strings.Contains(r.stderr, `public.tenants wait to join the subscription; fix: run replicator sync again`) {
		t.Errorf("status --check before the new table joined: %d\n%s", r.code, r.stderr)
	}
	r = replicator(t, nil, append([]string{"sync"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, `new table(s) public.tenants joined the subscription`) {
		t.Fatalf("sync to join the new table: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	src("INSERT INTO tenants VALUES (101, 'after the join')")
	src("ALTER TABLE tenants RENAME TO customers")
	src("INSERT INTO customers VALUES (102, 'after the rename')")
	src("UPDATE customers SET name = 'renamed' WHERE id = 1")

	stopBench()
	catchUp(t, db)
	waitFor(t, "the new table's copy", time.Minute, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_subscription_rel WHERE srsubstate <> 'r'")[0] == "0"
	})
	catchUp(t, db)
	s, d := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db)
	if !reflect.DeepEqual(s, d) {
		t.Errorf("rows differ after catch-up:\nsource %v\ntarget %v", s, d)
	}
	if _, ok := d["customers"]; !ok || !strings.HasPrefix(d["customers"], "102:") {
		t.Errorf("customers on the target: %q (want 102 rows, each once)", d["customers"])
	}
	if ss, ds := pgtest.WithoutReplication(pgtest.SchemaDump(t, pair.Source, db)), pgtest.WithoutReplication(pgtest.SchemaDump(t, pair.Target, db)); ss != ds {
		t.Errorf("schemas differ after catch-up:\n%s", pgtest.Diff(ss, ds))
	}
	if r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...); r.code != 0 {
		t.Errorf("status --check after catch-up: %d\n%s", r.code, r.stderr)
	}
	// The table the subscription copied is analyzed by the next sync (the
	// copied ones by init); analyze_count leaves autovacuum's out.
	analyzed := "SELECT relname || '=' || analyze_count FROM pg_stat_user_tables WHERE relname IN ('customers', 'feelings') ORDER BY 1"
	if got := pgtest.Query(t, pair.Target, db, analyzed); !reflect.DeepEqual(got, []string{"customers=0", "feelings=1"}) {
		t.Errorf("before sync: %v", got)
	}
	r = replicator(t, nil, append([]string{"sync"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "analyzed public.customers: the subscription copied their rows since they joined") {
		t.Errorf("sync after the new table's copy: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	waitFor(t, "the statistics' counters", 10*time.Second, func() bool {
		return reflect.DeepEqual(pgtest.Query(t, pair.Target, db, analyzed), []string{"customers=1", "feelings=1"})
	})
	if r := replicator(t, nil, append([]string{"sync"}, conn...)...); r.code != 0 || strings.Contains(r.stdout, "analyzed") {
		t.Errorf("a second sync analyzed again: %d\n%s", r.code, r.stdout)
	}

	// A change made inside a DO block is not replayed (it could hold row
	// changes too): status names it, with the fix.
	src("DO $$ BEGIN EXECUTE 'ALTER TABLE customers ADD COLUMN tier int'; END $$")
	r = replicator(t, nil, append([]string{"status", "--check"}, conn...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "ALTER TABLE ran inside a function, procedure or DO block") ||
		!strings.Contains(r.stderr, "fix: make the same change on the target, then DELETE FROM replicator_ddl.queue WHERE id = ") {
		t.Errorf("status --check after a DO block: %d\n%s", r.code, r.stderr)
	}
	r = replicator(t, nil, append([]string{"status", "--json"}, conn...)...)
	var st struct {
		Databases []struct {
			ReplicateDDL  bool                       `json:"replicate_ddl"`
			SchemaChanges []replication.SchemaChange `json:"schema_changes"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Databases) != 1 || !st.Databases[0].ReplicateDDL ||
		len(st.Databases[0].SchemaChanges) != 1 || st.Databases[0].SchemaChanges[0].Side != "source" {
		t.Errorf("status --json: %v %s", err, r.stdout)
	}

	// sync --stop removes the capture from the source and the queue from
	// both sides.
	if r := replicator(t, nil, append([]string{"sync", "--stop"}, conn...)...); r.code != 0 || !strings.Contains(r.stdout, "schema change capture") {
		t.Fatalf("sync --stop: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, side := range []*pgcluster.Cluster{pair.Source, pair.Target} {
		if n := pgtest.Query(t, side, db, "SELECT (SELECT count(*) FROM pg_event_trigger) + (SELECT count(*) FROM pg_namespace WHERE nspname = 'replicator_ddl')"); n[0] != "0" {
			t.Errorf("sync --stop left %s capture object(s) on %s", n[0], side.Name)
		}
	}
}

// The queue on the source takes rows from the capture only: a plain role
// may not write it. Rows that still arrive on the target (here written by
// the sync role itself, as a compromised source could) run as the role they
// name and no more: inside a SECURITY DEFINER function of that role, where
// PostgreSQL refuses SET ROLE (the apply worker's session user is a
// superuser, so a plain SET ROLE to the author could be undone by the next
// statement). The forged statements fail on the target, and status names
// each by id, author and statement.
func TestForgedSchemaChangeRunsAsItsAuthor(t *testing.T) {
	t.Parallel()
	const db = "ddlforged"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE items (id int PRIMARY KEY)")
	for _, c := range []*pgcluster.Cluster{pair.Source, pair.Target} {
		pgtest.Exec(t, c, "postgres", "DO $$ BEGIN CREATE ROLE forger LOGIN PASSWORD 'forger-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
	}
	conn := syncedDB(t, db)
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles", "--replicate-ddl"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync --replicate-ddl: %s", r.stderr)
	}
	ctx := context.Background()
	forger, err := pgx.Connect(ctx, pair.Source.URLAs("forger", "forger-pw", db))
	if err != nil {
		t.Fatal(err)
	}
	_, err = forger.Exec(ctx, "INSERT INTO replicator_ddl.queue (role, command_tag, statements, source_key) VALUES ('postgres', 'ALTER ROLE', '{\"ALTER ROLE forger SUPERUSER\"}', 'forged')")
	forger.Close(ctx)
	if err == nil || !strings.Contains(err.Error(), "permission denied") {
		t.Fatalf("a plain role wrote into the queue: %v", err)
	}
	pgtest.Exec(t, pair.Source, db, `
INSERT INTO replicator_ddl.queue (role, command_tag, statements, source_key) VALUES ('forger', 'ALTER ROLE', '{"ALTER ROLE forger SUPERUSER"}', 'forged');
INSERT INTO replicator_ddl.queue (role, command_tag, statements, source_key) VALUES ('forger', 'ALTER ROLE', '{"SET ROLE postgres","ALTER ROLE forger SUPERUSER"}', 'forged-role');
INSERT INTO replicator_ddl.queue (role, command_tag, statements, source_key) VALUES ('forger', 'ALTER ROLE', '{"SET SESSION AUTHORIZATION postgres","ALTER ROLE forger SUPERUSER"}', 'forged-session')`)
	waitFor(t, "the forged rows on the target", time.Minute, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM replicator_ddl.queue WHERE source_key LIKE 'forged%'")[0] == "3"
	})
	for key, want := range map[string]string{"forged-role": `cannot set parameter "role" within security-definer function`,
		"forged-session": `cannot set parameter "session_authorization" within security-definer function`} {
		row := pgtest.Query(t, pair.Target, db, "SELECT role || ' | ' || coalesce(error, '') FROM replicator_ddl.queue WHERE source_key = $1", key)[0]
		if !strings.HasPrefix(row, "forger | ") || !strings.Contains(row, want) {
			t.Errorf("%s on the target: %q, want it refused with %q", key, row, want)
		}
	}
	row := pgtest.Query(t, pair.Target, db, "SELECT role || ' | ' || coalesce(error, '') FROM replicator_ddl.queue WHERE source_key = 'forged'")[0]
	if !strings.HasPrefix(row, "forger | ") || !strings.Contains(row, "(SQLSTATE 42501)") {
		t.Errorf("the forged row on the target: %q (want it run as forger and refused)", row)
	}
	if super := pgtest.Query(t, pair.Target, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'forger'")[0]; super != "false" {
		t.Fatal("a forged queue row made forger a superuser on the target")
	}
	r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...)
	if r.code != 1 || strings.Count(r.stderr, "(ALTER ROLE by forger,") != 3 || !strings.Contains(r.stderr, "failed on the target: must be superuser") ||
		!strings.Contains(r.stderr, "statement: SET ROLE postgres; ALTER ROLE forger SUPERUSER; fix:") || strings.Contains(r.stderr, "was not replicated") {
		t.Errorf("status --check after a refused change: %d\n%s", r.code, r.stderr)
	}
	// A role that is not the sync role's reads what it can, and is told why
	// not the queue (it printed a raw "permission denied for schema").
	r = replicator(t, nil, "status", "--source", pair.Source.URLAs("forger", "forger-pw", "postgres"), "--target", pair.Target.URLAs("forger", "forger-pw", "postgres"),
		"--include-databases", db)
	if !strings.Contains(r.stdout+r.stderr, "role forger may not read the schema change queue on the source (it belongs to postgres, the role that set up sync)") ||
		strings.Contains(r.stdout+r.stderr, "SQLSTATE") {
		t.Errorf("status as a plain role: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
}

// The statement splitter the capture uses keeps quoted text, dollar
// quotes, comments, parenthesised rule actions and BEGIN ATOMIC bodies
// whole, starts each statement at its first word, says which may fire an
// event trigger, and marks what a ROLLBACK in the string undoes.
func TestCaptureSplitsStatements(t *testing.T) {
	t.Parallel()
	const db = "ddlsplit"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.DropDatabases(t, pair.Source, db) })
	pgtest.Exec(t, pair.Source, db, replication.CaptureSQL())
	q := `-- lead
CREATE TABLE "a;b" (v text DEFAULT 'x;''y'); /* c; /* nested; */ */ INSERT INTO t VALUES (E'\';', $$;$$, $f$ $$; $f$);
ALTER TABLE t ADD c int ;;  GRANT SELECT ON t TO PUBLIC; GRANT r TO s; CREATE TEMP TABLE tt (); DROP ROLE x; COMMENT ON TABLE t IS ';';
CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT 3; END;
CREATE RULE r AS ON UPDATE TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2));
SELECT 1 AS x INTO newtab FROM t; WITH q AS (INSERT INTO z VALUES (1) RETURNING 1) SELECT * FROM q;
COMMENT ON DATABASE d IS 'x'; GRANT CONNECT ON DATABASE d TO u; CREATE USER MAPPING FOR u SERVER s; ALTER SYSTEM SET work_mem = '1MB';
BEGIN; CREATE TABLE rb (); ROLLBACK; SAVEPOINT s1; CREATE TABLE sp (); ROLLBACK TO s1; CREATE UNIQUE INDEX CONCURRENTLY i ON t (c); SELECT $1, a$b; tail 'unterminated`
	got := pgtest.Query(t, pair.Source, db, `SELECT fires::text || ' ' || words || ' => ' || stmt FROM replicator_ddl.split($1) ORDER BY n`, q)
	want := []string{
		`n create table " v text default => CREATE TABLE "a;b" (v text DEFAULT 'x;''y')`,
		`n insert into t values e => INSERT INTO t VALUES (E'\';', $$;$$, $f$ $$; $f$)`,
		`n alter table t add c int => ALTER TABLE t ADD c int`,
		`n grant select on t to public => GRANT SELECT ON t TO PUBLIC`,
		`n grant r to s => GRANT r TO s`,
		`n create table tt => CREATE TEMP TABLE tt ()`,
		`n drop role x => DROP ROLE x`,
		`n comment on table t is => COMMENT ON TABLE t IS ';'`,
		`n create function f a int returns int language sql begin atomic select case when a then else end select end => CREATE OR REPLACE FUNCTION f(a int) RETURNS int LANGUAGE sql BEGIN ATOMIC SELECT CASE WHEN a > 0 THEN 1 ELSE 2 END; SELECT 3; END`,
		`n create rule r as on update to t do also insert into a values insert into b values => CREATE RULE r AS ON UPDATE TO t DO ALSO (INSERT INTO a VALUES (1); INSERT INTO b VALUES (2))`,
		`n select as x into newtab from t => SELECT 1 AS x INTO newtab FROM t`,
		`n with q as insert into z values returning select from q => WITH q AS (INSERT INTO z VALUES (1) RETURNING 1) SELECT * FROM q`,
		`n comment on database d is => COMMENT ON DATABASE d IS 'x'`,
		`n grant connect on database d to u => GRANT CONNECT ON DATABASE d TO u`,
		`n create user mapping for u server s => CREATE USER MAPPING FOR u SERVER s`,
		`n alter system set work_mem => ALTER SYSTEM SET work_mem = '1MB'`,
		`n begin => BEGIN`,
		`n create table rb => CREATE TABLE rb ()`,
		`n rollback => ROLLBACK`,
		`n savepoint s1 => SAVEPOINT s1`,
		`n create table sp => CREATE TABLE sp ()`,
		`n rollback to s1 => ROLLBACK TO s1`,
		`y create index concurrently i on t c => CREATE UNIQUE INDEX CONCURRENTLY i ON t (c)`,
		`n select a$b => SELECT $1, a$b`,
		`n tail => tail 'unterminated`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("split:\n%s\nwant:\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
	// Without the ROLLBACK, what may fire an event trigger says so.
	got = pgtest.Query(t, pair.Source, db, `SELECT string_agg(fires::text, '' ORDER BY n) FROM replicator_ddl.split($1)`,
		strings.SplitN(q, "BEGIN; CREATE TABLE rb", 2)[0])
	if want := []string{"ynyynynyyymnnnyn"}; !reflect.DeepEqual(got, want) {
		t.Errorf("fires: %v, want %v", got, want)
	}
}

// A source where replicator 0.5.0 installed the schema change capture is
// open to the search-path attack until the capture is replaced: status says
// so, and sync upgrades it in place (the queue and replication go on),
// after which the same attack gains nothing and DDL still replicates.
func TestOldCaptureIsUpgraded(t *testing.T) {
	t.Parallel()
	const db = "ddlupgrade"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE items (id int PRIMARY KEY, val text); INSERT INTO items VALUES (1, 'a')")
	for _, c := range []*pgcluster.Cluster{pair.Source, pair.Target} {
		pgtest.Exec(t, c, "postgres", "DO $$ BEGIN CREATE ROLE upgrader LOGIN PASSWORD 'upgrader-pw'; EXCEPTION WHEN duplicate_object THEN NULL; END $$")
	}
	pgtest.Exec(t, pair.Source, db, "GRANT CREATE ON SCHEMA public TO upgrader")
	conn := syncedDB(t, db)
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles", "--replicate-ddl"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync: %s", r.stderr)
	}
	// Put 0.5.0's capture in place of this one's, on both sides.
	read := func(name string) string {
		b, err := os.ReadFile(filepath.Join("testdata", "capture-0.5.0", name))
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	pgtest.Exec(t, pair.Target, db, "DROP FUNCTION replicator_ddl.run_as(name); "+read("target.sql"))
	pgtest.Exec(t, pair.Source, db, `BEGIN;
DROP EVENT TRIGGER replicator_ddl_end; DROP EVENT TRIGGER replicator_ddl_drop;
DROP FUNCTION replicator_ddl.record(text, text, text); DROP FUNCTION replicator_ddl.split(text, boolean);
ALTER TABLE replicator_ddl.config ADD COLUMN leaves boolean NOT NULL DEFAULT false;
`+read("source.sql")+`;
CREATE EVENT TRIGGER replicator_ddl_end ON ddl_command_end EXECUTE FUNCTION replicator_ddl.capture();
CREATE EVENT TRIGGER replicator_ddl_drop ON sql_drop EXECUTE FUNCTION replicator_ddl.capture();
COMMIT`)
	r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "installed by an older replicator") || !strings.Contains(r.stderr, "fix: run replicator sync, which upgrades it in place") {
		t.Fatalf("status --check with 0.5.0's capture: %d\n%s", r.code, r.stderr)
	}
	plant := func(suffix string) {
		t.Helper()
		ctx := context.Background()
		c, err := pgx.Connect(ctx, pair.Source.URLAs("upgrader", "upgrader-pw", db))
		if err != nil {
			t.Fatal(err)
		}
		defer c.Close(ctx)
		if _, err := c.Exec(ctx, `CREATE FUNCTION public.cat_`+suffix+`(a int, b text) RETURNS text LANGUAGE plpgsql AS $$
BEGIN
  IF (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user) THEN
    EXECUTE 'ALTER ROLE upgrader SUPERUSER';
  END IF;
  RETURN a::text OPERATOR(pg_catalog.||) b;
END $$;
CREATE OPERATOR public.|| (LEFTARG = integer, RIGHTARG = text, FUNCTION = public.cat_`+suffix+`)`); err != nil {
			t.Fatal(err)
		}
	}
	superuser := func(c *pgcluster.Cluster) bool {
		return pgtest.Query(t, c, "postgres", "SELECT rolsuper FROM pg_roles WHERE rolname = 'upgrader'")[0] == "true"
	}
	// What 0.5.0's capture let through (the test is only as good as this).
	plant("old")
	pgtest.Exec(t, pair.Source, db, "CREATE INDEX items_before ON items (val)")
	if !superuser(pair.Source) {
		t.Fatal("0.5.0's capture did not give the planted operator a superuser's rights: this test proves nothing")
	}
	pgtest.Exec(t, pair.Source, "postgres", "ALTER ROLE upgrader NOSUPERUSER")
	pgtest.Exec(t, pair.Source, db, "DROP OPERATOR public.|| (integer, text)")

	r = replicator(t, nil, append([]string{"sync"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "upgraded the schema change capture an older replicator installed") {
		t.Fatalf("sync over 0.5.0's capture: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	plant("new")
	pgtest.Exec(t, pair.Source, db, "CREATE INDEX items_after ON items (val)")
	pgtest.Exec(t, pair.Source, db, "INSERT INTO items VALUES (2, 'b')")
	catchUp(t, db)
	if superuser(pair.Source) || superuser(pair.Target) {
		t.Fatal("after the upgrade, the planted operator still ran with a superuser's rights")
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_indexes WHERE indexname = 'items_after'")[0]; got != "1" {
		t.Errorf("DDL after the upgrade did not replicate")
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM items")[0]; got != "2" {
		t.Errorf("rows after the upgrade: %s, want 2", got)
	}
	if r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...); r.code != 0 {
		t.Errorf("status --check after the upgrade: %d\n%s", r.code, r.stderr)
	}
}
