package reaper_test

import (
	"context"
	"encoding/json"
	"os"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

var stack *devstack.Stack

func TestMain(m *testing.M) {
	var err error
	// The stack's own reaper is kept out of the way: these tests run passes by hand.
	stack, err = devstack.Start(context.Background(), devstack.Options{ReaperEvery: time.Hour,
		Config: awsenv.Config{HeartbeatTimeout: time.Minute, ProvisionTimeout: 5 * time.Minute, CancelGrace: time.Minute, MaxAttempts: 2}})
	if err != nil {
		os.Stderr.WriteString("emulated platform: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	stack.Stop()
	os.Exit(code)
}

// job stores a job as if a worker ran it, with its instance and secret, and
// the fields set (set on the stored job itself).
func job(t *testing.T, status remote.Status, set map[string]any) *remote.Job {
	t.Helper()
	ctx := context.Background()
	jobs := stack.Store()
	now := time.Now().UTC()
	j := &remote.Job{ID: remote.NewID(), Owner: "arn:aws:iam::123456789012:user/alice", Command: "init", Status: remote.Queued,
		InstanceType: "c7g.large", CreatedAt: now, UpdatedAt: now, Options: remote.Options{TimeLimitMinutes: 60}}
	if err := jobs.Create(ctx, j, store.Caps{Active: 100, PerOwner: 100}, nil); err != nil {
		t.Fatal(err)
	}
	h := stack.Handler.Reaper
	if _, err := h.Life.Secrets.Create(ctx, j.ID, remote.Secret{Source: "postgres://a", Target: "postgres://b"}); err != nil {
		t.Fatal(err)
	}
	instance, err := h.Life.Launcher.Launch(ctx, j.ID, "c7g.large")
	if err != nil {
		t.Fatal(err)
	}
	fields := map[string]any{"instance_id": instance, "attempts": 1}
	if status == remote.Running {
		fields["started_at"] = now
		fields["heartbeat_at"] = now
	}
	for k, v := range set {
		fields[k] = v
	}
	got, err := jobs.Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Queued}, To: status, Set: fields})
	if err != nil {
		t.Fatal(err)
	}
	return got
}

// at runs one reaper pass as if the clock said now+d.
func at(t *testing.T, d time.Duration) {
	t.Helper()
	r := stack.Handler.Reaper
	r.Store.Now = func() time.Time { return time.Now().Add(d) }
	defer func() { r.Store.Now = time.Now }()
	if _, err := r.Run(context.Background()); err != nil {
		t.Fatal(err)
	}
}

func state(t *testing.T, id string) string {
	for _, w := range mustWorkers(t) {
		if w.ID == id {
			return "running"
		}
	}
	return "stopped"
}

func mustWorkers(t *testing.T) []launch.Instance {
	ws, err := launch.Workers(context.Background(), stack.Clients.EC2, stack.Config.Stack)
	if err != nil {
		t.Fatal(err)
	}
	return ws
}

func secretExists(id string) bool {
	s := &secrets.Store{SM: stack.Clients.SecretsManager, Stack: stack.Config.Stack, Prefix: stack.Config.SecretPrefix}
	_, err := s.Get(context.Background(), id)
	return err == nil
}

func TestSilentWorkerIsRelaunchedThenGivenUp(t *testing.T) {
	j := job(t, remote.Running, nil)
	at(t, 30*time.Second) // heart-beat 30s ago: fine
	if got, _ := stack.Store().Get(context.Background(), j.ID); got.InstanceID != j.InstanceID {
		t.Fatalf("relaunched too early")
	}
	at(t, 2*time.Minute)
	got, _ := stack.Store().Get(context.Background(), j.ID)
	if got.Status != remote.Provisioning || got.Attempts != 2 || got.InstanceID == j.InstanceID {
		t.Fatalf("after a silent minute: %+v", got)
	}
	if state(t, j.InstanceID) != "stopped" || state(t, got.InstanceID) != "running" {
		t.Errorf("old instance not replaced")
	}
	if want := "worker " + j.InstanceID + " stopped heart-beating; relaunched on " + got.InstanceID + " (attempt 2)"; !strings.Contains(got.Message, want) {
		t.Errorf("relaunch message %q, want %q", got.Message, want)
	}
	// Only the new worker may read the job's secret.
	if tag := instanceTag(t, j.ID); tag != stack.Config.InstanceARN(got.InstanceID) {
		t.Errorf("the secret is handed to %q, want the new worker %s", tag, got.InstanceID)
	}
	at(t, 10*time.Minute) // the new one never started either, and attempts are spent
	got, _ = stack.Store().Get(context.Background(), j.ID)
	if got.Status != remote.Failed || got.Error == "" || state(t, got.InstanceID) != "stopped" || secretExists(j.ID) {
		t.Fatalf("after the last attempt: %+v", got)
	}
	// The second worker never reported at all: said so, not "stopped
	// heart-beating".
	if !strings.HasPrefix(got.Error, "the worker did not start within") || !strings.Contains(got.Error, "(2 attempts): its instance never reported") {
		t.Errorf("cause: %q", got.Error)
	}
}

func TestTimeLimit(t *testing.T) {
	late := job(t, remote.Running, nil)
	at(t, 62*time.Minute) // past the 60-minute limit and its grace (the limit is checked first)
	got, _ := stack.Store().Get(context.Background(), late.ID)
	if got.Status != remote.Failed || got.Error != "time limit of 60 minutes exceeded" || state(t, late.InstanceID) != "stopped" || secretExists(late.ID) {
		t.Errorf("late job: %+v", got)
	}
}

// A cancel the worker did not act on (it stopped heart-beating just then) is
// finished by the reaper once the grace is over: cancelled, not failed.
func TestStuckCancel(t *testing.T) {
	stuck := job(t, remote.Running, map[string]any{"cancel_requested": true})
	at(t, 30*time.Second) // within the grace
	if got, _ := stack.Store().Get(context.Background(), stuck.ID); got.Status != remote.Running {
		t.Fatalf("ended before the grace: %s", got.Status)
	}
	at(t, 70*time.Second) // past the minute of grace, far from the time limit
	got, _ := stack.Store().Get(context.Background(), stuck.ID)
	if got.Status != remote.Cancelled || got.Error != "cancelled; the worker did not stop by itself and was terminated" ||
		state(t, stuck.InstanceID) != "stopped" || secretExists(stuck.ID) {
		t.Errorf("stuck cancel: %+v", got)
	}
}

func TestOrphanedInstancesAreTerminated(t *testing.T) {
	ctx := context.Background()
	j := job(t, remote.Running, nil)
	// The job finishes without its instance going away (a worker that could not
	// terminate itself), and an instance exists for no known job.
	if _, err := stack.Store().Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Succeeded}); err != nil {
		t.Fatal(err)
	}
	stray, err := stack.Handler.Reaper.Life.Launcher.Launch(ctx, "j-aaaaaaaaaaaaaaaa", "c7g.large")
	if err != nil {
		t.Fatal(err)
	}
	at(t, 0)
	if state(t, j.InstanceID) != "stopped" || state(t, stray) != "stopped" {
		t.Errorf("orphans left running")
	}
}

func instanceTag(t *testing.T, jobID string) string {
	t.Helper()
	out, err := stack.Clients.SecretsManager.DescribeSecret(context.Background(), &secretsmanager.DescribeSecretInput{SecretId: aws.String(stack.Config.SecretPrefix + jobID)})
	if err != nil {
		t.Fatal(err)
	}
	for _, tag := range out.Tags {
		if aws.ToString(tag.Key) == "replicator:instance" {
			return aws.ToString(tag.Value)
		}
	}
	return ""
}

// The reaper tells the topic, once, when a running job's time limit is
// near (the last 15 minutes of a 60-minute limit), and when it relaunches
// a silent worker.
func TestTimeLimitNearAndRelaunchAreAnnounced(t *testing.T) {
	ctx := context.Background()
	inbox, err := stack.Subscribe(ctx, "reaper-events")
	if err != nil {
		t.Fatal(err)
	}
	soon := job(t, remote.Running, map[string]any{"heartbeat_at": time.Now().UTC().Add(time.Hour)})
	at(t, 40*time.Minute) // 20 minutes left: not yet
	at(t, 50*time.Minute)
	at(t, 51*time.Minute) // announced already
	if got, _ := stack.Store().Get(ctx, soon.ID); !got.LimitWarned || got.Status != remote.Running {
		t.Errorf("job near its limit: %+v", got)
	}
	silent := job(t, remote.Running, nil)
	at(t, 2*time.Minute)
	kinds := map[string][]string{}
	msgs, err := inbox.Receive(ctx, 4*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	for _, m := range msgs {
		var e struct {
			DetailType string        `json:"detail-type"`
			Detail     events.Detail `json:"detail"`
		}
		if json.Unmarshal([]byte(m), &e) == nil {
			kinds[e.Detail.JobID] = append(kinds[e.Detail.JobID], e.DetailType)
			if e.Detail.JobID == soon.ID && (e.Detail.Deadline == nil || e.Detail.Deadline.Sub(*soon.StartedAt) != time.Hour) {
				t.Errorf("limit-near event without its deadline: %+v", e.Detail)
			}
		}
	}
	if got := kinds[soon.ID]; len(got) != 1 || got[0] != string(events.LimitNear) {
		t.Errorf("events of the job near its limit: %v", got)
	}
	if got := kinds[silent.ID]; len(got) != 1 || got[0] != string(events.Relaunched) {
		t.Errorf("events of the silent job: %v", got)
	}
}

// A running job whose worker has cost more than its --max-cost is stopped:
// failed, instance terminated, secret deleted, with the cause.
func TestCostLimitStopsAJob(t *testing.T) {
	launched := time.Now().UTC()
	cheap := job(t, remote.Running, map[string]any{"heartbeat_at": launched.Add(3 * time.Hour), "launched_at": launched, "hourly_usd": 0.0725,
		"options": remote.Options{TimeLimitMinutes: 600, MaxCostUSD: 0.10}})
	at(t, 30*time.Minute) // $0.04 so far
	if got, _ := stack.Store().Get(context.Background(), cheap.ID); got.Status != remote.Running {
		t.Fatalf("stopped under its limit: %+v", got)
	}
	at(t, 2*time.Hour) // $0.15
	got, _ := stack.Store().Get(context.Background(), cheap.ID)
	if got.Status != remote.Failed || !strings.HasPrefix(got.Error, "cost limit of $0.10 reached ($0.15 so far") || state(t, cheap.InstanceID) != "stopped" || secretExists(cheap.ID) {
		t.Errorf("over its limit: %s %q", got.Status, got.Error)
	}
}

// Issue 22, 4: of two launches racing for one job (two reaper passes), the
// one whose claim fails must not tag the secret: tagging first left the
// tag on the loser's (terminated) instance, and the winner could not read
// the job's connections.
func TestLaunchThatLosesTheClaimDoesNotTag(t *testing.T) {
	ctx := context.Background()
	j := job(t, remote.Running, nil)
	life := stack.Handler.Reaper.Life
	won, err := life.Launch(ctx, j, nil) // the first pass relaunches
	if err != nil {
		t.Fatal(err)
	}
	if _, err := life.Launch(ctx, j, nil); err == nil { // the second, from the same stale read
		t.Fatal("a second launch from a stale read claimed the job")
	}
	if tag := instanceTag(t, j.ID); tag != stack.Config.InstanceARN(won.InstanceID) {
		t.Errorf("the secret is handed to %q, want the winner %s", tag, won.InstanceID)
	}
}
