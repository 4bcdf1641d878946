package main_test

import (
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// pgbenchOn runs pgbench against db on the source; wait returns its output.
func pgbenchOn(t *testing.T, db string, args ...string) (wait func() string) {
	t.Helper()
	cmd := exec.Command(filepath.Join(pair.Source.BinDir, "pgbench"), append(append([]string{"-n"}, args...), pair.Source.URL(db))...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	return func() string {
		cmd.Wait()
		return out.String()
	}
}

// pgbenchInit loads pgbench's tables at scale into db on the source.
func pgbenchInit(t *testing.T, db, scale string) {
	t.Helper()
	if out, err := exec.Command(filepath.Join(pair.Source.BinDir, "pgbench"), "-i", "-q", "-s", scale, pair.Source.URL(db)).CombinedOutput(); err != nil {
		t.Fatalf("pgbench -i: %v %s", err, out)
	}
}

// catchUp waits until db's slot confirms the source's position as of now.
func catchUp(t *testing.T, db string) {
	t.Helper()
	target := pgtest.Query(t, pair.Source, "postgres", "SELECT pg_current_wal_insert_lsn()::text")[0]
	waitFor(t, "the subscription to catch up", time.Minute, func() bool {
		// This database's slot: other tests' slots share the cluster.
		rows := pgtest.Query(t, pair.Source, "postgres", "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots WHERE slot_name = $2", target, replication.NamesFor(db).Slot)
		return len(rows) == 1 && rows[0] == "true"
	})
}

// syncedDB is the connection flags for replicating db, which the source
// has; at the end replication stops and db goes from both sides.
func syncedDB(t *testing.T, db string) []string {
	t.Helper()
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	t.Cleanup(func() {
		replicator(t, nil, append([]string{"sync", "--stop", "--force"}, conn...)...)
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	return conn
}

func replicationObjects(t *testing.T, db string) []string {
	return []string{
		// This database's only: tests in parallel have their own.
		pgtest.Query(t, pair.Source, "postgres", "SELECT count(*) FROM pg_replication_slots WHERE database = '"+db+"'")[0],
		pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_publication")[0],
		pgtest.Query(t, pair.Target, "postgres", "SELECT count(*) FROM pg_subscription s JOIN pg_database d ON d.oid = s.subdbid WHERE d.datname = '"+db+"'")[0],
	}
}

// init --sync under a steady write load: once the subscription catches up, the
// target equals the source, row for row: no gap, no duplicate.
func TestInitSyncIsGapFree(t *testing.T) {
	t.Parallel()
	const db = "syncdb"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgbenchInit(t, db, "5")
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE events (id bigserial PRIMARY KEY, at timestamptz DEFAULT clock_timestamp(), v text)")
	t.Cleanup(func() {
		replicator(t, nil, "sync", "--stop", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db)
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	script := pgtest.WriteFile(t, "events.sql", "INSERT INTO events (v) VALUES (md5(random()::text));\nUPDATE events SET v = 'u' WHERE id = (SELECT max(id) - 5 FROM events);\n", 0o644)
	// Writes before, during and after the copy (which takes a few seconds).
	stopBench := pgbenchOn(t, db, "-c", "3", "-T", "15")
	stopEvents := pgbenchOn(t, db, "-c", "1", "-T", "15", "-f", script)
	time.Sleep(time.Second)

	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	r := replicator(t, nil, append([]string{"init", "--sync", "--replica-identity-full", "--no-roles"}, conn...)...)
	if r.code != 0 {
		stopBench()
		stopEvents()
		t.Fatalf("init --sync failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	benchOut := stopBench()
	stopEvents()
	if !strings.Contains(benchOut, "tps") {
		t.Fatalf("pgbench did not run: %s", benchOut)
	}
	catchUp(t, db)
	src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db)
	if !reflect.DeepEqual(src, dst) {
		t.Fatalf("target differs after catch-up:\nsource %v\ntarget %v", src, dst)
	}
	if n := pgtest.Query(t, pair.Target, db, "SELECT count(*) > 100 FROM pgbench_history"); n[0] != "true" {
		t.Errorf("no pgbench transactions replicated")
	}

	r = replicator(t, nil, append([]string{"status", "--json"}, conn...)...)
	var st struct {
		Databases []struct {
			State string `json:"state"`
			Slot  struct {
				LagBytes   int64    `json:"lag_bytes"`
				LagSeconds *float64 `json:"lag_seconds"`
			} `json:"slot"`
			Subscription struct {
				LastApplied *time.Time `json:"last_applied_time"`
			} `json:"subscription"`
			Tables []struct{ Table, State string } `json:"tables"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Databases) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	s := st.Databases[0]
	if s.State != "streaming" || len(s.Tables) != 5 || s.Subscription.LastApplied == nil || s.Slot.LagSeconds == nil {
		t.Errorf("status %+v", s)
	}
	for _, tb := range s.Tables {
		if tb.State != "ready" {
			t.Errorf("table %s is %s", tb.Table, tb.State)
		}
	}

	r = replicator(t, nil, append([]string{"sync"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "already replicating") {
		t.Errorf("re-running sync should be a no-op that says so: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = replicator(t, nil, append([]string{"sync", "--force", "--replica-identity-full"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "--force: recreating") || !strings.Contains(r.stdout, "replicating from LSN") {
		t.Errorf("sync --force: %d %s %s", r.code, r.stdout, r.stderr)
	}
	// --watch refreshes until interrupted.
	watch := exec.Command(bin, append([]string{"status", "--watch", "--interval", "200ms"}, conn...)...)
	watchOut := &lockedBuffer{}
	watch.Stdout = watchOut
	if err := watch.Start(); err != nil {
		t.Fatal(err)
	}
	// Interrupt once it has refreshed three times (a loaded machine may take
	// longer than the interval per refresh; the count is what is tested).
	for deadline := time.Now().Add(30 * time.Second); strings.Count(watchOut.String(), "DATABASE") < 3 && time.Now().Before(deadline); {
		time.Sleep(100 * time.Millisecond)
	}
	watch.Process.Signal(os.Interrupt)
	if err := watch.Wait(); err != nil || strings.Count(watchOut.String(), "DATABASE") < 3 {
		t.Errorf("status --watch (%v):\n%s", err, watchOut)
	}
	pgtest.Exec(t, pair.Source, db, "SELECT setval('events_id_seq', 1000000)")
	r = replicator(t, nil, append([]string{"sync", "--stop", "--sequences"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "dropped subscription replicator, slot") {
		t.Fatalf("sync --stop: %d %s %s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT last_value FROM events_id_seq"); got[0] != "1000000" {
		t.Errorf("sequence not copied at cut-over: %v", got)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("slots, publications, subscriptions left: %v", got)
	}
}

func TestSyncErrors(t *testing.T) {
	const db = "syncerr"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (a int, b text);
	  CREATE ROLE norepl LOGIN PASSWORD 'norepl-pw'; GRANT SELECT ON keyed, loose TO norepl;
	  CREATE ROLE replonly LOGIN REPLICATION PASSWORD 'replonly-pw'; GRANT SELECT ON keyed, loose TO replonly`)
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db+"_src_only")
	pgtest.Exec(t, pair.Target, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Target, db, "CREATE TABLE keyed (id int PRIMARY KEY); CREATE TABLE loose (a int, b text)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db, db+"_src_only")
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Source, "postgres", "DROP ROLE norepl; DROP ROLE replonly")
	})
	src, dst := pair.Source.URL("postgres"), pair.Target.URL("postgres")
	cases := []struct {
		name string
		args []string
		want string
	}{
		{"wal_level", []string{"--source", dst, "--target", src}, "source wal_level is replica; logical replication needs logical: run ALTER SYSTEM SET wal_level = logical"},
		{"no replication privilege", []string{"--source", pair.Source.URLAs("norepl", "norepl-pw", "postgres"), "--target", dst}, `source role norepl lacks the REPLICATION privilege: ALTER ROLE "norepl" REPLICATION`},
		{"no primary key", []string{"--source", src, "--target", dst}, "public.loose: add primary keys, or pass --replica-identity-full to run ALTER TABLE public.loose REPLICA IDENTITY FULL"},
		{"target cannot reach source", []string{"--source", src, "--target", dst, "--exclude-tables", "loose",
			"--source-from-target", "postgres://postgres:" + pair.Source.Password + "@127.0.0.1:1/postgres"},
			"the target server could not connect to the source at 127.0.0.1:1 (the subscription connects from the target's side"},
		{"not copied yet", []string{"--source", src, "--target", dst, "--include-databases", db + "_src_only"}, "database syncerr_src_only is not on the target: copy it first"},
		{"schema changes asked for, no event trigger allowed", []string{"--source", pair.Source.URLAs("replonly", "replonly-pw", "postgres"), "--target", dst, "--replicate-ddl"},
			"--replicate-ddl needs an event trigger on the source, and role replonly may not create one: connect to the source as a superuser (on RDS and Aurora: a member of rds_superuser), or pass --replicate-ddl=false"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			args := append([]string{"sync"}, c.args...)
			if c.name != "not copied yet" {
				args = append(args, "--include-databases", db)
			}
			r := replicator(t, nil, args...)
			assertOneLineError(t, r, c.want)
			if got := replicationObjects(t, db); got[0] != "0" || got[2] != "0" {
				t.Errorf("left behind (slots, publications, subscriptions): %v", got)
			}
			if n := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_event_trigger")[0]; n != "0" {
				t.Errorf("%s event trigger(s) left on the source", n)
			}
		})
	}
	// init --sync that cannot subscribe leaves no slot filling the source's disk.
	pgtest.DropDatabases(t, pair.Target, db)
	r := replicator(t, nil, "init", "--sync", "--no-roles", "--source", src, "--target", dst, "--include-databases", db, "--exclude-tables", "loose",
		"--source-from-target", "postgres://postgres@127.0.0.1:1/postgres")
	if r.code == 0 || !strings.Contains(r.stderr, "could not connect to the source at 127.0.0.1:1") {
		t.Errorf("init --sync: %d %s", r.code, r.stderr)
	}
	if got := replicationObjects(t, db); got[0] != "0" || got[1] != "0" {
		t.Errorf("slot or publication left after a failed init --sync: %v\n%s", got, r.stderr)
	}
	if n := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_event_trigger")[0]; n != "0" {
		t.Errorf("%s event trigger(s) left on the source after a failed init --sync", n)
	}
}

// A column added on the source stops replication for good (the target
// lacks it); status names the drift and the statement that fixes it, says
// what the source keeps, and --check fails; once fixed, replication goes on.
func TestStatusSaysWhy(t *testing.T) {
	t.Parallel()
	const db = "drifted"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, 'v' FROM generate_series(1, 100) g")
	conn := syncedDB(t, db)
	// Schema changes not replicated: the change below is one a person must
	// make on the target, and status must say which.
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles", "--replicate-ddl=false"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync: %s", r.stderr)
	}
	if n := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_event_trigger"); n[0] != "0" {
		t.Fatalf("--replicate-ddl=false installed %s event trigger(s)", n[0])
	}
	// Healthy once the apply worker runs (it starts a moment after init).
	waitFor(t, "status --check to pass", 30*time.Second, func() bool {
		return replicator(t, nil, append([]string{"status", "--check"}, conn...)...).code == 0
	})
	pgtest.Exec(t, pair.Source, db, "ALTER TABLE items ADD COLUMN note text; UPDATE items SET note = 'n' WHERE id = 1")
	const fix = `ALTER TABLE "public"."items" ADD COLUMN "note" text;`
	r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...)
	if r.code != 1 || !strings.Contains(r.stderr, `drifted: "public"."items".note column missing on the target; fix: `+fix) {
		t.Fatalf("status --check with drift: %d\n%s", r.code, r.stderr)
	}
	r = replicator(t, nil, append([]string{"status"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "broken: 1 difference(s)") || !strings.Contains(r.stdout, "fix on the target: "+fix) {
		t.Errorf("status with drift:\n%s\n%s", r.stdout, r.stderr)
	}
	r = replicator(t, nil, append([]string{"status", "--json"}, conn...)...)
	var st struct {
		Databases []struct {
			Drift []replication.Drift `json:"drift"`
			Slot  struct {
				RetainedBytes int64  `json:"retained_bytes"`
				MaxKeepSize   string `json:"max_slot_wal_keep_size"`
				WALStatus     string `json:"wal_status"`
			} `json:"slot"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Databases) != 1 || len(st.Databases[0].Drift) != 1 ||
		st.Databases[0].Drift[0].Fix != fix || st.Databases[0].Slot.RetainedBytes <= 0 || st.Databases[0].Slot.MaxKeepSize != "-1" {
		t.Errorf("status --json: %v %s", err, r.stdout)
	}
	// What the source keeps counts too.
	r = replicator(t, nil, append([]string{"status", "--check", "--max-retained", "1"}, conn...)...)
	if r.code != 1 || !strings.Contains(r.stderr, "of WAL for this replication") || !strings.Contains(r.stderr, "max_slot_wal_keep_size = -1") {
		t.Errorf("status --check over --max-retained: %d\n%s", r.code, r.stderr)
	}
	// The fix given, replication picks up where it stopped.
	pgtest.Exec(t, pair.Target, db, fix)
	waitFor(t, "the update to apply", time.Minute, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM items WHERE note = 'n'")[0] == "1"
	})
	if r := replicator(t, nil, append([]string{"status", "--check"}, conn...)...); r.code != 0 {
		t.Errorf("status --check after the fix: %d %s", r.code, r.stderr)
	}
}

// lockedBuffer is an io.Writer a test can read while a child process writes.
type lockedBuffer struct {
	mu sync.Mutex
	b  strings.Builder
}

func (l *lockedBuffer) Write(p []byte) (int, error) {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.Write(p)
}

func (l *lockedBuffer) String() string {
	l.mu.Lock()
	defer l.mu.Unlock()
	return l.b.String()
}
