package main_test

import (
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// --exclude-indexes and --exclude-extensions (issue 21, 3): what they name
// is not created; what they cannot leave out alone (an index that backs a
// constraint, an extension kept objects use) is refused before any change.
func TestExcludeIndexesAndExtensions(t *testing.T) {
	t.Parallel()
	const db = "exclx"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.DropDatabases(t, pair.Source, db); pgtest.DropDatabases(t, pair.Target, db) })
	pgtest.Exec(t, pair.Source, db, `
CREATE EXTENSION citext;
CREATE EXTENSION pgcrypto;
CREATE TABLE t (id int PRIMARY KEY, email citext, note text);
CREATE INDEX t_note_idx ON t (note);
CREATE INDEX t_note_lower ON t (lower(note));
ALTER TABLE t CLUSTER ON t_note_lower;
INSERT INTO t SELECT g, 'A' || g || '@x', 'n' || g FROM generate_series(1, 200) g;`)
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles"}

	r := replicator(t, nil, append([]string{"init", "--exclude-indexes", db + ".public.t_pkey"}, conn...)...)
	assertOneLineError(t, r, `--exclude-indexes names exclx.public.t_pkey backs constraint "t_pkey" of public.t`)
	r = replicator(t, nil, append([]string{"validate", "--exclude-indexes", db + ".public.t_pkey"}, conn[:len(conn)-1]...)...)
	if r.code == 0 || !strings.Contains(r.stdout, `--exclude-indexes names exclx.public.t_pkey backs constraint "t_pkey" of public.t`) {
		t.Errorf("validate should report the index it cannot leave out: %d\n%s", r.code, r.stdout)
	}
	r = replicator(t, nil, append([]string{"init", "--exclude-extensions", "citext"}, conn...)...)
	assertOneLineError(t, r, "exclx.citext is used by column email of table public.t: install the extension")
	r = replicator(t, nil, append([]string{"validate", "--exclude-extensions", "citext"}, conn[:len(conn)-1]...)...)
	if r.code == 0 || !strings.Contains(r.stdout, "exclx.citext is used by column email of table public.t; fix: install the extension") {
		t.Errorf("validate should report the extension kept objects need: %d\n%s", r.code, r.stdout)
	}
	if slicesContain(pgtest.Databases(t, pair.Target), db) {
		t.Fatalf("a refused run created database %s on the target", db)
	}

	r = replicator(t, nil, append([]string{"init", "--exclude-indexes", "t_note*,nosuch_idx", "--exclude-extensions", db + ".pgcrypto"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout+r.stderr, `--exclude-indexes "nosuch_idx" matches no index`) {
		t.Errorf("an exclude pattern that matches nothing should be said:\n%s\n%s", r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT indexname FROM pg_indexes WHERE tablename = 't' ORDER BY 1"); !reflect.DeepEqual(got, []string{"t_pkey"}) {
		t.Errorf("indexes on the target: %v, want only t_pkey", got)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT extname FROM pg_extension ORDER BY 1"); !reflect.DeepEqual(got, []string{"citext", "plpgsql"}) {
		t.Errorf("extensions on the target: %v, want citext and plpgsql", got)
	}
	if r := replicator(t, nil, append([]string{"verify"}, conn[:len(conn)-1]...)...); r.code != 0 {
		t.Errorf("verify: %d\n%s", r.code, r.stdout)
	}
}

// An extension the source has and the target server cannot create is
// refused before any change, with the fixes (issue 21, 3); leaving it out
// copies the rest. The extension is made for the test: its files are
// removed once the source has it, so no server here can create it again.
func TestTargetWithoutTheExtensionIsRefused(t *testing.T) {
	t.Parallel()
	dir := extensionDir(t)
	if dir == "" {
		t.Skip("the server's extension directory is not writable")
	}
	control, script := filepath.Join(dir, "replicator_gone.control"), filepath.Join(dir, "replicator_gone--1.0.sql")
	if err := os.WriteFile(control, []byte("default_version = '1.0'\nrelocatable = true\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(control)
	if err := os.WriteFile(script, []byte("CREATE FUNCTION replicator_gone() RETURNS int LANGUAGE sql AS 'SELECT 1';\n"), 0o644); err != nil {
		t.Fatal(err)
	}
	defer os.Remove(script)
	const db = "extgone"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.DropDatabases(t, pair.Source, db); pgtest.DropDatabases(t, pair.Target, db) })
	pgtest.Exec(t, pair.Source, db, "CREATE EXTENSION replicator_gone; CREATE TABLE kept (id int PRIMARY KEY); INSERT INTO kept VALUES (1)")
	os.Remove(control)
	os.Remove(script)

	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles"}
	// validate's check (init runs it first), then the copy's own.
	r := replicator(t, nil, append([]string{"init"}, conn...)...)
	assertOneLineError(t, r, "not available on the target: extgone: replicator_gone")
	if !strings.Contains(r.stderr, "--exclude-extensions") {
		t.Errorf("the refusal should give the fixes: %s", r.stderr)
	}
	r = replicator(t, nil, append([]string{"init", "--skip-validate"}, conn...)...)
	assertOneLineError(t, r, "the target server cannot create extension replicator_gone (1.0, in database extgone): nothing was changed")
	if !strings.Contains(r.stderr, "--exclude-extensions") {
		t.Errorf("the refusal should give the fixes: %s", r.stderr)
	}
	if slicesContain(pgtest.Databases(t, pair.Target), db) {
		t.Fatalf("a refused run created database %s on the target", db)
	}
	r = replicator(t, nil, append([]string{"init", "--exclude-extensions", "replicator_gone"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init --exclude-extensions: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM kept"); got[0] != "1" {
		t.Errorf("kept: %v", got)
	}
}

func slicesContain(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
