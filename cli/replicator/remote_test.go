package main_test

import (
	"context"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"

	"github.com/replicatorhq/replicator/internal/devstack"
	"github.com/replicatorhq/replicator/internal/jobs"
	"github.com/replicatorhq/replicator/internal/pgtest"
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
		stack, stackErr = devstack.Start(context.Background(), devstack.Options{WorkerBin: workerBin, WorkerLog: logFile})
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
		if jobs.ValidID(f) {
			return f
		}
	}
	t.Fatalf("no job id in %q", out)
	return ""
}

func waitJob(t *testing.T, s *devstack.Stack, id string, timeout time.Duration, cond func(*jobs.Job) bool) *jobs.Job {
	t.Helper()
	var j *jobs.Job
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
	s := platform(t)
	remoteDB(t, "remote1", `CREATE TABLE items (id int PRIMARY KEY, v text); INSERT INTO items SELECT g, md5(g::text) FROM generate_series(1, 50000) g;
	  CREATE TABLE tags (id serial PRIMARY KEY, name text UNIQUE); INSERT INTO tags (name) SELECT 'tag' || g FROM generate_series(1, 100) g;`)
	r := replicator(t, s.CallerEnv("alice"), "init", "--remote", "--verify", "--no-roles", "--include-databases", "remote1",
		"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"))
	if r.code != 0 {
		t.Fatalf("init --remote failed (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"submitted job j-", "[remote1] copied public.items: 50000 rows", "[remote1] post-data done", "job succeeded"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("output lacks %q:\n%s", want, r.stderr)
		}
	}
	id := jobIDFrom(t, r.stderr)
	if src, dst := pgtest.TableHashes(t, pair.Source, "remote1"), pgtest.TableHashes(t, pair.Target, "remote1"); !reflect.DeepEqual(src, dst) {
		t.Errorf("target differs:\nsource %v\ntarget %v", src, dst)
	}
	j := waitJob(t, s, id, 30*time.Second, func(j *jobs.Job) bool { return j.Status == jobs.Succeeded })
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
	r = replicator(t, s.CallerEnv("alice"), "jobs", "logs", id)
	if r.code != 0 || !strings.Contains(r.stdout, "copied public.items") {
		t.Errorf("jobs logs: %s %s", r.stdout, r.stderr)
	}
}
