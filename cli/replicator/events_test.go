package main_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	cwtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatch/types"
	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/stacknames"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// assertEndEvent waits for the end event of job id on the stack's topic:
// its kind, what the job moved, and none of the secrets.
func assertEndEvent(t *testing.T, inbox *devstack.Inbox, id string, kind events.Kind, secrets ...string) {
	t.Helper()
	deadline := time.Now().Add(20 * time.Second)
	for time.Now().Before(deadline) {
		got, err := inbox.Receive(context.Background(), 2*time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			for _, s := range secrets {
				if s != "" && strings.Contains(m, s) {
					t.Errorf("a secret in an event: %s", m)
				}
			}
			var e struct {
				DetailType string        `json:"detail-type"`
				Detail     events.Detail `json:"detail"`
			}
			if json.Unmarshal([]byte(m), &e) != nil || e.Detail.JobID != id {
				continue
			}
			d := e.Detail
			if e.DetailType != string(kind) || d.Bytes <= 0 || d.Rows <= 0 || d.DurationSeconds <= 0 || d.TablesDone == 0 || d.Show == "" ||
				d.Used == nil || d.Used.CostUSD <= 0 || d.Used.InstanceHours <= 0 || d.Used.ThroughputBytes <= 0 {
				t.Errorf("end event of %s: %+v", id, e)
			}
			return
		}
	}
	t.Errorf("no end event of %s on the topic", id)
}

// assertJobMetrics checks that the worker published the job's progress to
// CloudWatch (moto's), with the stack and job as dimensions, and that the
// job's end was counted.
func assertJobMetrics(t *testing.T, s *devstack.Stack, id string) {
	t.Helper()
	if b := metricMax(t, s, metrics.BytesCopied, "Job", id); b <= 0 {
		t.Errorf("%s of %s: %v", metrics.BytesCopied, id, b)
	}
	if p := metricMax(t, s, metrics.PercentDone, "Job", id); p != 100 {
		t.Errorf("%s of %s: %v, want 100 at the end", metrics.PercentDone, id, p)
	}
	// The end is counted after the end event is published: wait for it.
	waitFor(t, "a succeeded job counted", 30*time.Second, func() bool {
		return metricMax(t, s, metrics.JobsEnded, "Status", "succeeded") >= 1
	})
}

// sync --remote --monitor keeps the worker watching replication: lag
// metrics, an event when the target falls the job's threshold behind (its
// subscription disabled while the source writes) and one when it catches
// up; a cancel ends the monitor and leaves replication running.
func TestRemoteSyncMonitor(t *testing.T) {
	t.Parallel()
	s := platform(t)
	const db = "remote_monitor"
	remoteDB(t, db, "CREATE TABLE t (id serial PRIMARY KEY, v text); INSERT INTO t (v) VALUES ('a')")
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	if r := replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	inbox, err := s.Subscribe(context.Background(), "monitor")
	if err != nil {
		t.Fatal(err)
	}
	r := replicator(t, s.CallerEnv("alice"), append([]string{"sync", "--remote", "--detach", "--monitor", "--lag-alert", "2s"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("sync --remote --monitor: %d\n%s", r.code, r.stderr)
	}
	id := strings.TrimSpace(r.stdout)
	// Whatever happens, the job and the replication it set up end with the
	// test (a leaked subscription holds an apply worker of the target).
	t.Cleanup(func() {
		replicator(t, s.CallerEnv("alice"), "jobs", "cancel", id)
		replicator(t, s.CallerEnv("alice"), append([]string{"sync", "--stop"}, conn...)...)
	})
	waitFor(t, "the monitor's first lag metric", 2*time.Minute, func() bool {
		if j, err := s.Store().Get(context.Background(), id); err == nil && j.Status.Terminal() {
			t.Fatalf("the monitor ended: %s %q", j.Status, j.Error)
		}
		return metricMax(t, s, metrics.LagBytes, "Job", id) >= 0
	})
	sub := replication.NamesFor(db).Subscription
	pgtest.Exec(t, pair.Target, db, "ALTER SUBSCRIPTION "+pgx.Identifier{sub}.Sanitize()+" DISABLE")
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) SELECT md5(g::text) FROM generate_series(1, 1000) g")
	high := nextEvent(t, inbox, id, 30*time.Second)
	if high.DetailType != string(events.LagHigh) || high.Detail.Lag == nil || high.Detail.Lag.Database != db || high.Detail.Lag.Bytes <= 0 ||
		high.Detail.Lag.Seconds < 2 || high.Detail.Lag.ThresholdSeconds != 2 {
		t.Fatalf("lag event: %+v %+v", high, high.Detail.Lag)
	}
	pgtest.Exec(t, pair.Target, db, "ALTER SUBSCRIPTION "+pgx.Identifier{sub}.Sanitize()+" ENABLE")
	if back := nextEvent(t, inbox, id, 30*time.Second); back.DetailType != string(events.LagRecovered) {
		t.Errorf("after catching up: %+v", back)
	}
	if m := metricMax(t, s, metrics.LagBytes, "Job", id); m <= 0 {
		t.Errorf("the lag metric never showed the lag: %v", m)
	}
	// A table created on the source joins without a person: the schema
	// change queue creates it on the target, the monitor refreshes the
	// subscription, and its rows arrive once.
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE later (id int PRIMARY KEY); INSERT INTO later SELECT generate_series(1, 50)")
	waitFor(t, "the new table's rows on the target", time.Minute, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM pg_tables WHERE tablename = 'later'")[0] == "1" &&
			pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM later")[0] == "50"
	})
	pgtest.Exec(t, pair.Source, db, "INSERT INTO later VALUES (51)")
	waitFor(t, "a row inserted after the join", 30*time.Second, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) || '/' || count(DISTINCT id) FROM later")[0] == "51/51"
	})
	if r := replicator(t, s.CallerEnv("alice"), "jobs", "cancel", id); r.code != 0 {
		t.Fatalf("cancel: %s", r.stderr)
	}
	j := waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.Status != remote.Cancelled || !strings.Contains(j.Error, "replication goes on") {
		t.Errorf("the monitor's end: %s %q", j.Status, j.Error)
	}
	pgtest.Exec(t, pair.Source, db, "INSERT INTO t (v) VALUES ('after the monitor')")
	waitFor(t, "replication to go on", 30*time.Second, func() bool {
		return pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM t WHERE v = 'after the monitor'")[0] == "1"
	})
}

type jobEvent struct {
	DetailType string        `json:"detail-type"`
	Detail     events.Detail `json:"detail"`
}

// nextEvent is the next event of job id on the topic.
func nextEvent(t *testing.T, inbox *devstack.Inbox, id string, wait time.Duration) jobEvent {
	t.Helper()
	deadline := time.Now().Add(wait)
	for time.Now().Before(deadline) {
		got, err := inbox.Receive(context.Background(), time.Second)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range got {
			var e jobEvent
			if json.Unmarshal([]byte(m), &e) == nil && e.Detail.JobID == id {
				return e
			}
		}
	}
	t.Fatalf("no event of %s within %s", id, wait)
	return jobEvent{}
}

// metricMax is the largest value of a metric of the stack (and dimension
// k=v), -1 without any.
func metricMax(t *testing.T, s *devstack.Stack, name, k, v string) float64 {
	t.Helper()
	out, err := awsenv.NewCloudWatch(s.Clients.AWS).GetMetricStatistics(context.Background(), &cloudwatch.GetMetricStatisticsInput{
		Namespace: aws.String(stacknames.MetricsNamespace), MetricName: aws.String(name),
		Dimensions: []cwtypes.Dimension{{Name: aws.String("Stack"), Value: aws.String(s.Config.Stack)}, {Name: aws.String(k), Value: aws.String(v)}},
		StartTime:  aws.Time(time.Now().Add(-time.Hour)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
		Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
	})
	if err != nil {
		t.Fatal(err)
	}
	best := -1.0
	for _, p := range out.Datapoints {
		best = max(best, aws.ToFloat64(p.Maximum))
	}
	return best
}
