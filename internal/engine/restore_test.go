package engine

import (
	"reflect"
	"testing"
)

func TestParseRestoreErrors(t *testing.T) {
	stderr := `pg_restore: error: could not execute query: ERROR:  must be member of role "app_owner"
Command was: ALTER TABLE public.t OWNER TO app_owner;
pg_restore: error: could not execute query: ERROR:  permission denied for language internal
Command was: CREATE FUNCTION app.f(integer) RETURNS integer
    LANGUAGE internal IMMUTABLE STRICT
    AS $$int4abs$$;


pg_restore: error: could not execute query: ERROR:  role "ghost" does not exist
Command was: GRANT SELECT ON TABLE public.t TO ghost;
pg_restore: warning: errors ignored on restore: 3
`
	issues, other := parseRestoreErrors(stderr)
	want := []restoreIssue{
		{`must be member of role "app_owner"`, "ALTER TABLE public.t OWNER TO app_owner;"},
		{"permission denied for language internal", "CREATE FUNCTION app.f(integer) RETURNS integer\n    LANGUAGE internal IMMUTABLE STRICT\n    AS $$int4abs$$;"},
		{`role "ghost" does not exist`, "GRANT SELECT ON TABLE public.t TO ghost;"},
	}
	if !reflect.DeepEqual(issues, want) || len(other) != 0 {
		t.Fatalf("got %q %q", issues, other)
	}
	cats := []string{refusal(issues[0], false), refusal(issues[1], false), refusal(issues[2], true), refusal(issues[0], true)}
	if cats[0] == "" || cats[1] == "" || cats[2] == "" || cats[3] != "" {
		t.Errorf("refusals %q: a superuser target refuses nothing but missing roles", cats)
	}
	_, other = parseRestoreErrors("pg_restore: error: connection to server at \"h\" failed: FATAL:  too many connections\n")
	if len(other) != 1 {
		t.Errorf("other errors %q", other)
	}
}

// Parallel pg_restore workers share stderr: their messages can interleave
// mid-line (as in this CI output), which no parser reads. Such a run is
// restored again with one job, as a resumed step.
func TestGarbledParallelErrorsAreRestoredAgainAlone(t *testing.T) {
	garbledText := `pg_restore: error: could not execute query: ERROR:  must be member of role "postgres"
Command was: ALTER STATISTICS app.ks_stats OWNER TO postgres;

pg_restore: error: pg_restore:could not execute query: ERROR:  must be member of role "postgres"
Command was: ALTER PUBLICATION fidelity_pub15 OWNER TO postgres;

 error: could not execute query: ERROR:  must be member of role "postgres"
Command was: ALTER PUBLICATION fidelity_pub OWNER TO postgres;
`
	_, other := parseRestoreErrors(garbledText)
	if len(other) == 0 {
		t.Fatal("garbled output parsed cleanly: the test no longer shows the problem")
	}
	if !garbled(other) {
		t.Errorf("not taken for garbled: %q", other)
	}
	// A connection lost mid-restore is not garbling: the step's retries take it.
	_, other = parseRestoreErrors("pg_restore: error: could not execute query: server closed the connection unexpectedly\n\tThis probably means the server terminated abnormally\nCommand was: CREATE INDEX i ON t (a);\n")
	if len(other) == 0 || garbled(other) {
		t.Errorf("a lost connection taken for garbled output: %q", other)
	}
	args := []string{"--section=post-data", "--jobs=4", "--dbname=x", "a.dump"}
	if got, ok := withOneJob(args); !ok || !reflect.DeepEqual(got, []string{"--section=post-data", "--jobs=1", "--dbname=x", "a.dump"}) || args[1] != "--jobs=4" {
		t.Errorf("withOneJob: %v %v (args %v)", got, ok, args)
	}
	if _, ok := withOneJob([]string{"--jobs=1"}); ok {
		t.Error("a serial restore restored again")
	}
	for _, msg := range []string{`relation "t" already exists`, `relation "public.t" is already member of publication "p"`} {
		if !alreadyDone(msg) {
			t.Errorf("%q is not taken for done", msg)
		}
	}
}

func TestDatabaseSettingStatements(t *testing.T) {
	for stmt, want := range map[string]bool{
		`ALTER DATABASE d1 CONNECTION LIMIT = 1;`:                   true,
		`ALTER DATABASE "my ""db""" SET work_mem TO '8MB';`:         true,
		`ALTER DATABASE d1 RESET ALL;`:                              true,
		`ALTER DATABASE d1 IS_TEMPLATE = true;`:                     true,
		`ALTER ROLE r1 IN DATABASE d1 SET work_mem TO '9MB';`:       true,
		`ALTER DATABASE d1 OWNER TO postgres;`:                      false,
		`ALTER DATABASE "SET x" OWNER TO postgres;`:                 false,
		`CREATE DATABASE d1 WITH TEMPLATE = template0;`:             false,
		`COMMENT ON DATABASE d1 IS 'ALTER DATABASE d1 SET x TO 1';`: false,
	} {
		if got := databaseSetting.MatchString(stmt); got != want {
			t.Errorf("%s: setting %v, want %v", stmt, got, want)
		}
	}
}
