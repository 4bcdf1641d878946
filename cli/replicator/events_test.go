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

	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
	"github.com/replicatorhq/replicator/platform/names"
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
	cw := awsenv.NewCloudWatch(s.Clients.AWS)
	stat := func(name string, dims ...cwtypes.Dimension) float64 {
		out, err := cw.GetMetricStatistics(context.Background(), &cloudwatch.GetMetricStatisticsInput{
			Namespace: aws.String(names.MetricsNamespace), MetricName: aws.String(name), Dimensions: dims,
			StartTime: aws.Time(time.Now().Add(-time.Hour)), EndTime: aws.Time(time.Now().Add(time.Minute)), Period: aws.Int32(3600),
			Statistics: []cwtypes.Statistic{cwtypes.StatisticMaximum},
		})
		if err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		best := -1.0
		for _, p := range out.Datapoints {
			best = max(best, aws.ToFloat64(p.Maximum))
		}
		return best
	}
	dim := func(k, v string) cwtypes.Dimension {
		return cwtypes.Dimension{Name: aws.String(k), Value: aws.String(v)}
	}
	job := []cwtypes.Dimension{dim("Stack", s.Config.Stack), dim("Job", id)}
	if b := stat(metrics.BytesCopied, job...); b <= 0 {
		t.Errorf("%s of %s: %v", metrics.BytesCopied, id, b)
	}
	if p := stat(metrics.PercentDone, job...); p != 100 {
		t.Errorf("%s of %s: %v, want 100 at the end", metrics.PercentDone, id, p)
	}
	if n := stat(metrics.JobsEnded, dim("Stack", s.Config.Stack), dim("Status", "succeeded")); n < 1 {
		t.Errorf("no succeeded job counted")
	}
}
