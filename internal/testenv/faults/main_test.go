package faults_test

import (
	"context"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/faultproxy"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

var (
	pair     *pgtest.Pair
	bin      string
	stateDir string
)

// template is the database every test copies (its own copy of it): pgbench
// at scale 10 with foreign keys (1 million accounts, about 150 MB with
// indexes), and history rows, which have no key, so that a row copied twice
// shows in the hashes.
const template = "bench_template"

func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replicator-faults-")
	if err != nil {
		panic(err)
	}
	bin, stateDir = filepath.Join(dir, "replicator"), filepath.Join(dir, "state")
	if out, err := exec.Command("go", "build", "-o", bin, "../../../cli/replicator").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.Exit(1)
	}
	p, err := pgtest.StartPair("faults")
	if err != nil {
		fmt.Fprintln(os.Stderr, "faults:", err)
		os.Exit(1)
	}
	pair = p
	code := 1
	if err := load(); err != nil {
		fmt.Fprintln(os.Stderr, "faults: load the data set:", err)
	} else {
		code = m.Run()
	}
	p.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

func load() error {
	ctx := context.Background()
	if err := pair.Source.Exec(ctx, "postgres", "CREATE DATABASE "+template); err != nil {
		return err
	}
	pgbench := filepath.Join(pair.Source.BinDir, "pgbench")
	for _, args := range [][]string{{"-i", "-q", "-s", "10", "--foreign-keys"}, {"-n", "-t", "300", "-c", "2"}} {
		if out, err := exec.Command(pgbench, append(args, pair.Source.URL(template))...).CombinedOutput(); err != nil {
			return fmt.Errorf("pgbench %v: %v: %s", args, err, out)
		}
	}
	return pair.Source.Exec(ctx, template, "ANALYZE")
}

// database gives a test its own source database, a copy of the template,
// dropped from both sides at the end.
func database(t *testing.T, name string) string {
	t.Helper()
	pgtest.Exec(t, pair.Source, "postgres", fmt.Sprintf("CREATE DATABASE %s TEMPLATE %s", name, template))
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, name)
		pgtest.DropDatabases(t, pair.Target, name)
	})
	return name
}

// proxy puts a fault proxy in front of a cluster, closed at the end.
func proxy(t *testing.T, c *pgcluster.Cluster) *faultproxy.Proxy {
	t.Helper()
	p, err := faultproxy.Start("127.0.0.1:" + strconv.Itoa(c.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	return p
}

// via is c's URL for db with the port of proxy p.
func via(c *pgcluster.Cluster, p *faultproxy.Proxy, db string) string {
	u, _ := url.Parse(c.URL(db))
	u.Host = "127.0.0.1:" + strconv.Itoa(p.Port())
	return u.String()
}

type result struct {
	stdout, stderr string
	code           int
}

// start runs the binary in the background; wait returns its result.
func start(t *testing.T, args ...string) (wait func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Minute)
	cmd := exec.CommandContext(ctx, bin, args...)
	cmd.Env = append(os.Environ(), "REPLICATOR_STATE_DIR="+stateDir)
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() result {
		defer cancel()
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: errOut.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		}
		if ctx.Err() != nil {
			t.Fatalf("replicator %v did not finish:\n%s", args, r.stderr)
		}
		for _, pw := range []string{pair.Source.Password, pair.Target.Password} {
			if strings.Contains(r.stdout+r.stderr, pw) {
				t.Errorf("a password in the output")
			}
		}
		return r
	}
}

// waitActivity waits until a session of c runs a statement matching like
// (ILIKE), as the server sees it (not through a proxy).
func waitActivity(t *testing.T, c *pgcluster.Cluster, like string, timeout time.Duration) {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		var n int
		if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE state = 'active' AND query ILIKE $1 AND pid <> pg_backend_pid()`, like).Scan(&n); err != nil {
			t.Fatal(err)
		}
		if n > 0 {
			return
		}
		time.Sleep(2 * time.Millisecond)
	}
	t.Fatalf("no session ran %q within %s", like, timeout)
}

// same checks the target's copy of db against the source: every table's
// rows (count and hash) and the schema.
func same(t *testing.T, src, dst *pgcluster.Cluster, db string) {
	t.Helper()
	s, d := pgtest.TableHashes(t, src, db), pgtest.TableHashes(t, dst, db)
	if len(s) != 4 || !reflect.DeepEqual(s, d) {
		t.Errorf("rows differ:\nsource %v\ntarget %v", s, d)
	}
	if s, d := pgtest.SchemaDump(t, src, db), pgtest.SchemaDump(t, dst, db); s != d {
		t.Errorf("schemas differ")
	}
}
