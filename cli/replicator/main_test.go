package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

var (
	pair      *pgtest.Pair
	bin       string
	workerBin string
	stateDir  string // checkpoints of the runs, kept out of the user's home
)

// TestMain builds the real binary and starts a source and a target cluster: these
// tests run `replicator` exactly as a user does, exit codes included.
func TestMain(m *testing.M) {
	dir, err := os.MkdirTemp("", "replicator-bin-")
	if err != nil {
		panic(err)
	}
	bin = filepath.Join(dir, "replicator")
	stateDir = filepath.Join(dir, "state")
	workerBin = filepath.Join(dir, "worker")
	// The binary under test is built without the platform artifacts, whatever
	// a local `go tool task build` left in platform/artifacts (setup_test.go
	// builds one with them).
	overlay, err := artifactsOverlay(dir, "", "")
	if err != nil {
		panic(err)
	}
	for target, args := range map[string][]string{bin: {"-overlay", overlay, "."}, workerBin: {"../../worker"}} {
		if out, err := exec.Command("go", append([]string{"build", "-o", target}, args...)...).CombinedOutput(); err != nil {
			os.Stderr.Write(out)
			os.Exit(1)
		}
	}
	// Every AWS call the Lambda and the workers make is recorded, for the IAM
	// contract (zz_contract_test.go).
	if os.Getenv("REPLICATOR_RECORD_AWS_CALLS") == "" {
		os.Setenv("REPLICATOR_RECORD_AWS_CALLS", filepath.Join(dir, "aws-calls.txt"))
	}
	p, err := pgtest.StartPair("cli", pgtest.LogicalSettings)
	if err != nil {
		fmt.Fprintf(os.Stderr, "cannot start PostgreSQL clusters: %v\n", err)
		os.Exit(1)
	}
	pair = p
	code := m.Run()
	if err := checkAWSCalls(); err != nil {
		fmt.Fprintln(os.Stderr, "FAIL: "+err.Error())
		code = 1
	}
	// The emulated platform, if a test started it, goes too: a test run
	// leaves no process behind.
	if stack != nil {
		stack.Stop()
	}
	p.Stop()
	os.RemoveAll(dir)
	os.Exit(code)
}

type result struct {
	stdout, stderr string
	code           int
}

func replicator(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinary(t, bin, env, args...)
}

// runBinary runs a replicator binary as a user does: no terminal, its exit
// code, and no password in what it prints.
func runBinary(t *testing.T, bin string, env []string, args ...string) result {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, args...)
	// On timeout, SIGQUIT first: the goroutine dump says where it hung.
	cmd.Cancel = func() error { return cmd.Process.Signal(syscall.SIGQUIT) }
	cmd.WaitDelay = 10 * time.Second
	cmd.Env = append(append(os.Environ(), "REPLICATOR_STATE_DIR="+stateDir), env...)
	var out, errOut bytes.Buffer
	cmd.Stdout, cmd.Stderr = &out, &errOut
	cmd.Stdin = nil // no terminal: prompts must not wait
	err := cmd.Run()
	r := result{stdout: out.String(), stderr: errOut.String()}
	if ee, ok := err.(*exec.ExitError); ok {
		r.code = ee.ExitCode()
	} else if err != nil {
		t.Fatalf("run replicator: %v", err)
	}
	if ctx.Err() != nil {
		t.Fatalf("replicator %v did not finish: %s", args, r.stderr)
	}
	for _, secret := range []string{pair.Source.Password, pair.Target.Password, "s3cr3t-typo", "limited-pw"} {
		if strings.Contains(r.stdout+r.stderr, secret) {
			t.Errorf("output contains a password (%q):\n%s\n%s", secret, r.stdout, r.stderr)
		}
	}
	return r
}

// assertOneLineError checks the failure contract: non-zero exit, one line naming
// the problem, target unchanged.
func assertOneLineError(t *testing.T, r result, want string) {
	t.Helper()
	if r.code == 0 {
		t.Fatalf("exit code 0, want failure; stderr:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") {
		t.Errorf("want exactly one error line, got:\n%s", r.stderr)
	}
	if !strings.Contains(r.stderr, want) {
		t.Errorf("error does not say %q:\n%s", want, r.stderr)
	}
}

func TestBadInput(t *testing.T) {
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE app; ")
	pgtest.Exec(t, pair.Source, "app", "CREATE TABLE t (id int); INSERT INTO t VALUES (1)")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE ROLE limited LOGIN PASSWORD 'limited-pw'")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "app")
		pgtest.Exec(t, pair.Target, "postgres", "DROP ROLE limited")
	})
	before := pgtest.Databases(t, pair.Target)
	src, dst := pair.Source.URL("postgres"), pair.Target.URL("postgres")

	fakeBin := t.TempDir()
	for _, tool := range []string{"pg_dump", "pg_restore", "pg_dumpall"} {
		script := "#!/bin/sh\necho '" + tool + " (PostgreSQL) 11.22'\n"
		if err := os.WriteFile(filepath.Join(fakeBin, tool), []byte(script), 0o755); err != nil {
			t.Fatal(err)
		}
	}

	cases := []struct {
		name string
		args []string
		want string
	}{
		{"malformed url", []string{"--source", "postgres://u:s3cr3t-typo@127.0.0.1:port/db", "--target", dst}, "source: malformed connection URL"},
		{"not a url", []string{"--source", "just-a-host", "--target", dst}, "source: malformed connection URL"},
		{"unreachable host", []string{"--source", src, "--target", "postgres://postgres:s3cr3t-typo@127.0.0.1:1/postgres"}, "target 127.0.0.1:1: connection refused"},
		{"bad password", []string{"--source", strings.Replace(src, pair.Source.Password, "s3cr3t-typo", 1), "--target", dst}, "password authentication failed for user \"postgres\""},
		{"missing database", []string{"--source", pair.Source.URL("nosuchdb"), "--target", dst}, "database \"nosuchdb\" does not exist"},
		{"same server", []string{"--source", src, "--target", pair.Source.URL("app")}, "source and target are the same server"},
		{"missing pg_dump", []string{"--source", src, "--target", dst, "--pg-bin", "/nonexistent"}, "pg_dump not found in /nonexistent"},
		{"old pg_dump", []string{"--source", src, "--target", dst, "--pg-bin", fakeBin}, "pg_dump 11.22"},
		{"no createdb", []string{"--source", src, "--target", pair.Target.URLAs("limited", "limited-pw", "postgres")}, "lacks CREATEDB"},
		{"bad filter", []string{"--source", src, "--target", dst, "--table-filter", "app.public.t"}, "expected 'db.schema.table:SQL predicate'"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			r := replicator(t, nil, append([]string{"init"}, c.args...)...)
			assertOneLineError(t, r, c.want)
			if after := pgtest.Databases(t, pair.Target); !reflect.DeepEqual(before, after) {
				t.Errorf("target databases changed: %v -> %v", before, after)
			}
		})
	}
	t.Run("missing flags", func(t *testing.T) {
		r := replicator(t, nil, "init", "--source", src)
		if r.code != 2 || !strings.Contains(r.stderr, "--target is required") {
			t.Errorf("want usage error (exit 2), got %d: %s", r.code, r.stderr)
		}
	})
}

func TestDropExistingNeedsYesWithoutTerminal(t *testing.T) {
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE shop")
	pgtest.Exec(t, pair.Source, "shop", "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders SELECT generate_series(1, 100)")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE shop")
	pgtest.Exec(t, pair.Target, "shop", "CREATE TABLE precious (id int); INSERT INTO precious VALUES (7)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "shop")
		pgtest.DropDatabases(t, pair.Target, "shop")
	})
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", "shop", "--no-roles"}

	r := replicator(t, nil, args...)
	assertOneLineError(t, r, "database shop already holds table public.precious")
	r = replicator(t, nil, append(args, "--drop-existing")...)
	assertOneLineError(t, r, "pass --yes to confirm")
	if got := pgtest.Query(t, pair.Target, "shop", "SELECT id FROM precious"); !reflect.DeepEqual(got, []string{"7"}) {
		t.Fatalf("target changed without confirmation: %v", got)
	}
	r = replicator(t, nil, append(args, "--drop-existing", "--yes")...)
	if r.code != 0 {
		t.Fatalf("exit %d: %s", r.code, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, "shop", "SELECT count(*) FROM orders"); !reflect.DeepEqual(got, []string{"100"}) {
		t.Errorf("orders on target: %v", got)
	}
}

func TestOutputModes(t *testing.T) {
	t.Parallel()
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE outdb")
	pgtest.Exec(t, pair.Source, "outdb", "CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 5000) g; CREATE TABLE b (x int)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "outdb")
		pgtest.DropDatabases(t, pair.Target, "outdb")
	})
	// Credentials from the environment, as the README recommends.
	env := []string{"REPLICATOR_SOURCE=" + pair.Source.URL("postgres"), "REPLICATOR_TARGET=" + pair.Target.URL("postgres")}

	t.Run("json", func(t *testing.T) {
		r := replicator(t, env, "init", "--include-databases", "outdb", "--json")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		lines := strings.Split(strings.TrimSpace(r.stdout), "\n")
		kinds := map[string]int{}
		var last map[string]any
		for _, l := range lines {
			var ev map[string]any
			if err := json.Unmarshal([]byte(l), &ev); err != nil {
				t.Fatalf("not JSON: %q", l)
			}
			kinds[ev["event"].(string)]++
			last = ev
		}
		if last["event"] != "summary" || last["rows"].(float64) != 5000 {
			t.Errorf("last line is not the summary of 5000 rows: %v", last)
		}
		for _, k := range []string{"step_started", "step_done", "table_started", "table_done", "progress"} {
			if kinds[k] == 0 {
				t.Errorf("no %s event in %v", k, kinds)
			}
		}
	})
	pgtest.DropDatabases(t, pair.Target, "outdb")
	t.Run("plain, passwords from .pgpass, verbose", func(t *testing.T) {
		pgpass := pgtest.WriteFile(t, "pgpass", fmt.Sprintf("127.0.0.1:%d:*:postgres:%s\n127.0.0.1:%d:*:postgres:%s\n",
			pair.Source.Port, pair.Source.Password, pair.Target.Port, pair.Target.Password), 0o600)
		noPassword := []string{
			"PGPASSFILE=" + pgpass,
			fmt.Sprintf("REPLICATOR_SOURCE=postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pair.Source.Port),
			fmt.Sprintf("REPLICATOR_TARGET=postgres://postgres@127.0.0.1:%d/postgres?sslmode=disable", pair.Target.Port),
		}
		r := replicator(t, noPassword, "init", "--include-databases", "outdb", "--verbose")
		if r.code != 0 {
			t.Fatalf("exit %d: %s", r.code, r.stderr)
		}
		for _, want := range []string{"[outdb] copied public.a: 5000 rows", "[outdb] post-data done in"} {
			if !strings.Contains(r.stderr, want) {
				t.Errorf("stderr lacks %q:\n%s", want, r.stderr)
			}
		}
		for _, want := range []string{"Step", "copy + indexes", "public.a", "Copied 2 tables, 5000 rows"} {
			if !strings.Contains(r.stdout, want) {
				t.Errorf("summary lacks %q:\n%s", want, r.stdout)
			}
		}
	})
}

func TestInitVerifyAndVerify(t *testing.T) {
	t.Parallel()
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE verifydb")
	pgtest.Exec(t, pair.Source, "verifydb", "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 20000) g")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "verifydb")
		pgtest.DropDatabases(t, pair.Target, "verifydb")
	})
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", "verifydb"}
	r := replicator(t, nil, append([]string{"init", "--verify", "--no-roles"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "ok      verifydb.public.t: 20000 rows") || !strings.Contains(r.stdout, "1 table(s) compared") {
		t.Fatalf("init --verify (exit %d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	pgtest.Exec(t, pair.Target, "verifydb", "UPDATE t SET v = 'changed' WHERE id = 12345")
	r = replicator(t, nil, append([]string{"verify", "--json"}, conn...)...)
	if r.code == 0 {
		t.Fatalf("verify found no difference:\n%s", r.stdout)
	}
	var res struct {
		Different int `json:"different"`
		Tables    []struct {
			Diffs []struct {
				Range string   `json:"range"`
				Keys  []string `json:"keys"`
			} `json:"diffs"`
		} `json:"tables"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	if res.Different != 1 || res.Tables[0].Diffs[0].Keys[0] != "12345 (differs)" {
		t.Errorf("verify result %+v", res)
	}
	if !strings.Contains(r.stderr, "error: 1 table(s) differ between source and target") {
		t.Errorf("stderr: %s", r.stderr)
	}
}

func TestValidate(t *testing.T) {
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE valdb")
	pgtest.Exec(t, pair.Source, "valdb", `
CREATE EXTENSION citext;
CREATE TABLE open_t (id int PRIMARY KEY, v citext);
CREATE TABLE secret (id int);
CREATE TABLE guarded (id int, owner_name text);
ALTER TABLE guarded ENABLE ROW LEVEL SECURITY;
CREATE ROLE reader LOGIN PASSWORD 'reader-pw';
GRANT SELECT ON open_t, guarded TO reader;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "valdb")
		pgtest.Exec(t, pair.Source, "postgres", "DROP ROLE reader")
	})
	conn := []string{"--target", pair.Target.URL("postgres"), "--include-databases", "valdb"}

	r := replicator(t, nil, append([]string{"validate", "--source", pair.Source.URL("postgres")}, conn...)...)
	if r.code != 0 {
		t.Fatalf("validate as superuser failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, check := range []string{"server versions", "source privileges", "extensions", "target disk", "size and time", "target writable", "tablespaces", "locales"} {
		found := false
		for _, line := range strings.Split(r.stdout, "\n") {
			found = found || strings.HasPrefix(line, "OK") && strings.Contains(line, check)
		}
		if !found {
			t.Errorf("no OK line for %q in:\n%s", check, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "free, the data is") {
		t.Errorf("free disk not checked:\n%s", r.stdout)
	}

	asReader := pair.Source.URLAs("reader", "reader-pw", "postgres")
	r = replicator(t, nil, append([]string{"validate", "--json", "--sync", "--source", asReader}, conn...)...)
	if r.code == 0 {
		t.Fatalf("validate as reader passed:\n%s", r.stdout)
	}
	var rep struct {
		Findings []struct{ Check, Severity, Message, Fix string } `json:"findings"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &rep); err != nil {
		t.Fatalf("not JSON: %v\n%s", err, r.stdout)
	}
	sev := map[string]string{}
	msgs := map[string]string{}
	for _, f := range rep.Findings {
		sev[f.Check], msgs[f.Check] = f.Severity, f.Message+" / "+f.Fix
	}
	for check, want := range map[string]string{"source privileges": "fail", "row-level security": "fail", "wal_level": "ok",
		"replication privilege": "fail", "target CREATEDB": "ok", "extensions": "ok",
		// The test source keeps the default: a slot may hold WAL without limit.
		"max_slot_wal_keep_size": "warn"} {
		if sev[check] != want {
			t.Errorf("%s: %s (%s), want %s", check, sev[check], msgs[check], want)
		}
	}
	if !strings.Contains(msgs["max_slot_wal_keep_size"], "ALTER SYSTEM SET max_slot_wal_keep_size") {
		t.Errorf("WAL retention finding: %s", msgs["max_slot_wal_keep_size"])
	}
	if !strings.Contains(msgs["source privileges"], "valdb.public.secret") || !strings.Contains(msgs["source privileges"], "GRANT SELECT") {
		t.Errorf("privileges finding: %s", msgs["source privileges"])
	}
	if !strings.Contains(msgs["replication privilege"], `ALTER ROLE "reader" REPLICATION`) {
		t.Errorf("replication finding: %s", msgs["replication privilege"])
	}

	// init runs the same checks first and stops with one line.
	r = replicator(t, nil, append([]string{"init", "--source", asReader}, conn...)...)
	assertOneLineError(t, r, "cannot read 1 table(s): valdb.public.secret")

	// validate --sync checks the target role as init --sync does: a role
	// that may create databases but not subscriptions fails here, not later.
	if sev["subscription privilege"] != "ok" {
		t.Errorf("subscription privilege as superuser: %s", msgs["subscription privilege"])
	}
	pgtest.Exec(t, pair.Target, "postgres", "CREATE ROLE val_target LOGIN CREATEDB PASSWORD 'val-pw'")
	t.Cleanup(func() { pgtest.Exec(t, pair.Target, "postgres", "DROP ROLE val_target") })
	r = replicator(t, nil, "validate", "--sync", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URLAs("val_target", "val-pw", "postgres"), "--include-databases", "valdb")
	if r.code == 0 || !strings.Contains(r.stdout, "target role val_target may not create subscriptions") || !strings.Contains(r.stdout, "rds_superuser") {
		t.Errorf("validate --sync with a target role that cannot subscribe (%d):\n%s", r.code, r.stdout)
	}
}
