package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// startReplicator runs the binary in the background, returning it and a channel
// of its JSON events.
func startReplicator(t *testing.T, env []string, args ...string) (*exec.Cmd, <-chan map[string]any, *strings.Builder) {
	t.Helper()
	cmd := exec.Command(bin, args...)
	cmd.Env = append(append(os.Environ(), "REPLICATOR_STATE_DIR="+stateDir), env...)
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	stderr := &strings.Builder{}
	cmd.Stderr = stderr
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	events := make(chan map[string]any, 10000)
	go func() {
		defer close(events)
		sc := bufio.NewScanner(stdout)
		sc.Buffer(make([]byte, 1<<20), 1<<24)
		for sc.Scan() {
			var ev map[string]any
			if json.Unmarshal(sc.Bytes(), &ev) == nil {
				events <- ev
			}
		}
	}()
	return cmd, events, stderr
}

// waitFor polls cond until it holds or the deadline passes.
func waitFor(t *testing.T, what string, timeout time.Duration, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// checkpoints reads the run's state file from the test's state directory.
func checkpoints(t *testing.T, dir string) map[string]checkpoint.Record {
	files, _ := filepath.Glob(filepath.Join(dir, "*.jsonl"))
	out := map[string]checkpoint.Record{}
	for _, f := range files {
		id := strings.TrimSuffix(filepath.Base(f), ".jsonl")
		s, err := checkpoint.NewFileStore(dir, id)
		if err != nil {
			t.Fatal(err)
		}
		recs, _ := s.Load(context.Background())
		for k, v := range recs {
			out[k] = v
		}
	}
	return out
}

func assertSame(t *testing.T, db string) {
	t.Helper()
	if src, dst := pgtest.SchemaDump(t, pair.Source, db), pgtest.SchemaDump(t, pair.Target, db); src != dst {
		t.Errorf("schema of %s differs after resume", db)
	}
	src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db)
	if !reflect.DeepEqual(src, dst) {
		t.Errorf("data of %s differs after resume:\nsource %v\ntarget %v", db, src, dst)
	}
}

func tablesStarted(events []map[string]any) map[string]bool {
	out := map[string]bool{}
	for _, ev := range events {
		if ev["event"] == "table_started" {
			out[ev["table"].(string)] = true
		}
	}
	return out
}

func TestResumeAfterKillDuringCopy(t *testing.T) {
	t.Parallel()
	const db = "resume_copy"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `
CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 1500000) g;
CREATE INDEX big_pad ON big (pad);
CREATE TABLE medium (id bigint PRIMARY KEY, pad text NOT NULL);
INSERT INTO medium SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 405000) g;
CREATE TABLE small_a AS SELECT g AS id FROM generate_series(1, 1000) g;
CREATE TABLE small_b AS SELECT g AS id, 'b' AS v FROM generate_series(1, 1000) g;
CREATE TABLE small_c (id serial PRIMARY KEY, t timestamptz DEFAULT now());
INSERT INTO small_c DEFAULT VALUES;
ANALYZE;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	// big splits into 4 ranges; medium (27% of big) stays whole and is copied
	// first, beside big's first range.
	size := pgtest.Query(t, pair.Source, db, "SELECT pg_table_size('big') * 2 / 7")[0]
	dir := t.TempDir()
	env := []string{"REPLICATOR_STATE_DIR=" + dir}
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"),
		"--include-databases", db, "--no-roles", "--json", "--jobs", "2", "--split-tables-larger-than", size}

	cmd, _, stderr := startReplicator(t, env, args...)
	// Kill when medium and part of big are committed, and the rest of big is not.
	waitFor(t, "medium and a range of big committed", 2*time.Minute, func() bool {
		done, pending := 0, 0
		cps := checkpoints(t, dir)
		for k, r := range cps {
			if strings.Contains(k, "/table/public.big/pages/") {
				if r.Status == checkpoint.Done {
					done++
				} else {
					pending++
				}
			}
		}
		return done > 0 && pending > 0 && cps["db/"+db+"/table/public.medium/whole"].Status == checkpoint.Done
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	before := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM big")
	t.Logf("killed with %s rows of big on the target; stderr: %s", before[0], stderr)

	r := replicator(t, env, args...)
	if r.code != 0 {
		t.Fatalf("resume failed (%d): %s", r.code, r.stderr)
	}
	var events []map[string]any
	for _, l := range strings.Split(strings.TrimSpace(r.stdout), "\n") {
		var ev map[string]any
		json.Unmarshal([]byte(l), &ev)
		events = append(events, ev)
	}
	started := tablesStarted(events)
	if !started["public.big"] || started["public.medium"] {
		t.Errorf("resume should redo big's unfinished ranges, not medium; started %v", started)
	}
	if !strings.Contains(r.stdout, "resuming an interrupted run") {
		t.Errorf("no resume notice in output")
	}
	summary := events[len(events)-1]
	if tables, _ := summary["tables"].([]any); len(tables) == 0 || tables[0].(map[string]any)["resumed_parts"] == nil {
		t.Errorf("summary does not show resumed parts: %v", summary["tables"])
	}
	assertSame(t, db)
	if left := checkpoints(t, dir); len(left) != 0 {
		t.Errorf("checkpoints left after success: %d", len(left))
	}
}

func TestResumeAfterKillDuringIndexBuild(t *testing.T) {
	t.Parallel()
	const db = "resume_index"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `
CREATE FUNCTION slow_id(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$ BEGIN PERFORM pg_sleep(0.0005); RETURN $1; END $$;
CREATE TABLE t (id int PRIMARY KEY, v text);
INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 6000) g;
CREATE INDEX t_slow ON t (slow_id(id));
CREATE INDEX t_v ON t (v);
CREATE TABLE u AS SELECT g AS id FROM generate_series(1, 100) g;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	dir := t.TempDir()
	env := []string{"REPLICATOR_STATE_DIR=" + dir}
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"),
		"--include-databases", db, "--no-roles", "--json"}

	cmd, _, _ := startReplicator(t, env, args...)
	waitFor(t, "the slow index build", 2*time.Minute, func() bool {
		rows := pgtest.Query(t, pair.Target, "postgres", `SELECT count(*) FROM pg_stat_activity WHERE datname = $1 AND query LIKE 'CREATE INDEX t_slow%'`, db)
		return rows[0] != "0"
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()

	r := replicator(t, env, args...)
	if r.code != 0 {
		t.Fatalf("resume failed (%d): %s", r.code, r.stderr)
	}
	assertSame(t, db)
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_indexes WHERE tablename = 't'"); !reflect.DeepEqual(got, []string{"3"}) {
		t.Errorf("indexes on t: %v", got)
	}
}

func TestRetryAfterSourceBackendTerminated(t *testing.T) {
	t.Parallel()
	const db = "retry_copy"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `
CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL);
INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 1000000) g;
CREATE TABLE other AS SELECT g AS id FROM generate_series(1, 5000) g;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	env := []string{"REPLICATOR_STATE_DIR=" + t.TempDir()}
	cmd, events, stderr := startReplicator(t, env, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"),
		"--include-databases", db, "--no-roles", "--json")
	var killed []string
	waitFor(t, "the COPY of big on the source", 2*time.Minute, func() bool {
		killed = pgtest.Query(t, pair.Source, "postgres", `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
		  WHERE datname = $1 AND query LIKE 'COPY "public"."big"%TO STDOUT%'`, db)
		return len(killed) > 0
	})
	var all []map[string]any
	for ev := range events {
		all = append(all, ev)
	}
	if err := cmd.Wait(); err != nil {
		t.Fatalf("replicator failed after a terminated backend: %v\n%s", err, stderr)
	}
	retried := false
	for _, ev := range all {
		if ev["event"] == "warning" && strings.Contains(ev["message"].(string), "copy public.big failed") && strings.Contains(ev["message"].(string), "retrying") {
			retried = true
		}
	}
	if !retried {
		t.Errorf("no retry warning in events")
	}
	assertSame(t, db)
}

// After an interruption, --no-resume forgets the checkpoints (the partial target
// then needs --drop-existing), and a run with other filters is another copy: it
// never picks up these checkpoints.
func TestNoResumeAndOtherFilters(t *testing.T) {
	t.Parallel()
	const db = "noresume"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE big (id bigint PRIMARY KEY, pad text);
	  INSERT INTO big SELECT g, repeat('p', 200) FROM generate_series(1, 600000) g;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	dir := t.TempDir()
	env := []string{"REPLICATOR_STATE_DIR=" + dir}
	args := []string{"init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles"}
	cmd, _, _ := startReplicator(t, env, append(args, "--json")...)
	waitFor(t, "pre-data restored", time.Minute, func() bool {
		return checkpoints(t, dir)["db/"+db+"/pre-data"].Status == checkpoint.Done
	})
	cmd.Process.Signal(syscall.SIGKILL)
	cmd.Wait()
	for path, content := range stateFiles(t, dir) {
		for _, secret := range []string{pair.Source.Password, pair.Target.Password} {
			if strings.Contains(content, secret) {
				t.Errorf("state file %s contains a password", path)
			}
		}
	}

	r := replicator(t, env, append(args, "--exclude-tables", "big")...)
	assertOneLineError(t, r, "database "+db+" already holds table public.big")
	r = replicator(t, env, append(args, "--no-resume")...)
	assertOneLineError(t, r, "pass --drop-existing")
	r = replicator(t, env, append(args, "--no-resume", "--drop-existing", "--yes")...)
	if r.code != 0 {
		t.Fatalf("start over failed: %s", r.stderr)
	}
	if strings.Contains(r.stderr, "resuming") {
		t.Errorf("--no-resume resumed:\n%s", r.stderr)
	}
	assertSame(t, db)
}

func stateFiles(t *testing.T, dir string) map[string]string {
	out := map[string]string{}
	filepath.Walk(dir, func(p string, info os.FileInfo, err error) error {
		if err == nil && !info.IsDir() && !strings.HasSuffix(p, ".dump") {
			b, _ := os.ReadFile(p)
			out[p] = string(b)
		}
		return nil
	})
	if len(out) == 0 {
		t.Fatalf("no state file in %s", dir)
	}
	return out
}

// A permanent error fails at once, naming the table; no retries.
func TestPermanentErrorFailsFast(t *testing.T) {
	const db = "permanent"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	// pg_dump (schema only) may read the table's definition; its rows are
	// behind row-level security, which COPY refuses rather than filter.
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE open_t (id int); CREATE TABLE secret_t (id int); INSERT INTO secret_t VALUES (1);
	  ALTER TABLE secret_t ENABLE ROW LEVEL SECURITY;
	  CREATE ROLE copier LOGIN PASSWORD 'copier-pw'; GRANT SELECT ON open_t, secret_t TO copier`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Source, "postgres", "DROP ROLE copier")
	})
	start := time.Now()
	r := replicator(t, nil, "init", "--skip-validate", "--no-roles", "--include-databases", db,
		"--source", pair.Source.URLAs("copier", "copier-pw", "postgres"), "--target", pair.Target.URL("postgres"))
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code != 1 || !strings.Contains(lines[len(lines)-1], "error: database permanent: copy public.secret_t: source: ERROR: query would be affected by row-level security policy for table \"secret_t\"") {
		t.Errorf("exit %d, stderr:\n%s", r.code, r.stderr)
	}
	if strings.Contains(r.stderr, "retrying") || time.Since(start) > 30*time.Second {
		t.Errorf("a permanent error was retried (%s):\n%s", time.Since(start), r.stderr)
	}
}
