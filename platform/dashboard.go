package platform

import (
	"encoding/json"
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// dashboard declares the stack's dashboard (active jobs, throughput,
// progress and sync lag per job, ended jobs by status) and the alarms on
// failed jobs and on sync lag, which notify the topic.
func (s *stack) dashboard(n *notifications) error {
	p, ctx := s.names.Prefix(), s.ctx
	if _, err := cloudwatch.NewDashboard(ctx, p, &cloudwatch.DashboardArgs{DashboardName: pulumi.String(s.names.Dashboard()),
		DashboardBody: pulumi.String(DashboardBody(s.cfg.Stack, s.at.Region))}); err != nil {
		return err
	}
	_, err := cloudwatch.NewMetricAlarm(ctx, p+"-failed-jobs", &cloudwatch.MetricAlarmArgs{
		Name:             pulumi.String(p + "-failed-jobs"),
		AlarmDescription: pulumi.String("replicator " + s.cfg.Stack + ": a job failed (replicator jobs list shows which)"),
		Namespace:        pulumi.String(stacknames.MetricsNamespace), MetricName: pulumi.String(metrics.JobsEnded),
		Dimensions: pulumi.StringMap{"Stack": pulumi.String(s.cfg.Stack), "Status": pulumi.String("failed")},
		Statistic:  pulumi.String("Sum"), Period: pulumi.Int(300), EvaluationPeriods: pulumi.Int(1), Threshold: pulumi.Float64(1),
		ComparisonOperator: pulumi.String("GreaterThanOrEqualToThreshold"), TreatMissingData: pulumi.String("notBreaching"),
		AlarmActions: pulumi.Array{n.topic.Arn}, Tags: s.tags,
	})
	if err != nil {
		return err
	}
	// Monitored sync jobs publish how far behind their targets are.
	_, err = cloudwatch.NewMetricAlarm(ctx, p+"-sync-lag", &cloudwatch.MetricAlarmArgs{
		Name:             pulumi.String(p + "-sync-lag"),
		AlarmDescription: pulumi.String(fmt.Sprintf("replicator %s: a monitored sync job's target is %d s or more behind (sync --remote --monitor)", s.cfg.Stack, s.cfg.SyncLagAlarmSeconds)),
		Namespace:        pulumi.String(stacknames.MetricsNamespace), MetricName: pulumi.String(metrics.SyncLagSeconds),
		Dimensions: pulumi.StringMap{"Stack": pulumi.String(s.cfg.Stack)},
		Statistic:  pulumi.String("Maximum"), Period: pulumi.Int(60), EvaluationPeriods: pulumi.Int(3), DatapointsToAlarm: pulumi.Int(3),
		Threshold: pulumi.Float64(float64(s.cfg.SyncLagAlarmSeconds)), ComparisonOperator: pulumi.String("GreaterThanOrEqualToThreshold"),
		TreatMissingData: pulumi.String("notBreaching"), AlarmActions: pulumi.Array{n.topic.Arn}, OkActions: pulumi.Array{n.topic.Arn}, Tags: s.tags,
	})
	return err
}

// DashboardBody is the dashboard's JSON. Per-job metrics come from SEARCH
// expressions, so jobs appear without the dashboard changing.
func DashboardBody(stack, region string) string {
	search := func(metric, stat string) string {
		return fmt.Sprintf(`SEARCH('{%s,Job,Stack} MetricName="%s" Stack="%s"', '%s', 60)`, stacknames.MetricsNamespace, metric, stack, stat)
	}
	widget := func(x, y int, title string, metricsJSON []any) map[string]any {
		return map[string]any{"type": "metric", "x": x, "y": y, "width": 12, "height": 6, "properties": map[string]any{
			"title": title, "region": region, "view": "timeSeries", "stat": "Sum", "period": 60, "metrics": metricsJSON}}
	}
	body := map[string]any{"widgets": []any{
		widget(0, 0, "Active jobs", []any{[]any{stacknames.MetricsNamespace, metrics.ActiveJobs, "Stack", stack, map[string]any{"stat": "Maximum"}}}),
		widget(12, 0, "Throughput per job (bytes/s)", []any{[]any{map[string]any{"expression": search(metrics.Throughput, "Average"), "id": "t"}}}),
		widget(0, 6, "Percent done per job", []any{[]any{map[string]any{"expression": search(metrics.PercentDone, "Maximum"), "id": "p"}}}),
		widget(12, 6, "Jobs ended", []any{
			[]any{stacknames.MetricsNamespace, metrics.JobsEnded, "Stack", stack, "Status", "succeeded"},
			[]any{"...", "failed"}, []any{"...", "cancelled"}}),
		widget(0, 12, "Retries per job", []any{[]any{map[string]any{"expression": search(metrics.Retries, "Maximum"), "id": "r"}}}),
		widget(12, 12, "Sync lag per monitored job (s)", []any{[]any{map[string]any{"expression": search(metrics.LagSeconds, "Maximum"), "id": "l"}}}),
	}}
	b, _ := json.Marshal(body)
	return string(b)
}
