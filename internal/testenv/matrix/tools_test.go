package matrix_test

import (
	"context"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// pg_dump must be at least the source's major: with only older client tools,
// validate says so with the fix, and init refuses before changing anything.
func TestClientToolsOlderThanSource(t *testing.T) {
	parallel(t)
	src := start(t, "src", 17, nil)
	dst := start(t, "dst", 17, nil)
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE shop")
	pgtest.Exec(t, src, "shop", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	old := pgcluster.SystemBinDir(t) // PostgreSQL 15's, from the system's packages
	conn := []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--pg-bin", old}
	r := replicator(t, append([]string{"validate"}, conn...)...)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, "is older than the source server 17") ||
		!strings.Contains(r.stdout+r.stderr, "install the PostgreSQL 17 client tools or pass --pg-bin") {
		t.Errorf("validate (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = replicator(t, append([]string{"init"}, conn...)...)
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || len(lines) != 1 || !strings.Contains(r.stderr, "is older than the source server 17: install the PostgreSQL 17 client tools") {
		t.Errorf("init (%d): want one error line naming the fix:\n%s", r.code, r.stderr)
	}
	if got := pgtest.Databases(t, dst); strings.Contains(strings.Join(got, ","), "shop") {
		t.Errorf("the target changed: %v", got)
	}
}

// A target older than 13 has no DROP DATABASE ... WITH (FORCE): --drop-existing
// ends the sessions in the database first, as dropdb users do by hand.
func TestDropExistingOn12(t *testing.T) {
	parallel(t)
	src := fidelitySource(t, 12)
	dst := start(t, "dst", 12, nil)
	conn := []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", "fidelity"}
	if r := replicator(t, append([]string{"init"}, conn...)...); r.code != 0 {
		t.Fatalf("init (%d): %s", r.code, r.stderr)
	}
	// An application still connected to the old copy.
	ctx := context.Background()
	app, err := dst.Connect(ctx, "fidelity")
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	pgtest.Exec(t, src, "fidelity", "INSERT INTO app.nopk VALUES (42, 'after the first copy')")
	if r := replicator(t, append([]string{"init", "--drop-existing", "--yes", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init --drop-existing (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	fixture.Compare(t, src, dst, "fidelity")
	if err := app.Ping(ctx); err == nil {
		t.Errorf("the session in the dropped database is still open")
	}
}
