package main_test

import (
	"context"
	"encoding/json"
	"fmt"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// writer inserts into db's table t as an application does, one transaction
// at a time, reconnecting when its session is ended; it remembers every id
// whose commit was acknowledged.
type writer struct {
	mu        sync.Mutex
	committed []int64
	refused   int
	stop      chan struct{}
	done      chan struct{}
}

func startWriter(t *testing.T, c *pgcluster.Cluster, db string) *writer {
	w := &writer{stop: make(chan struct{}), done: make(chan struct{})}
	go func() {
		defer close(w.done)
		ctx := context.Background()
		for {
			conn, err := c.Connect(ctx, db)
			if err != nil {
				time.Sleep(20 * time.Millisecond)
				continue
			}
			for {
				select {
				case <-w.stop:
					conn.Close(ctx)
					return
				default:
				}
				var id int64
				if err := conn.QueryRow(ctx, "INSERT INTO t (v) VALUES (md5(random()::text)) RETURNING id").Scan(&id); err != nil {
					w.mu.Lock()
					w.refused++
					w.mu.Unlock()
					break
				}
				w.mu.Lock()
				w.committed = append(w.committed, id)
				w.mu.Unlock()
				time.Sleep(2 * time.Millisecond)
			}
			conn.Close(ctx)
			time.Sleep(10 * time.Millisecond)
		}
	}()
	t.Cleanup(w.halt)
	return w
}

func (w *writer) halt() {
	select {
	case <-w.stop:
	default:
		close(w.stop)
	}
	<-w.done
}

// cutoverDB is a database copied and replicated, with a table t written
// to and a sequence of its own.
func cutoverDB(t *testing.T, db string) []string {
	t.Helper()
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE t (id bigserial PRIMARY KEY, v text);
	  CREATE TABLE other (k int PRIMARY KEY); INSERT INTO other SELECT generate_series(1, 500);
	  INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 1000);
	  CREATE SEQUENCE invoice_no START 100`)
	conn := syncedDB(t, db)
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync: %d\n%s", r.code, r.stderr)
	}
	t.Cleanup(func() {
		pgtest.Exec(t, pair.Source, "postgres", "ALTER DATABASE "+db+" RESET default_transaction_read_only")
	})
	catchUp(t, db)
	return conn
}

// lockTable holds an ACCESS EXCLUSIVE lock on table in an open transaction
// (COMMIT on the connection releases it): a subscription's apply waits.
func lockTable(t *testing.T, c *pgcluster.Cluster, db, table string) *pgx.Conn {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { conn.Close(ctx) })
	if _, err := conn.Exec(ctx, "BEGIN; LOCK TABLE "+pgx.Identifier{table}.Sanitize()+" IN ACCESS EXCLUSIVE MODE"); err != nil {
		t.Fatal(err)
	}
	return conn
}

func dbSetting(t *testing.T, c *pgcluster.Cluster, db string) []string {
	return pgtest.Query(t, c, "postgres", `SELECT c FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c
	  WHERE d.datname = $1 AND s.setrole = 0 AND c LIKE 'default_transaction_read_only%'`, db)
}

// The cut-over under a live writer: its writes stop at the fence, every
// transaction it saw committed is on the target, sequences continue past
// the source's, replication is gone and the source stays read-only.
func TestCutoverLosesNothing(t *testing.T) {
	t.Parallel()
	const db = "cut_live"
	conn := cutoverDB(t, db)
	pgtest.Exec(t, pair.Source, db, "SELECT nextval('invoice_no') FROM generate_series(1, 7)")
	w := startWriter(t, pair.Source, db)
	time.Sleep(500 * time.Millisecond)
	r := replicator(t, nil, append([]string{"cutover", "--verify", "--sequence-margin", "100", "--then", "echo repointed to $REPLICATOR_TARGET_URL as $PGUSER; test -n \"$PGPASSWORD\""}, conn...)...)
	if r.code != 0 {
		t.Fatalf("cutover: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	time.Sleep(300 * time.Millisecond)
	w.halt()
	for _, step := range []string{"guardrails", "fence", "drain", "sequences", "final check", "switch", "total"} {
		if !strings.Contains(r.stdout, step) {
			t.Errorf("the summary does not time the %s step:\n%s", step, r.stdout)
		}
	}
	if !strings.Contains(r.stdout, "new primary: postgres://") || !strings.Contains(r.stdout, "repointed to postgres://") || !strings.Contains(r.stdout, "--then exited with status 0") {
		t.Errorf("the switch's report:\n%s\n%s", r.stdout, r.stderr)
	}
	if w.refused == 0 {
		t.Errorf("the writer was never stopped by the fence")
	}
	ids := make([]string, len(w.committed))
	for i, id := range w.committed {
		ids[i] = fmt.Sprint(id)
	}
	missing := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM unnest($1::int8[]) i WHERE NOT EXISTS (SELECT 1 FROM t WHERE id = i)", w.committed)
	if len(w.committed) < 50 || missing[0] != "0" {
		t.Fatalf("%s of %d committed transactions are not on the target", missing[0], len(w.committed))
	}
	if s, d := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db); !reflect.DeepEqual(s, d) {
		t.Errorf("the sides differ after the switch:\n%v\n%v", s, d)
	}
	// The application, pointed at the target, goes on where the source
	// stopped, 100 steps further (--sequence-margin).
	next := pgtest.Query(t, pair.Target, db, "SELECT nextval('t_id_seq') > max(id), nextval('invoice_no') FROM t")
	if !reflect.DeepEqual(next, []string{"true|207"}) {
		t.Errorf("sequences on the target: %v", next)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("replication left behind (slots, publications, subscriptions): %v", got)
	}
	if got := dbSetting(t, pair.Source, db); !reflect.DeepEqual(got, []string{"default_transaction_read_only=on"}) {
		t.Errorf("the source is not left read-only: %v", got)
	}
	if !strings.Contains(r.stdout, `ALTER DATABASE "`+db+`" RESET default_transaction_read_only`) {
		t.Errorf("the summary does not say how to lift the fence:\n%s", r.stdout)
	}
	// A second run finds nothing to switch, and says so before any change.
	r = replicator(t, nil, append([]string{"cutover"}, conn...)...)
	assertOneLineError(t, r, "not replicating")
}

// --dry-run runs the guardrails and prints the plan, changing nothing;
// --json says the same for scripts.
func TestCutoverDryRun(t *testing.T) {
	t.Parallel()
	const db = "cut_dry"
	conn := cutoverDB(t, db)
	r := replicator(t, nil, append([]string{"cutover", "--dry-run"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "dry run: the guardrails pass") || !strings.Contains(r.stdout, "fence: ALTER DATABASE") {
		t.Fatalf("dry run: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := dbSetting(t, pair.Source, db); len(got) != 0 {
		t.Errorf("a dry run fenced the source: %v", got)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
		t.Errorf("a dry run changed the replication: %v", got)
	}
	r = replicator(t, nil, append([]string{"cutover", "--dry-run", "--json"}, conn...)...)
	var res struct {
		Plan     []string `json:"plan"`
		Switched bool     `json:"switched"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &res); err != nil || len(res.Plan) < 4 || res.Switched {
		t.Errorf("--json: %v\n%s", err, r.stdout)
	}
}

// A failure injected after each step before the switch lifts the fence
// exactly as it was and leaves replication running; the same command then
// starts over. A run that dies after the fence is undone by the next; one
// that dies half-way through the switch is finished by it.
func TestCutoverFailureAtEachStep(t *testing.T) {
	t.Parallel()
	dbs := []string{"cut_f1", "cut_f2"}
	for _, db := range dbs {
		cutoverDB(t, db)
	}
	// The first database had a setting of its own, which must come back.
	pgtest.Exec(t, pair.Source, "postgres", "ALTER DATABASE cut_f1 SET default_transaction_read_only = off")
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", strings.Join(dbs, ",")}
	stillReplicating := func(step string) {
		t.Helper()
		for _, db := range dbs {
			pgtest.Exec(t, pair.Source, db, "INSERT INTO other VALUES ((SELECT max(k) + 1 FROM other))")
			catchUp(t, db)
			if s, d := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM other"), pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM other"); !reflect.DeepEqual(s, d) {
				t.Errorf("after a failure at %s, %s no longer replicates: %v, %v", step, db, s, d)
			}
		}
		if got := dbSetting(t, pair.Source, "cut_f1"); !reflect.DeepEqual(got, []string{"default_transaction_read_only=off"}) {
			t.Errorf("after a failure at %s, cut_f1's own setting is %v", step, got)
		}
		if got := dbSetting(t, pair.Source, "cut_f2"); len(got) != 0 {
			t.Errorf("after a failure at %s, cut_f2 is left with %v", step, got)
		}
	}
	for _, step := range []string{"guardrails", "fence", "drain", "sequences", "final-check"} {
		r := replicator(t, []string{"REPLICATOR_TEST_CUTOVER_FAIL_AFTER=" + step}, append([]string{"cutover"}, conn...)...)
		assertOneLineError(t, r, "cut-over stopped at the "+strings.ReplaceAll(step, "-", " ")+" step: failure injected")
		if step != "guardrails" && !strings.Contains(r.stderr, "the source's settings are restored and replication goes on") {
			t.Errorf("the failure at %s does not say what it undid: %s", step, r.stderr)
		}
		stillReplicating(step)
	}
	// Killed after the fence: the source stays fenced until the next run,
	// which lifts it and starts over; here it is itself cut half-way
	// through the switch, and the run after it finishes the switch.
	r := replicator(t, []string{"REPLICATOR_TEST_CUTOVER_CRASH_AFTER=fence"}, append([]string{"cutover"}, conn...)...)
	if r.code != 3 || len(dbSetting(t, pair.Source, "cut_f2")) != 1 {
		t.Fatalf("the crash after the fence: %d, %v\n%s", r.code, dbSetting(t, pair.Source, "cut_f2"), r.stdout)
	}
	r = replicator(t, []string{"REPLICATOR_TEST_CUTOVER_FAIL_AFTER=switch"}, append([]string{"cutover"}, conn...)...)
	if !strings.Contains(r.stdout, "an earlier run stopped after fencing the source: lifting its fence, then starting over") {
		t.Errorf("the run after the crash does not undo its fence:\n%s", r.stdout)
	}
	assertOneLineError(t, r, "cut-over stopped at the switch step: database cut_f1: failure injected")
	if got := replicationObjects(t, "cut_f2"); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
		t.Fatalf("the injected failure did not stop the switch half-way: %v", got)
	}
	r = replicator(t, nil, append([]string{"cutover"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "an earlier run began the switch: finishing it") {
		t.Fatalf("the run after a failed switch: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, db := range dbs {
		if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
			t.Errorf("%s: replication left after the finished switch: %v", db, got)
		}
		if s, d := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db); !reflect.DeepEqual(s, d) {
			t.Errorf("%s: the sides differ after the switch", db)
		}
	}
	if !strings.Contains(r.stdout, `ALTER DATABASE "cut_f1" SET default_transaction_read_only = 'off'`) {
		t.Errorf("the way back to cut_f1's own setting is not said:\n%s", r.stdout)
	}
}

// Each guardrail that fails is named with its fix, and nothing changes:
// a role that overrides the read-only default, a target behind by more than
// --max-lag (status says "caught up: no" then, with the WAL between), and a
// stopped subscription.
func TestCutoverGuardrails(t *testing.T) {
	t.Parallel()
	const db = "cut_g"
	conn := cutoverDB(t, db)
	untouched := func(what string) {
		t.Helper()
		if got := dbSetting(t, pair.Source, db); len(got) != 0 {
			t.Errorf("%s: the source was fenced: %v", what, got)
		}
		if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
			t.Errorf("%s: the replication changed: %v", what, got)
		}
	}
	pgtest.Exec(t, pair.Source, "postgres", "CREATE ROLE cut_app LOGIN; ALTER ROLE cut_app IN DATABASE cut_g SET default_transaction_read_only = off")
	t.Cleanup(func() {
		pgtest.Exec(t, pair.Source, "postgres", "ALTER ROLE cut_app IN DATABASE cut_g RESET ALL; DROP ROLE cut_app")
	})
	r := replicator(t, nil, append([]string{"cutover"}, conn...)...)
	assertOneLineError(t, r, `role(s) cut_app set default_transaction_read_only themselves, so the fence would not bind their sessions; fix: ALTER ROLE "cut_app" RESET default_transaction_read_only`)
	untouched("role override")
	pgtest.Exec(t, pair.Source, "postgres", "ALTER ROLE cut_app IN DATABASE cut_g RESET ALL")

	// The target's apply waits on a lock: a committed transaction is not
	// applied, whatever the slot last reported.
	ctx := context.Background()
	lock := lockTable(t, pair.Target, db, "t")
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) SELECT 'late' FROM generate_series(1, 50000)")
	r = replicator(t, nil, append([]string{"status", "--json"}, conn...)...)
	var st struct {
		Databases []struct {
			CaughtUp *bool `json:"caught_up"`
			Slot     struct {
				LagBytes int64 `json:"lag_bytes"`
			} `json:"slot"`
		} `json:"databases"`
	}
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Databases) != 1 {
		t.Fatalf("status --json: %v\n%s", err, r.stdout)
	}
	if s := st.Databases[0]; s.CaughtUp == nil || *s.CaughtUp || s.Slot.LagBytes < 1<<20 {
		t.Errorf("status with 50,000 rows not applied: caught up %v, lag %d bytes", s.CaughtUp, s.Slot.LagBytes)
	}
	if r = replicator(t, nil, append([]string{"status"}, conn...)...); !strings.Contains(r.stdout, "CAUGHT UP") || !strings.Contains(r.stdout, "  no  ") {
		t.Errorf("status does not say it is behind:\n%s", r.stdout)
	}
	r = replicator(t, nil, append([]string{"cutover", "--max-lag", "1s"}, conn...)...)
	assertOneLineError(t, r, "the target is more than --max-lag 1s behind")
	untouched("lag")
	if _, err := lock.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	catchUp(t, db)
	r = replicator(t, nil, append([]string{"status", "--json"}, conn...)...)
	if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || st.Databases[0].CaughtUp == nil || !*st.Databases[0].CaughtUp || st.Databases[0].Slot.LagBytes != 0 {
		t.Errorf("status once applied: %v\n%s", err, r.stdout)
	}

	pgtest.Exec(t, pair.Target, db, "ALTER SUBSCRIPTION replicator DISABLE")
	r = replicator(t, nil, append([]string{"cutover"}, conn...)...)
	assertOneLineError(t, r, "cut_g: replication is stopped; fix: see replicator status")
	untouched("stopped subscription")
	pgtest.Exec(t, pair.Target, db, "ALTER SUBSCRIPTION replicator ENABLE")
}

// The fence as a role without SUPERUSER (as on RDS, where the master user
// is in rds_superuser): it owns the database, and ends the application's
// sessions once it may signal them.
func TestCutoverAsDatabaseOwner(t *testing.T) {
	t.Parallel()
	const db = "cut_owner"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE ROLE cut_mgr LOGIN REPLICATION PASSWORD 'limited-pw'; CREATE ROLE cut_web LOGIN PASSWORD 'limited-pw'")
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db+" OWNER cut_mgr")
	pgtest.Exec(t, pair.Source, db, `SET ROLE cut_mgr; CREATE TABLE t (id bigserial PRIMARY KEY, v text); INSERT INTO t (v) SELECT 'x' FROM generate_series(1, 100);
	  GRANT INSERT, SELECT ON t TO cut_web; GRANT USAGE ON SEQUENCE t_id_seq TO cut_web`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
		pgtest.Exec(t, pair.Source, "postgres", "DROP ROLE cut_web; DROP ROLE cut_mgr")
	})
	conn := []string{"--source", pair.Source.URLAs("cut_mgr", "limited-pw", "postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	t.Cleanup(func() { replicator(t, nil, append([]string{"sync", "--stop", "--force"}, conn...)...) })
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync as the owner: %d\n%s", r.code, r.stderr)
	}
	catchUp(t, db)
	ctx := context.Background()
	app, err := pgx.Connect(ctx, pair.Source.URLAs("cut_web", "limited-pw", db))
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	r := replicator(t, nil, append([]string{"cutover"}, conn...)...)
	assertOneLineError(t, r, "role cut_mgr may not end the sessions of cut_web, which the fence must end; fix: GRANT pg_signal_backend TO \"cut_mgr\"")
	pgtest.Exec(t, pair.Source, "postgres", "GRANT pg_signal_backend TO cut_mgr")
	r = replicator(t, nil, append([]string{"cutover", "--unfence-source"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "ended 1 session(s)") || !strings.Contains(r.stdout, "lifted the fence") {
		t.Fatalf("cutover as the owner: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if _, err := app.Exec(ctx, "INSERT INTO t (v) VALUES ('after')"); err == nil {
		t.Errorf("the application's session survived the fence")
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM t"); !reflect.DeepEqual(got, []string{"100"}) {
		t.Errorf("rows on the target: %v", got)
	}
	if got := dbSetting(t, pair.Source, db); len(got) != 0 {
		t.Errorf("--unfence-source left %v", got)
	}
}

// --fence=none trusts that the application is stopped; one still writing
// stops the cut-over at the final check, with replication left running.
func TestCutoverWithoutFenceSeesWrites(t *testing.T) {
	t.Parallel()
	const db = "cut_nofence"
	conn := cutoverDB(t, db)
	w := startWriter(t, pair.Source, db)
	time.Sleep(300 * time.Millisecond)
	r := replicator(t, nil, append([]string{"cutover", "--fence=none"}, conn...)...)
	w.halt()
	if r.code == 0 || !strings.Contains(r.stderr, "cut-over stopped at the final check step") {
		t.Fatalf("a cut-over without a fence under writes: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
		t.Errorf("the stopped cut-over changed the replication: %v", got)
	}
	// Stopped, it switches.
	catchUp(t, db)
	if r = replicator(t, nil, append([]string{"cutover", "--fence=none"}, conn...)...); r.code != 0 {
		t.Fatalf("cutover --fence=none once stopped: %d\n%s", r.code, r.stderr)
	}
	if got := dbSetting(t, pair.Source, db); len(got) != 0 {
		t.Errorf("--fence=none changed the source's settings: %v", got)
	}
}

// sync --stop never drops a subscription with committed changes the target
// has not applied without saying so: it refuses, and --force stops anyway
// with a warning.
func TestSyncStopWaitsForTheDrain(t *testing.T) {
	t.Parallel()
	const db = "cut_stop"
	conn := cutoverDB(t, db)
	pgtest.Exec(t, pair.Target, db, "ALTER SUBSCRIPTION replicator DISABLE")
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) SELECT 'unapplied' FROM generate_series(1, 1000)")
	r := replicator(t, nil, append([]string{"sync", "--stop"}, conn...)...)
	assertOneLineError(t, r, "the target has not applied everything the source committed")
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
		t.Errorf("the refused stop dropped something: %v", got)
	}
	r = replicator(t, nil, append([]string{"sync", "--stop", "--force"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "warning: --force: dropping the subscription although the target has not applied everything") {
		t.Fatalf("sync --stop --force: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("--force left: %v", got)
	}
}
