package main_test

import (
	"reflect"
	"regexp"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// A database's settings and connection limit are the source's once the copy
// is done, and only then: the limit (1, below the copy's jobs) would refuse
// the copy's own connections of a role without SUPERUSER, which a managed
// target's is. A database that already existed on the target gets them too.
func TestDatabaseSettingsAndLimitAfterTheCopy(t *testing.T) {
	t.Parallel()
	const db, there = "limited", "limited_there"
	for _, d := range []string{db, there} {
		pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+d+" CONNECTION LIMIT 1")
		pgtest.Exec(t, pair.Source, "postgres", "ALTER DATABASE "+d+" SET work_mem = '7MB'")
		pgtest.Exec(t, pair.Source, d, `CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 1000);
		  CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 1000);
		  CREATE TABLE c (id int PRIMARY KEY); INSERT INTO c SELECT generate_series(1, 1000)`)
	}
	pgtest.Exec(t, pair.Target, "postgres", "CREATE ROLE limited_owner LOGIN CREATEDB PASSWORD 'limited-pw'")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+there+" OWNER limited_owner")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db, there)
		pgtest.DropDatabases(t, pair.Target, db, there)
		pgtest.Exec(t, pair.Target, "postgres", "DROP ROLE limited_owner")
	})
	r := replicator(t, nil, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URLAs("limited_owner", "limited-pw", "postgres"),
		"--include-databases", db+","+there, "--no-roles", "--jobs", "4")
	if r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	for _, d := range []string{db, there} {
		want := []string{"1 {work_mem=7MB}"}
		got := pgtest.Query(t, pair.Target, "postgres", `SELECT d.datconnlimit::text || ' ' || s.setconfig::text
			FROM pg_database d JOIN pg_db_role_setting s ON s.setdatabase = d.oid AND s.setrole = 0 WHERE d.datname = '`+d+`'`)
		if !reflect.DeepEqual(got, want) {
			t.Errorf("%s: limit and settings %v, want %v", d, got, want)
		}
		if s, dd := pgtest.Query(t, pair.Source, d, "SELECT count(*) FROM c"), pgtest.Query(t, pair.Target, d, "SELECT count(*) FROM c"); !reflect.DeepEqual(s, dd) {
			t.Errorf("%s: rows %v, want %v", d, dd, s)
		}
	}
}

// A source database's CONNECTION LIMIT binds a role without SUPERUSER: the
// copy fits its jobs into it (it retried "too many connections" for
// minutes), and refuses, before any change, a limit too small for one job.
// validate says the same.
func TestConnectionLimitsSizeTheCopy(t *testing.T) {
	t.Parallel()
	const db = "lim_src"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE ROLE lim_reader LOGIN PASSWORD 'lim-pw'")
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db+" OWNER lim_reader CONNECTION LIMIT 6")
	pgtest.Exec(t, pair.Source, db, `SET ROLE lim_reader;
	  CREATE TABLE a (id int PRIMARY KEY); INSERT INTO a SELECT generate_series(1, 1000);
	  CREATE TABLE b (id int PRIMARY KEY); INSERT INTO b SELECT generate_series(1, 1000);
	  CREATE TABLE c (id int PRIMARY KEY); INSERT INTO c SELECT generate_series(1, 1000);
	  CREATE TABLE d (id int PRIMARY KEY); INSERT INTO d SELECT generate_series(1, 1000)`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Source, "postgres", "DROP ROLE lim_reader")
	})
	conn := []string{"--source", pair.Source.URLAs("lim_reader", "lim-pw", "postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--jobs", "8"}
	r := replicator(t, nil, append([]string{"validate"}, conn...)...)
	if !strings.Contains(r.stdout, "role lim_reader may open") || !strings.Contains(r.stdout, "database lim_src's CONNECTION LIMIT 6") {
		t.Errorf("validate does not see the limit:\n%s", r.stdout)
	}
	// The sessions init opens with --jobs 8: 8 copy jobs and 3 more on the
	// source (validate counted 10); 8, 8 index jobs and 2 more on the target.
	if !strings.Contains(r.stdout, "the copy opens up to 11") || !regexp.MustCompile(`18 needed|opens up to 18`).MatchString(r.stdout) {
		t.Errorf("validate does not count init's sessions:\n%s", r.stdout)
	}
	r = replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "database lim_src's CONNECTION LIMIT 6") || !strings.Contains(r.stderr, "instead of 8") {
		t.Fatalf("init under a connection limit (%d):\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "too many connections") {
		t.Errorf("the copy ran into the limit:\n%s", r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM d"); !reflect.DeepEqual(got, []string{"1000"}) {
		t.Errorf("rows of d: %v", got)
	}
	pgtest.Exec(t, pair.Source, "postgres", "ALTER DATABASE "+db+" CONNECTION LIMIT 2")
	pgtest.WaitIdle(t, pair.Source, db)
	r = replicator(t, nil, append([]string{"init", "--no-roles", "--drop-existing", "--yes"}, conn...)...)
	assertOneLineError(t, r, "lim_reader may open 2 more session(s) in database lim_src (database lim_src's CONNECTION LIMIT 2 (0 in use)), and the copy needs at least 4")
	// Without validate's checks, the copy's own says the same.
	pgtest.WaitIdle(t, pair.Source, db)
	r = replicator(t, nil, append([]string{"init", "--no-roles", "--drop-existing", "--yes", "--skip-validate"}, conn...)...)
	assertOneLineError(t, r, "the source allows role lim_reader 2 more session(s) in database lim_src (database lim_src's CONNECTION LIMIT 2 (0 in use)), and the copy needs at least 4: nothing was changed")
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM d"); !reflect.DeepEqual(got, []string{"1000"}) {
		t.Errorf("the refused run changed the target: %v", got)
	}
}

// The postgres database is on every target already: its settings
// (ALTER DATABASE postgres SET, ALTER ROLE ... IN DATABASE postgres SET) are
// copied all the same, as every copied database's are (they were lost unless
// a rerun created it). A pair of its own: the copy takes postgres with the rest.
func TestPostgresDatabaseSettingsAreCopied(t *testing.T) {
	t.Parallel()
	p, err := pgtest.StartPair("pgsettings")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Stop)
	pgtest.Exec(t, p.Source, "postgres", `ALTER DATABASE postgres SET statement_timeout = '11min';
	  CREATE ROLE app_reader LOGIN; ALTER ROLE app_reader IN DATABASE postgres SET work_mem = '9MB';
	  CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept SELECT generate_series(1, 100)`)
	pgtest.Exec(t, p.Source, "postgres", "CREATE DATABASE other")
	pgtest.Exec(t, p.Source, "other", "ALTER DATABASE other SET search_path = app, public")
	r := replicator(t, nil, "init", "--source", p.Source.URL("postgres"), "--target", p.Target.URL("postgres"), "--include-databases", "postgres,other")
	if r.code != 0 {
		t.Fatalf("init: %d\n%s", r.code, r.stderr)
	}
	settings := `SELECT coalesce(r.rolname, '-') || ' ' || s.setconfig::text FROM pg_db_role_setting s
	  JOIN pg_database d ON d.oid = s.setdatabase LEFT JOIN pg_roles r ON r.oid = s.setrole
	  WHERE d.datname = 'postgres' ORDER BY 1`
	want := []string{"- {statement_timeout=11min}", "app_reader {work_mem=9MB}"}
	if got := pgtest.Query(t, p.Target, "postgres", settings); !reflect.DeepEqual(got, want) {
		t.Errorf("postgres's settings on the target: %v, want %v", got, want)
	}
	want = []string{`- {"search_path=app, public"}`}
	if got := pgtest.Query(t, p.Target, "postgres", strings.ReplaceAll(settings, "'postgres'", "'other'")); !reflect.DeepEqual(got, want) {
		t.Errorf("other's settings on the target: %v, want %v", got, want)
	}
	if got := pgtest.Query(t, p.Target, "postgres", "SELECT count(*) FROM kept"); !reflect.DeepEqual(got, []string{"100"}) {
		t.Errorf("postgres's table: %v", got)
	}
}
