package main_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/http/httputil"
	"net/url"
	"os"
	"path/filepath"
	"reflect"
	"regexp"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replicatorhq/replicator/internal/deploy"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

var (
	stackOnce sync.Once
	stack     *devstack.Stack
	stackErr  error
)

// platform starts the emulated AWS platform once for the package's remote
// tests (moto_server, the Lambda handler over HTTP, the launcher, the reaper).
func platform(t *testing.T) *devstack.Stack {
	t.Helper()
	stackOnce.Do(func() {
		logFile, _ := os.Create(filepath.Join(os.TempDir(), "replicator-test-workers.log"))
		// Tests run in parallel: room for all their jobs at once.
		stack, stackErr = devstack.Start(context.Background(), devstack.Options{WorkerBin: workerBin, WorkerLog: logFile,
			Config: awsenv.Config{MaxActiveJobs: 50}})
	})
	if stackErr != nil {
		t.Fatalf("emulated AWS platform: %v", stackErr)
	}
	return stack
}

func remoteDB(t *testing.T, db, sql string) {
	t.Helper()
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, sql)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
}

func jobIDFrom(t *testing.T, out string) string {
	t.Helper()
	for _, f := range strings.Fields(out) {
		if remote.ValidID(f) {
			return f
		}
	}
	t.Fatalf("no job id in %q", out)
	return ""
}

func waitJob(t *testing.T, s *devstack.Stack, id string, timeout time.Duration, cond func(*remote.Job) bool) *remote.Job {
	t.Helper()
	var j *remote.Job
	waitFor(t, "job "+id, timeout, func() bool {
		var err error
		j, err = s.Store().Get(context.Background(), id)
		return err == nil && cond(j)
	})
	return j
}

// assertNoSecrets scans every DynamoDB item and every log event for passwords.
func assertNoSecrets(t *testing.T, s *devstack.Stack, secrets ...string) {
	t.Helper()
	ctx := context.Background()
	items, err := s.Clients.DynamoDB.Scan(ctx, &dynamodb.ScanInput{TableName: aws.String(s.Config.Table)})
	if err != nil {
		t.Fatal(err)
	}
	dump, _ := json.Marshal(items.Items)
	events, err := s.Clients.Logs.FilterLogEvents(ctx, &cloudwatchlogs.FilterLogEventsInput{LogGroupName: aws.String(s.Config.LogGroup)})
	if err != nil {
		t.Fatal(err)
	}
	logs, _ := json.Marshal(events.Events)
	if len(events.Events) == 0 {
		t.Errorf("no log events shipped to CloudWatch")
	}
	for _, secret := range secrets {
		if strings.Contains(string(dump), secret) {
			t.Errorf("a password is stored in DynamoDB")
		}
		if strings.Contains(string(logs), secret) {
			t.Errorf("a password is in CloudWatch Logs")
		}
	}
}

func secretGone(t *testing.T, s *devstack.Stack, id string) bool {
	_, err := s.Clients.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(s.Config.SecretPrefix + id)})
	var nf *smtypes.ResourceNotFoundException
	return errors.As(err, &nf)
}

func instanceState(t *testing.T, s *devstack.Stack, id string) string {
	out, err := s.Clients.EC2.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil || len(out.Reservations) == 0 {
		return "gone"
	}
	return string(out.Reservations[0].Instances[0].State.Name)
}

func TestRemoteInit(t *testing.T) {
	t.Parallel()
	s := platform(t)
	remoteDB(t, "remote1", `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
	  CREATE TABLE tags (id serial PRIMARY KEY, name text UNIQUE); INSERT INTO tags (name) SELECT 'tag' || g FROM generate_series(1, 100) g;`)
	inbox, err := s.Subscribe(context.Background(), "remote-init")
	if err != nil {
		t.Fatal(err)
	}
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--verify", "--no-roles", "--include-databases", "remote1",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("init --remote failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The estimate comes first: moto has no Price List API, so the table's
	// price, and why.
	for _, want := range []string{"estimate:\n  worker:   c7g.large at $0.0725/h (built-in table of 2026-11-01", "the Price List API: unavailable (status 500)",
		"duration: about 5m0s", "transfer: source: unknown", "total:    about $0.01, plus transfer",
		"submitted job j-", "[remote1] copied public.items: 50000 rows", "[remote1] post-data done", "job succeeded"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stderr)
		}
	}
	// The remote display ends as a local run does: the summary, then verify's.
	for _, want := range []string{"Database  Step", "remote1   copy + indexes", "Copied 2 tables, 50100 rows", "  analyze", "Every copied table was analyzed",
		"ok      remote1.public.items: 50000 rows", "2 table(s) compared in"} {
		if !strings.Contains(r.stdout, want) {
			t.Errorf("summary lacks %q:\n%s", want, r.stdout)
		}
	}
	id := jobIDFrom(t, r.stderr)
	if src, dst := pgtest.TableHashes(t, pair.Source, "remote1"), pgtest.TableHashes(t, pair.Target, "remote1"); !reflect.DeepEqual(src, dst) {
		t.Errorf("target differs:\nsource %v\ntarget %v", src, dst)
	}
	j := waitJob(t, s, id, 30*time.Second, func(j *remote.Job) bool { return j.Status == remote.Succeeded })
	if j.Owner != devstack.Users["alice"].ARN || j.Attempts != 1 || strings.Contains(j.Source, pair.Source.Password) {
		t.Errorf("job record %+v", j)
	}
	if !secretGone(t, s, id) {
		t.Errorf("the job's secret was not deleted")
	}
	waitFor(t, "the worker instance to terminate", 30*time.Second, func() bool {
		st := instanceState(t, s, j.InstanceID)
		return st == "terminated" || st == "shutting-down"
	})
	assertNoSecrets(t, s, pair.Source.Password, pair.Target.Password)
	assertEndEvent(t, inbox, id, events.Succeeded, pair.Source.Password, pair.Target.Password)
	assertJobMetrics(t, s, id)

	// The job is alice's: bob cannot see or cancel it.
	r = replicator(t, s.CallerEnv("bob"), "jobs", "show", id)
	assertOneLineError(t, r, "no job "+id)
	r = replicator(t, s.CallerEnv("bob"), "jobs", "cancel", id)
	assertOneLineError(t, r, "no job "+id)
	r = replicator(t, s.CallerEnv("bob"), "jobs", "list", "--json")
	if r.code != 0 || strings.Contains(r.stdout, id) {
		t.Errorf("bob's list shows alice's job: %s %s", r.stdout, r.stderr)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "list")
	if r.code != 0 || !strings.Contains(r.stdout, id) || !strings.Contains(r.stdout, "succeeded") {
		t.Errorf("alice's list: %s %s", r.stdout, r.stderr)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "show", id)
	if r.code != 0 || !strings.Contains(r.stdout, "https://us-east-1.console.aws.amazon.com/cloudwatch/home?region=us-east-1#dashboards/dashboard/replicator-replicator") ||
		!strings.Contains(r.stdout, "instance-hours of c7g.large at $0.0725/h") || !strings.Contains(r.stdout, "/s on average") {
		t.Errorf("jobs show lacks the dashboard or the cost: %s %s", r.stdout, r.stderr)
	}
	// A cost limit under the estimate is refused before anything is submitted.
	r = replicator(t, s.CallerEnv("alice"), "init", "--remote", "--max-cost", "0.0001", "--no-roles", "--include-databases", "remote1",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	assertOneLineError(t, r, "the estimate, $0.01 (c7g.large for about 0.1 h at $0.0725/h), is over --max-cost $0.0001: raise it, or choose a smaller --instance-type")
	if strings.Contains(r.stderr, "submitted job") {
		t.Errorf("submitted over its cost limit: %s", r.stderr)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "logs", id)
	if r.code != 0 || !strings.Contains(r.stdout, "copied public.items") {
		t.Errorf("jobs logs: %s %s", r.stdout, r.stderr)
	}
}

// bigRemoteDB makes a copy that takes several seconds, split into ranges so that
// checkpoints accumulate.
func bigRemoteDB(t *testing.T, db string) {
	remoteDB(t, db, `CREATE TABLE big (id bigint PRIMARY KEY, pad text NOT NULL);
	  INSERT INTO big SELECT g, repeat(md5(g::text), 4) FROM generate_series(1, 1200000) g;
	  CREATE TABLE small AS SELECT g AS id FROM generate_series(1, 1000) g; ANALYZE;`)
}

func TestRemoteWorkerDiesAndResumes(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_crash"
	bigRemoteDB(t, db)
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--detach", "--no-roles", "--include-databases", db,
		"--split-tables-larger-than", "30MB", "--jobs", "2",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("submit: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	// Kill the worker once some ranges of big are checkpointed, not all.
	waitFor(t, "checkpointed ranges", 2*time.Minute, func() bool {
		recs, err := s.Store().Checkpoints(id).Load(context.Background())
		if err != nil {
			return false
		}
		done, pending := 0, 0
		for k, rec := range recs {
			if strings.Contains(k, "/table/public.big/pages/") {
				if rec.Status == "done" {
					done++
				} else {
					pending++
				}
			}
		}
		return done > 0 && pending > 0
	})
	if !s.Launcher.Crash(id) {
		t.Fatal("no worker process to kill")
	}
	j := waitJob(t, s, id, 2*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Succeeded || j.Attempts != 2 {
		t.Fatalf("job after the crash: %s, %d attempts, error %q", j.Status, j.Attempts, j.Error)
	}
	if src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db); !reflect.DeepEqual(src, dst) {
		t.Errorf("target differs after resume:\nsource %v\ntarget %v", src, dst)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "logs", id)
	if !strings.Contains(r.stdout, "resuming an interrupted run") {
		t.Errorf("the second worker did not resume:\n%s", r.stdout)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "watch", id)
	if r.code != 0 {
		t.Errorf("jobs watch of a succeeded job: %d %s", r.code, r.stderr)
	}
}

func TestRemoteCancel(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_cancel"
	// An index whose build takes a minute on the target (and no time on the
	// source): the job is surely running when cancelled.
	remoteDB(t, db, fmt.Sprintf(`CREATE FUNCTION slow_id(int) RETURNS int IMMUTABLE LANGUAGE plpgsql AS $$
	  BEGIN IF current_setting('port')::int = %d THEN PERFORM pg_sleep(0.001); END IF; RETURN $1; END $$;
	  CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 60000); CREATE INDEX t_slow ON t (slow_id(id));`, pair.Target.Port))
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--detach", "--no-roles", "--include-databases", db,
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("submit: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	start := time.Now()
	waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status == remote.Running })
	t.Logf("running after %s", time.Since(start))
	r = replicator(t, s.CallerEnv("alice"), "jobs", "cancel", id)
	if r.code != 0 || !strings.Contains(r.stdout, "cancel requested") {
		t.Fatalf("cancel: %d %s %s", r.code, r.stdout, r.stderr)
	}
	j := waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Cancelled {
		t.Fatalf("status %s (%s)", j.Status, j.Error)
	}
	t.Logf("cancelled after %s", time.Since(start))
	waitFor(t, "the instance to terminate", 30*time.Second, func() bool {
		st := instanceState(t, s, j.InstanceID)
		return st == "terminated" || st == "shutting-down"
	})
	if !secretGone(t, s, id) {
		t.Errorf("secret left after cancel")
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "watch", id)
	if r.code == 0 || !strings.Contains(r.stderr, "was cancelled") {
		t.Errorf("watch of a cancelled job: %d %s", r.code, r.stderr)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "cancel", id)
	assertOneLineError(t, r, "already cancelled")
}

func TestRemoteBadPassword(t *testing.T) {
	t.Parallel()
	s := platform(t)
	remoteDB(t, "remote_badpw", "CREATE TABLE t (id int)")
	wrong := strings.Replace(pair.Source.URL("postgres"), pair.Source.Password, "s3cr3t-typo", 1)
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--include-databases", "remote_badpw",
		"--source", wrong, "--target", pair.Target.URL("postgres"))
	if r.code == 0 {
		t.Fatalf("a bad password succeeded:\n%s", r.stderr)
	}
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; !strings.Contains(last, "failed") || !strings.Contains(last, `password authentication failed for user "postgres"`) {
		t.Errorf("last line does not explain: %s", last)
	}
	assertNoSecrets(t, s, "s3cr3t-typo", pair.Source.Password, pair.Target.Password)
	if id := jobIDFrom(t, r.stderr); !secretGone(t, s, id) {
		t.Errorf("secret of the failed job %s left behind", id)
	}
}

func TestRemoteRidesOutAPIOutage(t *testing.T) {
	t.Parallel()
	// Its own API, which it stops: the other tests share the platform's.
	s, err := devstack.Start(context.Background(), devstack.Options{Stack: "apidown", Moto: platform(t).Moto, WorkerBin: workerBin})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	const db = "remote_outage"
	remoteDB(t, db, `CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t SELECT g, md5(g::text) FROM generate_series(1, 300000) g`)
	cmd, _, stderr := startReplicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--include-databases", db,
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	waitFor(t, "the job to start", time.Minute, func() bool { return strings.Contains(stderr.String(), "submitted job") })
	id := jobIDFrom(t, stderr.String())
	s.API.Stop()
	// The API stays down until the CLI has noticed and the job is over: the
	// CLI must wait the outage out and still report the job's outcome.
	waitFor(t, "the CLI to notice the outage", time.Minute, func() bool { return strings.Contains(stderr.String(), "job API unreachable") })
	waitJob(t, s, id, 2*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if err := s.API.Start(); err != nil {
		t.Fatal(err)
	}
	done := make(chan error, 1)
	go func() { done <- cmd.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("the CLI did not ride out the outage: %v\n%s", err, stderr)
		}
	case <-time.After(2 * time.Minute):
		cmd.Process.Kill()
		t.Fatalf("the CLI did not finish after the API came back:\n%s", stderr)
	}
	out := stderr.String()
	if !strings.Contains(out, "job API unreachable") || !strings.Contains(out, "reachable again") {
		t.Errorf("no outage notices:\n%s", out)
	}
	if src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db); !reflect.DeepEqual(src, dst) {
		t.Errorf("target differs")
	}
}

func TestRemoteSync(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_sync"
	remoteDB(t, db, "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('a'), ('b')")
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	if r := replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	r := replicator(t, s.CallerEnv("alice"), append([]string{"sync", "--remote"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "replicating from LSN") {
		t.Fatalf("sync --remote: %d\n%s", r.code, r.stderr)
	}
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) VALUES ('after')")
	waitFor(t, "the change to replicate", 30*time.Second, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM t")[0] == "3"
	})
	r = replicator(t, s.CallerEnv("alice"), append([]string{"sync", "--remote", "--stop", "--sequences"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "dropped subscription") {
		t.Fatalf("sync --remote --stop: %d\n%s", r.code, r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("left behind: %v", got)
	}
}

// remoteCutoverDB is a database with a table t holding rows, copied and
// replicated by a local init --sync; the fence goes at the end.
func remoteCutoverDB(t *testing.T, db, values string) []string {
	t.Helper()
	remoteDB(t, db, "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ("+values+")")
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	if r := replicator(t, nil, append([]string{"init", "--sync", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init --sync: %s", r.stderr)
	}
	t.Cleanup(func() {
		replicator(t, nil, append([]string{"sync", "--stop", "--force"}, conn...)...)
		pgtest.Exec(t, pair.Source, "postgres", "ALTER DATABASE "+db+" RESET default_transaction_read_only")
	})
	return conn
}

// The worker runs the cut-over's steps as a local run does, and says at the
// end which way it went; a dry run changes nothing. --then runs on this
// machine only, and is refused with --remote before anything is submitted.
func TestRemoteCutover(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_cut"
	conn := remoteCutoverDB(t, db, "'a'), ('b'")
	r := replicator(t, s.CallerEnv("alice"), append([]string{"cutover", "--remote", "--then", "true"}, conn...)...)
	assertOneLineError(t, r, "--then cannot be used with --remote")
	r = replicator(t, s.CallerEnv("alice"), append([]string{"cutover", "--remote", "--dry-run"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "cut-over dry run: the guardrails pass") {
		t.Fatalf("cutover --remote --dry-run: %d\n%s", r.code, r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"1", "1", "1"}) {
		t.Fatalf("the dry run changed the replication: %v", got)
	}
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) VALUES ('last')")
	r = replicator(t, s.CallerEnv("alice"), append([]string{"cutover", "--remote"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "[fence] done in") || !strings.Contains(r.stderr, "cut-over source → target: switched") {
		t.Fatalf("cutover --remote: %d\n%s", r.code, r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("left behind: %v", got)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM t"); !reflect.DeepEqual(got, []string{"3"}) {
		t.Errorf("rows on the target: %v", got)
	}
}

// A worker killed while the source is fenced (the target's apply held back
// by a lock, so the drain waits) is relaunched; the new one finds the fence
// in the job's checkpoints, lifts it, starts over and switches.
func TestRemoteCutoverWorkerDies(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_cut_crash"
	conn := remoteCutoverDB(t, db, "'a'")
	catchUp(t, db)
	ctx := context.Background()
	lock := lockTable(t, pair.Target, db, "t")
	// An application transaction open across the fence, committed during
	// its drain timeout: its row is what the target must apply.
	app, err := pair.Source.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer app.Close(ctx)
	if _, err := app.Exec(ctx, "BEGIN; INSERT INTO t (v) VALUES ('in flight')"); err != nil {
		t.Fatal(err)
	}
	r := replicator(t, s.CallerEnv("alice"), append([]string{"cutover", "--remote", "--detach", "--drain-timeout", "60s"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("submit: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	waitFor(t, "the fence", 3*time.Minute, func() bool {
		if j, err := s.Store().Get(ctx, id); err == nil && j.Status.Terminal() {
			t.Fatalf("the job ended before the fence: %s, %q", j.Status, j.Error)
		}
		return len(dbSetting(t, pair.Source, db)) == 1
	})
	if _, err := app.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	waitFor(t, "the fence's record", time.Minute, func() bool {
		recs, err := s.Store().Checkpoints(id).Load(ctx)
		return err == nil && strings.Contains(recs["fence/source/"+db].Data, `"phase":"fenced"`)
	})
	time.Sleep(time.Second) // in the drain, which waits on the lock
	if !s.Launcher.Crash(id) {
		t.Fatal("no worker process to kill")
	}
	if _, err := lock.Exec(ctx, "COMMIT"); err != nil {
		t.Fatal(err)
	}
	j := waitJob(t, s, id, 3*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Succeeded || j.Attempts != 2 {
		t.Fatalf("job after the crash: %s, %d attempts, error %q", j.Status, j.Attempts, j.Error)
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "logs", id)
	if !strings.Contains(r.stdout, "an earlier run stopped after fencing the source: lifting its fence, then starting over") || !strings.Contains(r.stdout, "switched") {
		t.Errorf("the second worker's log:\n%s", r.stdout)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT v FROM t ORDER BY id"); !reflect.DeepEqual(got, []string{"a", "in flight"}) {
		t.Errorf("rows on the target: %v", got)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("left behind: %v", got)
	}
}

// After replicator setup, remote commands find the API from the cached outputs.
func TestRemoteCommandsUseSetupOutputs(t *testing.T) {
	s := platform(t)
	configDir := t.TempDir()
	os.MkdirAll(filepath.Join(configDir, "stacks"), 0o700)
	os.WriteFile(filepath.Join(configDir, "stacks", "replicator.json"),
		[]byte(`{"stack":"replicator","api_url":"`+s.API.URL+`","region":"us-east-1"}`), 0o600)
	env := append(s.CallerEnv("alice"), "REPLICATOR_API_URL=", "AWS_REGION=", "REPLICATOR_CONFIG_DIR="+configDir)
	r := replicator(t, env, "jobs", "list", "--json")
	if r.code != 0 || !strings.Contains(r.stdout, `"jobs"`) {
		t.Fatalf("jobs list from the cached outputs: %d %s %s", r.code, r.stdout, r.stderr)
	}
	r = replicator(t, env, "jobs", "list", "--stack", "elsewhere")
	assertOneLineError(t, r, `no deployment "elsewhere" known here: run replicator setup, or pass --api-url`)
}

// Two stacks in one account and region: a reaper pass and a teardown of one
// never touch the other's worker, secret or job. Every lookup is scoped by the
// replicator:stack tag.
func TestStacksSideBySide(t *testing.T) {
	t.Parallel()
	base := platform(t)
	ctx := context.Background()
	start := func(name string) *devstack.Stack {
		st, err := devstack.Start(ctx, devstack.Options{Stack: name, Moto: base.Moto, WorkerBin: workerBin, ReaperEvery: time.Hour})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(st.Stop)
		return st
	}
	alpha, beta := start("alpha"), start("beta")
	bigRemoteDB(t, "side_alpha")
	bigRemoteDB(t, "side_beta")
	submit := func(s *devstack.Stack, db string) string {
		r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--detach", "--no-roles", "--include-databases", db,
			"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
		if r.code != 0 {
			t.Fatalf("submit to %s: %s", s.Config.Stack, r.stderr)
		}
		return strings.TrimSpace(r.stdout)
	}
	a, b := submit(alpha, "side_alpha"), submit(beta, "side_beta")
	running := func(j *remote.Job) bool { return j.Status == remote.Running }
	waitJob(t, alpha, a, time.Minute, running)
	jb := waitJob(t, beta, b, time.Minute, running)

	// alpha's reaper: beta's worker is no orphan of alpha's.
	if _, err := alpha.Handler.Invoke(ctx, []byte(`{"source":"aws.events","detail-type":"Scheduled Event","detail":{}}`)); err != nil {
		t.Fatal(err)
	}
	// alpha's teardown, the steps it takes on AWS after the stack's checks.
	var out bytes.Buffer
	tj := deploy.StackJobs(alpha.Clients.AWS, "alpha", alpha.Config.Table)
	active, err := tj.Active(ctx)
	if err != nil || len(active) != 1 || active[0].ID != a {
		t.Fatalf("alpha's active jobs: %v %v", active, err)
	}
	if err := tj.Cancel(ctx, active, "cancelled by replicator teardown --force", &out); err != nil {
		t.Fatal(err)
	}
	if err := tj.StopWorkers(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if err := tj.RemoveSecrets(ctx, &out); err != nil {
		t.Fatal(err)
	}
	if st := instanceState(t, beta, jb.InstanceID); st != "running" {
		t.Fatalf("beta's worker is %s after alpha's reaper and teardown", st)
	}
	if j, _ := alpha.Store().Get(ctx, a); j.Status != remote.Cancelled {
		t.Errorf("alpha's job: %s", j.Status)
	}
	j := waitJob(t, beta, b, 3*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Succeeded || j.Attempts != 1 {
		t.Errorf("beta's job: %s after %d attempts (%s)", j.Status, j.Attempts, j.Error)
	}
	if src, dst := pgtest.TableHashes(t, pair.Source, "side_beta"), pgtest.TableHashes(t, pair.Target, "side_beta"); !reflect.DeepEqual(src, dst) {
		t.Errorf("beta's copy differs")
	}
}

// Refused credentials (expired, or not allowed) end jobs watch and --remote
// at once with the cause; only the network and the API's own failures are
// waited out.
func TestRemoteStopsOnRefusedCredentials(t *testing.T) {
	t.Parallel()
	s := platform(t)
	remoteDB(t, "remote_creds", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--detach", "--no-roles", "--include-databases", "remote_creds",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("submit: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	start := time.Now()
	r = replicator(t, s.CallerEnv("carol"), "jobs", "watch", id)
	assertOneLineError(t, r, "the job API refused these AWS credentials: The security token included in the request is expired (refresh them")
	r = replicator(t, s.CallerEnv("carol"), "init", "--remote", "--no-roles", "--include-databases", "remote_creds",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	assertOneLineError(t, r, "The security token included in the request is expired")
	t.Logf("both refusals took %s", time.Since(start).Round(time.Millisecond))
	waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
}

// The worker's pg_dump must be at least the source's major version: validate,
// run on the worker, refuses an older one in one line with the fix.
func TestRemoteRefusesAnOlderWorkerPgDump(t *testing.T) {
	t.Parallel()
	base := platform(t)
	old := t.TempDir()
	for _, tool := range []string{"pg_dump", "pg_restore", "pg_dumpall"} {
		os.WriteFile(filepath.Join(old, tool), []byte("#!/bin/sh\necho '"+tool+" (PostgreSQL) 13.20'\n"), 0o755)
	}
	s, err := devstack.Start(context.Background(), devstack.Options{Stack: "oldtools", Moto: base.Moto, WorkerBin: workerBin, WorkerArgs: []string{"-pg-bin", old}})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	remoteDB(t, "remote_oldtools", "CREATE TABLE t (id int PRIMARY KEY)")
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--include-databases", "remote_oldtools",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	want := "the worker's pg_dump 13.20 is older than the source server 15: run replicator setup --rebuild-image to rebuild the worker image"
	if r.code == 0 || !strings.Contains(r.stderr, want) {
		t.Errorf("want the job to fail with %q, got %d:\n%s", want, r.code, r.stderr)
	}
	// Issue 22, 2: the job's checks say which image the worker runs, with
	// which client tools.
	if m := regexp.MustCompile(`submitted job (j-[a-z0-9]+)`).FindStringSubmatch(r.stderr); m == nil {
		t.Errorf("no job id in:\n%s", r.stderr)
	} else if logs := replicator(t, s.CallerEnv("alice"), "jobs", "logs", m[1]); !regexp.MustCompile(`worker image.*AMI ami-[0-9a-f]+, with pg_dump 13\.20`).MatchString(logs.stdout) {
		t.Errorf("the job's log does not say the worker's image and tools:\n%s", logs.stdout)
	}
	if dbs := pgtest.Databases(t, pair.Target); slices.Contains(dbs, "remote_oldtools") {
		t.Errorf("the target was changed")
	}
}

// CloudWatch Logs down for 60 seconds in the middle of a copy: the worker's
// log shipping never blocks it, the job succeeds, and the log says what was
// lost once the service is back.
func TestRemoteCopyRidesOutALogsOutage(t *testing.T) {
	t.Parallel()
	base := platform(t)
	var down atomic.Bool
	over := make(chan struct{})
	target, _ := url.Parse(base.Gate.URL)
	proxy := httputil.NewSingleHostReverseProxy(target)
	outage := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if down.Load() {
			// No answer, as over a half-open connection (the body is read so
			// that the server notices when the client gives up).
			io.Copy(io.Discard, r.Body)
			select {
			case <-r.Context().Done():
			case <-over:
				w.WriteHeader(http.StatusServiceUnavailable)
			}
			return
		}
		proxy.ServeHTTP(w, r)
	}))
	defer outage.Close()
	workerLog, _ := os.Create(filepath.Join(t.TempDir(), "workers.log"))
	defer func() {
		if t.Failed() {
			b, _ := os.ReadFile(workerLog.Name())
			t.Logf("workers' log:\n%s", b)
		}
	}()
	s, err := devstack.Start(context.Background(), devstack.Options{Stack: "logsdown", Moto: base.Moto, WorkerBin: workerBin,
		WorkerEnv: []string{"AWS_ENDPOINT_URL_CLOUDWATCH_LOGS=" + outage.URL}, WorkerLog: workerLog})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	bigRemoteDB(t, "remote_logsdown")
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--detach", "--no-roles", "--include-databases", "remote_logsdown",
		"--split-tables-larger-than", "30MB", "--jobs", "2", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("submit: %s", r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status == remote.Running })
	down.Store(true)
	start := time.Now()
	j := waitJob(t, s, id, 3*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() || time.Since(start) > 60*time.Second })
	copied := time.Since(start)
	down.Store(false)
	close(over)
	j = waitJob(t, s, id, 3*time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Succeeded {
		t.Fatalf("job %s: %s", j.Status, j.Error)
	}
	during := copied < 60*time.Second
	t.Logf("the copy ran %s into the outage (finished during it: %v)", copied.Round(time.Second), during)
	if during && !strings.Contains(j.Message, "log line(s) could not be shipped to CloudWatch Logs") {
		t.Errorf("the job ended during the outage without saying its log is incomplete: %q", j.Message)
	}
	if src, dst := pgtest.TableHashes(t, pair.Source, "remote_logsdown"), pgtest.TableHashes(t, pair.Target, "remote_logsdown"); !reflect.DeepEqual(src, dst) {
		t.Errorf("target differs")
	}
	r = replicator(t, s.CallerEnv("alice"), "jobs", "logs", id)
	if r.code != 0 || !during && !strings.Contains(r.stdout, "job succeeded") {
		t.Errorf("the log after the outage:\n%s\n%s", r.stdout, r.stderr)
	}
}

// A job cannot make the worker connect to instance metadata or link-local
// addresses, and its failures say the same thing whatever answered: a job is
// not a port scanner. (The emulated platform allows loopback, where its
// databases are; conninfo's tests cover loopback's refusal.)
func TestRemoteJobsCannotReachThePlatform(t *testing.T) {
	t.Parallel()
	s := platform(t)
	for _, host := range []string{"169.254.169.254", "[fd00:ec2::254]", "169.254.170.2"} {
		r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles",
			"--source", "postgres://u:pw@"+host+":80/x", "--target", pair.Target.URL("postgres"))
		t.Logf("%s: %s", host, strings.TrimSpace(r.stderr))
		if r.code == 0 || !strings.Contains(r.stderr, "is not reachable from a remote job") {
			t.Errorf("source %s: exit %d\n%s", host, r.code, r.stderr)
		}
	}

	// A closed port and a server that answers something else than
	// PostgreSQL fail alike, without the bytes that came back.
	junk := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		w.Header().Set("Server", "secret-banner/1.0")
		io.WriteString(w, "internal admin page")
	}))
	defer junk.Close()
	closed := httptest.NewServer(http.NotFoundHandler())
	closedAddr := closed.Listener.Addr().String()
	closed.Close()
	var lines []string
	for _, addr := range []string{junk.Listener.Addr().String(), closedAddr} {
		r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles",
			"--source", "postgres://u:pw@"+addr+"/x?connect_timeout=3", "--target", pair.Target.URL("postgres"))
		if r.code == 0 {
			t.Fatalf("a job to %s succeeded", addr)
		}
		last := strings.Split(strings.TrimSpace(r.stderr), "\n")
		line := strings.ReplaceAll(last[len(last)-1], addr, "ADDR")
		line = jobIDPattern.ReplaceAllString(line, "JOB")
		if strings.Contains(r.stderr, "banner") || strings.Contains(r.stderr, "admin page") || strings.Contains(r.stderr, "HTTP") {
			t.Errorf("the failure shows what answered:\n%s", r.stderr)
		}
		t.Logf("%s: %s", addr, line)
		lines = append(lines, line)
	}
	if lines[0] != lines[1] || !strings.Contains(lines[0], "cannot connect") {
		t.Errorf("a listening port and a closed one fail differently:\n%s\n%s", lines[0], lines[1])
	}
}

var jobIDPattern = regexp.MustCompile(`j-[a-z0-9]{16}`)

// Strict names hold for remote jobs too: the worker's preflight stops the job
// before it changes anything.
func TestRemoteStrictNames(t *testing.T) {
	t.Parallel()
	s := platform(t)
	remoteDB(t, "remote_strict", "CREATE TABLE t (id int)")
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--include-databases", "remote_strict,Remote_Strict_Other",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; r.code == 0 || !strings.Contains(last, `--include-databases "Remote_Strict_Other" matches no database`) {
		t.Errorf("exit %d, last line: %s", r.code, last)
	}
	if slices.Contains(pgtest.Databases(t, pair.Target), "remote_strict") {
		t.Error("the job created a database before it failed")
	}
}

// A job that fails on an AWS call records a readable cause, not AWS's text
// (request id, ARNs), which stays in the worker's log.
func TestRemoteAWSFailureIsReadable(t *testing.T) {
	t.Parallel()
	// Its own stack: the failure injected must not reach other tests' workers.
	s, err := devstack.Start(context.Background(), devstack.Options{Stack: "awsfail", Moto: platform(t).Moto, WorkerBin: workerBin})
	if err != nil {
		t.Fatal(err)
	}
	defer s.Stop()
	s.Gate.Fail("secretsmanager.GetSecretValue", "AccessDeniedException")
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--include-databases", "remote_awsfail",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code == 0 {
		t.Fatalf("the job succeeded:\n%s", r.stderr)
	}
	j, err := s.Store().Get(context.Background(), jobIDFrom(t, r.stderr))
	if err != nil {
		t.Fatal(err)
	}
	if j.Error != "read the job's connection URLs: Secrets Manager GetSecretValue failed (AccessDeniedException)" {
		t.Errorf("job error %q", j.Error)
	}
	for _, leak := range []string{"assumed-role", "gate-request", "not authorized"} {
		if strings.Contains(j.Error, leak) || strings.Contains(r.stderr, leak) {
			t.Errorf("AWS's text %q reached the job or the user:\n%s\n%s", leak, j.Error, r.stderr)
		}
	}
}

// Issue 22, 9, remotely: a --table-filter predicate with stacked statements
// is refused by the worker as it is locally, and nothing of it runs on the
// source.
func TestRemoteStackedPredicateIsRefused(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_stacked"
	remoteDB(t, db, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 10)")
	attack := db + ".public.t:id<0)) TO STDOUT; COMMIT; CREATE TABLE pwned (x int); COPY (SELECT 1 WHERE (true"
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--no-roles", "--skip-validate", "--include-databases", db,
		"--table-filter", attack, "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if last := lines[len(lines)-1]; r.code == 0 || !strings.Contains(last, "is not one SQL expression over the table") {
		t.Errorf("exit %d, last line: %s", r.code, last)
	}
	if got := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_class WHERE relname = 'pwned'"); got[0] != "0" {
		t.Fatal("the worker ran the predicate's stacked statements on the source")
	}
	if slices.Contains(pgtest.Databases(t, pair.Target), db) {
		t.Error("the job created the database before it refused")
	}
}
