package matrix_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

var (
	bin      string // the replicator binary under test
	stateDir string
)

// TestMain builds the real binary and puts the newest client tools first on
// PATH, for the binary and for the comparisons alike.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replicator-matrix-")
	if err != nil {
		panic(err)
	}
	bin, stateDir = filepath.Join(dir, "replicator"), filepath.Join(dir, "state")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cli/replicator").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	client, err := pgcluster.ClientBinDir()
	if err != nil {
		fmt.Fprintln(os.Stderr, "matrix:", err)
		os.Exit(1)
	}
	os.Setenv("PATH", client+string(os.PathListSeparator)+os.Getenv("PATH"))
	code := m.Run()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

// replicator runs the binary as a user does.
func replicator(t *testing.T, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "REPLICATOR_STATE_DIR="+stateDir, "NO_COLOR=1")
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("replicator %v: %v", args, err)
	}
	return r
}

// start starts a cluster of one major, stopped when the test ends.
func start(t *testing.T, name string, major int, settings map[string]string) *pgcluster.Cluster {
	t.Helper()
	s := map[string]string{}
	for k, v := range pgcluster.TestSettings {
		s[k] = v
	}
	for k, v := range settings {
		s[k] = v
	}
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Name: fmt.Sprintf("%s-%d", name, major), Major: major, Password: fmt.Sprintf("pw-%s-%d", name, major), Settings: s})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	if got := pgtest.Major(t, c); got != major {
		t.Fatalf("started PostgreSQL %d, want %d", got, major)
	}
	return c
}

// fidelitySource starts a source of one major holding the fixture's roles and
// its fidelity database, with everything that major can hold.
func fidelitySource(t *testing.T, major int) *pgcluster.Cluster {
	t.Helper()
	src := start(t, "src", major, pgtest.LogicalSettings)
	pgtest.Exec(t, src, "postgres", fixture.Roles)
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE fidelity OWNER app_owner")
	pgtest.Exec(t, src, "fidelity", fixture.Fidelity(major))
	if major >= 17 {
		// A transaction_timeout shorter than the copy's transactions (the
		// snapshot's, a 22 MB table's): the copy must turn it off for itself.
		// It is copied with the database, so the target's sessions have it too.
		pgtest.Exec(t, src, "postgres", "ALTER DATABASE fidelity SET transaction_timeout = '100ms'")
	}
	return src
}

// limit keeps the matrix to two pairs at a time (four servers): the machine
// has two cores.
var limit = make(chan struct{}, 2)

func parallel(t *testing.T) {
	t.Parallel()
	limit <- struct{}{}
	t.Cleanup(func() { <-limit })
}
