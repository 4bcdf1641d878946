package peer_test

import (
	"bytes"
	"compress/gzip"
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"slices"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

var (
	pair     *pgtest.Pair
	bin      string
	stateDir string
)

// TestMain builds the real binary and starts a source and a target cluster
// (the source with WAL senders to spare, for the standby test's base backup
// and streaming): the tests run `replicator` as a user does, against real
// servers, and judge the copy by what is on the target afterwards.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replicator-peer-")
	if err != nil {
		panic(err)
	}
	bin, stateDir = filepath.Join(dir, "replicator"), filepath.Join(dir, "state")
	// REPLICATOR_PEER_BIN runs the suite against a binary built elsewhere
	// (a release, or the tree as it was) instead of building this one.
	if prebuilt := os.Getenv("REPLICATOR_PEER_BIN"); prebuilt != "" {
		bin = prebuilt
	} else if out, err := exec.Command("go", "build", "-o", bin, "../../../cli/replicator").CombinedOutput(); err != nil {
		os.Stderr.Write(out)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	p, err := pgtest.StartPair("peer", pgtest.LogicalSettings)
	if err != nil {
		fmt.Fprintf(os.Stderr, "peer: cannot start PostgreSQL clusters: %v\n", err)
		os.RemoveAll(dir)
		os.Exit(1)
	}
	pair = p
	code := m.Run()
	// A standby a failed test could not stop goes too: the run leaves no
	// postgres process behind.
	stopStandbys()
	p.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func (r result) String() string {
	return fmt.Sprintf("exit %d\n--- stdout\n%s\n--- stderr\n%s", r.code, r.stdout, r.stderr)
}

// command is the replicator command line with the state directory of this
// run (init keeps its checkpoints there, not in the user's home).
func command(ctx context.Context, args []string) *exec.Cmd {
	if len(args) > 0 && args[0] == "init" {
		args = append([]string{"init", "--state-dir", stateDir}, args[1:]...)
	}
	cmd := exec.CommandContext(ctx, bin, args...)
	// On timeout, SIGQUIT first: the goroutine dump says where it hung.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(os.Environ(), "REPLICATOR_STATE_DIR="+stateDir)
	cmd.Stdin = nil // no terminal: prompts must not wait
	return cmd
}

// replicator runs the binary and returns what it printed and its exit code.
func replicator(t *testing.T, args ...string) result {
	t.Helper()
	return start(t, args...)()
}

// start runs the binary in the background; wait returns its result.
func start(t *testing.T, args ...string) (wait func() result) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	cmd := command(ctx, args)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	if err := cmd.Start(); err != nil {
		cancel()
		t.Fatal(err)
	}
	return func() result {
		t.Helper()
		defer cancel()
		err := cmd.Wait()
		r := result{stdout: out.String(), stderr: errOut.String()}
		if ee, ok := err.(*exec.ExitError); ok {
			r.code = ee.ExitCode()
		} else if err != nil {
			t.Fatalf("run replicator: %v", err)
		}
		if ctx.Err() != nil {
			t.Fatalf("replicator %v did not finish:\n%s", args, r.stderr)
		}
		for _, secret := range []string{pair.Source.Password, pair.Target.Password, pagilaPassword} {
			if strings.Contains(r.stdout+r.stderr, secret) {
				t.Errorf("the output of replicator %v contains a password", args[0])
			}
		}
		return r
	}
}

// mustSucceed fails the test unless replicator exited 0.
func mustSucceed(t *testing.T, what string, r result) {
	t.Helper()
	if r.code != 0 {
		t.Fatalf("%s failed:\n%s", what, r)
	}
}

// refused checks a refusal: a failure, one error line that says want,
// and (the invariant) that nothing was changed.
func refused(t *testing.T, r result, want ...string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit code 0, want a refusal saying %q:\n%s", want, r)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if !strings.HasPrefix(last, "error: ") {
		t.Errorf("the refusal does not end in one error line:\n%s", r.stderr)
	}
	for _, w := range want {
		if !strings.Contains(last, w) {
			t.Errorf("the refusal does not say %q:\n%s", w, r.stderr)
		}
	}
}

// sql runs SQL on a cluster's database as the superuser.
func sql(t *testing.T, c *pgcluster.Cluster, db, stmt string) {
	t.Helper()
	pgtest.Exec(t, c, db, stmt)
}

// sqlAs runs SQL on a database as another role (pgx, several statements).
func sqlAs(t *testing.T, url, stmt string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, stmt); err != nil {
		t.Fatalf("exec: %v\nSQL: %.300s", err, stmt)
	}
}

// query is pgtest.Query, one string per row ("|" between columns).
func query(t *testing.T, c *pgcluster.Cluster, db, q string, args ...any) []string {
	t.Helper()
	return pgtest.Query(t, c, db, q, args...)
}

// one returns the single value of a one-row, one-column query.
func one(t *testing.T, c *pgcluster.Cluster, db, q string, args ...any) string {
	t.Helper()
	rows := query(t, c, db, q, args...)
	if len(rows) != 1 {
		t.Fatalf("%s: %d rows, want 1: %v", q, len(rows), rows)
	}
	return rows[0]
}

// expect checks that a query returns exactly want on c.
func expect(t *testing.T, c *pgcluster.Cluster, db, q string, want ...string) {
	t.Helper()
	got := query(t, c, db, q)
	if want == nil {
		want = []string{}
	}
	if got == nil {
		got = []string{}
	}
	if !reflect.DeepEqual(got, want) {
		t.Errorf("%s on %s/%s:\n got %q\nwant %q", strings.Join(strings.Fields(q), " "), c.Name, db, got, want)
	}
}

// same checks that a query returns the same rows on the source and the
// target (and at least one row: an empty answer proves nothing).
func same(t *testing.T, db, q string) {
	t.Helper()
	s, d := query(t, pair.Source, db, q), query(t, pair.Target, db, q)
	if len(s) == 0 {
		t.Errorf("%s: no rows on the source", q)
	}
	if !reflect.DeepEqual(s, d) {
		t.Errorf("%s in %s:\nsource %q\ntarget %q", strings.Join(strings.Fields(q), " "), db, s, d)
	}
}

// tables lists a database's tables, partitioned tables and materialized
// views as schema.name, the catalogs left out.
func tables(t *testing.T, c *pgcluster.Cluster, db string) []string {
	t.Helper()
	return query(t, c, db, `SELECT n.nspname || '.' || c.relname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind IN ('r', 'p', 'm') AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema' ORDER BY (n.nspname || '.' || c.relname) COLLATE "C"`)
}

// databaseOnTarget tells whether the target has database db.
func databaseOnTarget(t *testing.T, db string) bool {
	t.Helper()
	return slices.Contains(pgtest.Databases(t, pair.Target), db)
}

// cleanup drops the databases on both sides, then the roles (roles are
// shared by every database of a cluster, and init copies them all).
func cleanup(t *testing.T, dbs []string, roles ...string) {
	t.Helper()
	t.Cleanup(func() {
		for _, c := range []*pgcluster.Cluster{pair.Source, pair.Target} {
			pgtest.DropDatabases(t, c, dbs...)
			for _, r := range roles {
				sql(t, c, "postgres", "DROP ROLE IF EXISTS "+pgx.Identifier{r}.Sanitize())
			}
		}
	})
}

// psql runs a psql script (a file, or a .gz file) on url, in one
// transaction unless the script manages its own, stopping at the first
// error. filter, when given, drops the lines it matches (pgcopydb's tests
// drop "OWNER TO postgres" to load pagila as its own role).
func psql(t *testing.T, url, file string, singleTx bool, filter func(line string) bool) {
	t.Helper()
	data, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	if strings.HasSuffix(file, ".gz") {
		zr, err := gzip.NewReader(bytes.NewReader(data))
		if err != nil {
			t.Fatal(err)
		}
		if data, err = io.ReadAll(zr); err != nil {
			t.Fatal(err)
		}
	}
	if filter != nil {
		var kept []string
		for _, l := range strings.Split(string(data), "\n") {
			if !filter(l) {
				kept = append(kept, l)
			}
		}
		data = []byte(strings.Join(kept, "\n"))
	}
	args := []string{"-X", "-q", "-v", "ON_ERROR_STOP=1", "-d", url, "-f", "-"}
	if singleTx {
		args = append(args, "--single-transaction")
	}
	cmd := exec.Command(filepath.Join(pair.Source.BinDir, "psql"), args...)
	// \ir includes are relative to the script's directory.
	cmd.Dir = filepath.Dir(file)
	cmd.Stdin = bytes.NewReader(data)
	cmd.Env = append(os.Environ(), "PGOPTIONS=-c client_min_messages=warning")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("psql -f %s: %v\n%s", file, err, out)
	}
}

// testdata is the absolute path of a file under testdata/.
func testdata(t *testing.T, name string) string {
	t.Helper()
	p, err := filepath.Abs(filepath.Join("testdata", name))
	if err != nil {
		t.Fatal(err)
	}
	return p
}

// verify runs `replicator verify` with args and expects exit 0 with no
// table reported different.
func verify(t *testing.T, args ...string) result {
	t.Helper()
	r := replicator(t, append([]string{"verify"}, args...)...)
	if r.code != 0 || strings.Contains(r.stdout, "DIFFERENT") {
		t.Errorf("replicator verify:\n%s", r)
	}
	return r
}

// conn is the --source/--target pair as the superuser.
func conn() []string {
	return []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres")}
}

// compare checks that db on the target holds what it holds on the source,
// as fixture.Compare does (rows of every table, sequences, large objects,
// materialized views, the object inventory, the schema dump), but for the
// views of extensions, which show each server's own state
// (pg_stat_statements).
func compare(t *testing.T, db string) {
	t.Helper()
	src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db)
	if len(src) == 0 {
		t.Fatalf("no table in source %s", db)
	}
	if !reflect.DeepEqual(src, dst) {
		for table, h := range src {
			if dst[table] != h {
				t.Errorf("%s.%s: source %s, target %s", db, table, h, dst[table])
			}
		}
		for table := range dst {
			if _, ok := src[table]; !ok {
				t.Errorf("%s.%s is only on the target", db, table)
			}
		}
	}
	for _, q := range []string{
		`SELECT c.oid::regclass::text, s.last_value FROM pg_class c, pg_sequence_last_value(c.oid) s(last_value) WHERE c.relkind = 'S' ORDER BY 1`,
		`SELECT m.oid, m.lomowner::regrole, m.lomacl, md5(lo_get(m.oid)) FROM pg_largeobject_metadata m ORDER BY 1`,
		`SELECT oid::regclass::text, relispopulated FROM pg_class WHERE relkind = 'm' ORDER BY 1`,
		`SELECT pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, array(SELECT unnest(datacl)::text ORDER BY 1)::text, datconnlimit
		   FROM pg_database WHERE datname = current_database()`,
		`SELECT s::text FROM pg_db_role_setting r, unnest(r.setconfig) s WHERE r.setdatabase = (SELECT oid FROM pg_database WHERE datname = current_database()) ORDER BY 1`,
	} {
		if s, d := query(t, pair.Source, db, q), query(t, pair.Target, db, q); !reflect.DeepEqual(s, d) {
			t.Errorf("%s differs in %s:\nsource %q\ntarget %q", strings.Join(strings.Fields(q), " "), db, s, d)
		}
	}
	if s, d := fixture.Inventory(t, pair.Source, db, true), fixture.Inventory(t, pair.Target, db, true); !reflect.DeepEqual(s, d) {
		t.Errorf("objects of %s differ (- source only, + target only):\n%s", db, fixture.LineDiff(strings.Join(s, "\n"), strings.Join(d, "\n")))
	}
	views := query(t, pair.Source, db, `SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE (c.relkind = 'v' OR c.relkind = 'm' AND c.relispopulated) AND n.nspname !~ '^pg_' AND n.nspname <> 'information_schema'
		  AND NOT EXISTS (SELECT 1 FROM pg_depend d WHERE d.classid = 'pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e') ORDER BY 1`)
	// Views answer from the tables (compared row for row above) with the
	// same definitions (the schema dump, below): their row counts are
	// compared, not their text, which an order-dependent aggregate
	// (pagila's group_concat) makes differ between two servers under load.
	for _, v := range views {
		same(t, db, "SELECT count(*) FROM "+v)
	}
	if s, d := pgtest.SchemaDump(t, pair.Source, db), pgtest.SchemaDump(t, pair.Target, db); s != d {
		t.Errorf("schema dump of %s differs:\n%s", db, fixture.LineDiff(s, d))
	}
}
