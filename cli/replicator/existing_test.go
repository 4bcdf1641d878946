package main_test

import (
	"context"
	"encoding/json"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// Issue 21's repro: the target already has the database, holding a schema the
// source lacks (a function and an enum in it) and pgcopydb pagila's
// pre-created empty schemas. The first run fails in pre-data (the target role
// may not create in schema bar); the fixed rerun resumes into the database.
// Neither run drops it: it was there before, so only --drop-existing may.
func TestRerunNeverDropsADatabaseItDidNotCreate(t *testing.T) {
	t.Parallel()
	const db = "prepared"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE SCHEMA bar; CREATE SCHEMA "With a space";
	  CREATE TABLE bar.t (id int PRIMARY KEY, v text); INSERT INTO bar.t SELECT g, 'v' || g FROM generate_series(1, 500) g;
	  CREATE TABLE "With a space"."a table" (id int PRIMARY KEY); INSERT INTO "With a space"."a table" SELECT generate_series(1, 10);
	  CREATE TABLE items (id int PRIMARY KEY); INSERT INTO items SELECT generate_series(1, 100)`)
	pgtest.Exec(t, pair.Target, "postgres", "CREATE ROLE prep_owner LOGIN CREATEDB PASSWORD 'prep-pw'")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+db+" OWNER prep_owner")
	pgtest.Exec(t, pair.Target, db, `CREATE SCHEMA mine; CREATE FUNCTION mine.important() RETURNS int LANGUAGE sql AS 'SELECT 42';
	  CREATE TYPE mine.mood AS ENUM ('ok', 'sad');
	  CREATE SCHEMA bar; CREATE SCHEMA "With a space"; GRANT USAGE, CREATE ON SCHEMA "With a space" TO prep_owner`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Target, "postgres", "DROP ROLE prep_owner")
	})
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URLAs("prep_owner", "prep-pw", "postgres"),
		"--include-databases", db, "--no-roles"}
	env := []string{"REPLICATOR_STATE_DIR=" + t.TempDir()}

	r := replicator(t, env, args...)
	if r.code == 0 || !strings.Contains(r.stderr, "permission denied for schema bar") {
		t.Fatalf("the first run should fail in pre-data: %d\n%s", r.code, r.stderr)
	}
	assertKept := func(when string) {
		t.Helper()
		if got := pgtest.Query(t, pair.Target, db, "SELECT mine.important()::text || ' ' || 'sad'::mine.mood::text"); !reflect.DeepEqual(got, []string{"42 sad"}) {
			t.Fatalf("%s: the target's own objects are gone: %v", when, got)
		}
	}
	assertKept("after the failed run")

	pgtest.Exec(t, pair.Target, db, "GRANT USAGE, CREATE ON SCHEMA bar TO prep_owner")
	r = replicator(t, env, args...)
	if r.code != 0 {
		t.Fatalf("rerun: %d\n%s", r.code, r.stderr)
	}
	assertKept("after the rerun")
	// Every statement the target refused (a role without SUPERUSER) is in a
	// script named by the summary, not just the first three.
	m := regexp.MustCompile(`The target refused (\d+) statement\(s\): every one is in (\S+), a psql script`).FindStringSubmatch(r.stdout)
	if m == nil {
		t.Fatalf("the summary does not name the refused statements' file:\n%s", r.stdout)
	}
	script, err := os.ReadFile(m[2])
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(script), "\\connect \"prepared\"\n") || !strings.Contains(string(script), "ALTER TABLE public.items OWNER TO postgres;") ||
		strings.Count(string(script), ";\n") != mustAtoi(t, m[1]) {
		t.Errorf("refused statements script (%s of them):\n%s", m[1], script)
	}
	if strings.Contains(r.stderr, "dropped the existing target database") {
		t.Errorf("the rerun dropped the database:\n%s", r.stderr)
	}
	for _, q := range []string{"SELECT count(*) FROM bar.t", `SELECT count(*) FROM "With a space"."a table"`, "SELECT count(*) FROM items"} {
		if s, d := pgtest.Query(t, pair.Source, db, q), pgtest.Query(t, pair.Target, db, q); !reflect.DeepEqual(s, d) {
			t.Errorf("%s: source %v, target %v", q, s, d)
		}
	}
}

// A first run into a prepared database lists what it kept and left alone, in
// the summary and in --json.
func TestPreparedDatabaseIsKept(t *testing.T) {
	t.Parallel()
	const db = "supalike"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE SCHEMA extensions; CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
	  CREATE SCHEMA bar;
	  CREATE TABLE accounts (id int PRIMARY KEY, secret bytea DEFAULT extensions.gen_random_bytes(8));
	  INSERT INTO accounts (id) SELECT generate_series(1, 50);
	  CREATE TABLE bar.t (id int PRIMARY KEY)`)
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+db)
	// What Supabase's template gives: extensions in their own schema (one the
	// source lacks), and schemas of the provider's with data in them.
	pgtest.Exec(t, pair.Target, db, `CREATE SCHEMA extensions; CREATE EXTENSION pgcrypto WITH SCHEMA extensions;
	  CREATE EXTENSION citext WITH SCHEMA extensions;
	  CREATE SCHEMA auth; CREATE TABLE auth.users (id int PRIMARY KEY, email text); INSERT INTO auth.users VALUES (1, 'a@example.com');
	  CREATE FUNCTION auth.uid() RETURNS int LANGUAGE sql AS 'SELECT 1';
	  CREATE SCHEMA bar`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	r := replicator(t, nil, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles")
	if r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	for _, want := range []string{
		"kept extension pgcrypto, already on the target at version", "kept schema bar, already on the target",
		"kept schema extensions, already on the target", "left untouched extension citext (not on the source)",
		"left untouched schema auth (not on the source)"} {
		if !strings.Contains(r.stdout, db+": "+want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT email FROM auth.users"); !reflect.DeepEqual(got, []string{"a@example.com"}) {
		t.Errorf("auth.users: %v", got)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM accounts WHERE length(secret) = 8"); !reflect.DeepEqual(got, []string{"50"}) {
		t.Errorf("accounts: %v", got)
	}
}

// An object that conflicts with the source refuses the run before any change,
// named with its kind; up to 10 are named, then a count.
func TestConflictingDatabaseIsRefused(t *testing.T) {
	t.Parallel()
	const db = "clash"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE t (id int PRIMARY KEY); CREATE EXTENSION citext")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Target, db, `CREATE SCHEMA ext; CREATE EXTENSION citext WITH SCHEMA ext; CREATE FUNCTION public.f() RETURNS int LANGUAGE sql AS 'SELECT 1';
	  SELECT lo_from_bytea(0, 'blob'); DO $$BEGIN FOR i IN 1..8 LOOP EXECUTE format('CREATE TABLE public.x%s ()', i); END LOOP; END$$`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	before := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_class")
	// validate says the same, as a failed check with the fixes.
	r := replicator(t, nil, "validate", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db)
	if r.code == 0 || !strings.Contains(r.stdout, "database clash already holds extension citext") || !strings.Contains(r.stdout, "pass --drop-existing") {
		t.Errorf("validate should fail on the conflicts (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = replicator(t, nil, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles")
	assertOneLineError(t, r, "database clash already holds extension citext (in schema ext here, public on the source), function public.f() (the source has one of this schema), large object ")
	for _, want := range []string{"table public.x7 (the source has one of this schema), and 1 more", "nothing was changed", "--drop-existing", "--exclude-databases"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("refusal lacks %q: %s", want, r.stderr)
		}
	}
	if after := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_class"); !reflect.DeepEqual(before, after) {
		t.Errorf("the target changed: %v relations before, %v after", before, after)
	}
}

func mustAtoi(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}

// A rerun drops only the database the interrupted run created, proven by the
// OID recorded when it created it. Killed after creating it, a run's rerun
// refuses (and changes nothing) when the record cannot prove it: the
// creation was interrupted before its OID was recorded (that instant is
// written into the state file by hand), or the database was replaced since.
// --drop-existing still replaces it, as it would any database.
func TestRerunRefusesADatabaseItCannotProveItsOwn(t *testing.T) {
	t.Parallel()
	const db = "rerun_proof"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL);
	  INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 1000000) g`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	dir := t.TempDir()
	env := []string{"REPLICATOR_STATE_DIR=" + dir}
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"),
		"--include-databases", db, "--no-roles", "--json", "-j", "2"}
	cmd, _, _ := startReplicator(t, env, args...)
	key := "db/" + db + "/created"
	waitFor(t, "the database created and recorded", 2*time.Minute, func() bool {
		return checkpoints(t, dir)[key].Status == checkpoint.Done
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	created := checkpoints(t, dir)[key]
	put := func(rec checkpoint.Record) {
		t.Helper()
		files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
		if len(files) != 1 {
			t.Fatalf("state files: %v", files)
		}
		s, err := checkpoint.NewFileStore(dir, strings.TrimSuffix(filepath.Base(files[0]), ".jsonl"))
		if err != nil {
			t.Fatal(err)
		}
		defer s.Close()
		if err := s.Put(context.Background(), rec, true); err != nil {
			t.Fatal(err)
		}
	}
	oid := func() []string {
		return pgtest.Query(t, pair.Target, "postgres", "SELECT oid FROM pg_database WHERE datname = '"+db+"'")
	}

	// Killed between "creating" and "created as OID n".
	put(checkpoint.Record{Key: key, Status: checkpoint.Running})
	before := oid()
	r := replicator(t, env, args...)
	assertOneLineError(t, r, "the interrupted run stopped while creating database "+db+", before it could record it as its own")
	if after := oid(); !reflect.DeepEqual(before, after) {
		t.Fatalf("the database was replaced: OID %v, then %v", before, after)
	}

	// Replaced since by someone else, holding their own table.
	put(created)
	pgtest.Exec(t, pair.Target, "postgres", "DROP DATABASE "+db+" WITH (FORCE)")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Target, db, "CREATE TABLE theirs (v text); INSERT INTO theirs VALUES ('keep me')")
	r = replicator(t, env, args...)
	assertOneLineError(t, r, "database "+db+" is not the one the interrupted run created (it was replaced since; OID ")
	assertOneLineError(t, r, "pass --drop-existing to replace the database")
	if got := pgtest.Query(t, pair.Target, db, "SELECT v FROM theirs"); !reflect.DeepEqual(got, []string{"keep me"}) {
		t.Fatalf("their table: %v", got)
	}

	// The fix the refusal gives.
	r = replicator(t, env, append(args, "--drop-existing", "--yes")...)
	if r.code != 0 {
		t.Fatalf("init --drop-existing: %d\n%s", r.code, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_class WHERE relname = 'theirs'"); !reflect.DeepEqual(got, []string{"0"}) {
		t.Errorf("--drop-existing kept the replaced database's table")
	}
	assertSame(t, db)
}

// A managed target's role refuses many statements (here every ownership
// change of 40 tables): --json carries each one, whole, and the file the
// summary names holds them all as a script, not the first three.
func TestJSONListsEveryRefusedStatement(t *testing.T) {
	t.Parallel()
	const db = "refused_all"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `DO $$BEGIN FOR i IN 1..40 LOOP
	  EXECUTE format('CREATE TABLE public.t%s (id int PRIMARY KEY); INSERT INTO public.t%s VALUES (1)', i, i); END LOOP; END$$`)
	pgtest.Exec(t, pair.Target, "postgres", "CREATE ROLE refused_admin LOGIN CREATEDB PASSWORD 'refused-pw'")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Target, "postgres", "DROP ROLE refused_admin")
	})
	r := replicator(t, nil, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URLAs("refused_admin", "refused-pw", "postgres"),
		"--include-databases", db, "--no-roles", "--json")
	if r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
	var summary struct {
		Event   string
		Refused []struct{ Database, Kind, Statement, Message string }
		File    string `json:"refused_file"`
	}
	if err := json.Unmarshal([]byte(lines[len(lines)-1]), &summary); err != nil || summary.Event != "summary" {
		t.Fatalf("last line is not the summary (%v): %s", err, lines[len(lines)-1])
	}
	listed := map[string]bool{}
	for _, x := range summary.Refused {
		if x.Database != db || x.Kind == "" || x.Message == "" {
			t.Errorf("refused statement without its database, kind or reason: %+v", x)
		}
		listed[x.Statement] = true
	}
	for i := 1; i <= 40; i++ {
		if stmt := "ALTER TABLE public.t" + strconv.Itoa(i) + " OWNER TO postgres;"; !listed[stmt] {
			t.Errorf("--json does not list %q (of %d listed)", stmt, len(summary.Refused))
		}
	}
	script, err := os.ReadFile(summary.File)
	if err != nil {
		t.Fatalf("refused_file: %v", err)
	}
	for stmt := range listed {
		if !strings.Contains(string(script), strings.TrimRight(stmt, ";")+";\n") {
			t.Errorf("%s lacks %q", summary.File, stmt)
		}
	}
}
