package main_test

import (
	"reflect"
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
