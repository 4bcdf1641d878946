package platform

import (
	"encoding/json"
	"strings"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
)

// Rule: an EventBridge API destination calls only HTTPS endpoints, and a
// rule has at most 5 targets (the topic is one). A bad address or a
// webhook's secret path never reaches an error message.
func TestNotifyTargetsAreChecked(t *testing.T) {
	for _, tc := range []struct {
		emails, hooks []string
		want          string
	}{
		{nil, []string{"http://hooks.example.com/T000/B000/secretpath"}, `--notify-webhook "http://hooks.example.com/..."`},
		{nil, []string{"https://"}, "give an https:// URL"},
		{[]string{"not-an-address"}, nil, `--notify-email "not-an-address" is not an email address`},
		{nil, []string{"https://a.example/1", "https://a.example/2", "https://a.example/3", "https://a.example/4", "https://a.example/5"}, "at most 4 webhooks"},
	} {
		cfg := testConfig(t)
		cfg.NotifyEmails, cfg.NotifyWebhooks = tc.emails, tc.hooks
		cfg.Defaults()
		err := cfg.Validate()
		if err == nil || !strings.Contains(err.Error(), tc.want) || strings.Contains(err.Error(), "secretpath") {
			t.Errorf("%v %v: %v, want %q", tc.emails, tc.hooks, err, tc.want)
		}
	}
}

// The notification resources: the topic with its policy (EventBridge only
// for the stack's rule, CloudWatch alarms of the account), one email
// subscription per address, one API destination per webhook with the URL
// as a secret, a role that may invoke only those destinations, the
// dashboard and the failed-jobs alarm on the topic, and the API stage's
// throttling.
func TestNotificationsDashboardAndThrottling(t *testing.T) {
	cfg := testConfig(t)
	cfg.NotifyEmails = []string{"dba@example.com", "oncall@example.com"}
	cfg.NotifyWebhooks = []string{"https://hooks.slack.com/services/T000/B000/XXXX"}
	m := run(t, cfg)
	topic := one(t, m, "aws:sns/topic:Topic")
	if topic["name"].StringValue() != "replicator-test-events" {
		t.Errorf("topic %v", topic)
	}
	subs := map[string]string{}
	for _, sub := range m.of("aws:sns/topicSubscription:TopicSubscription") {
		subs[sub.Inputs["protocol"].StringValue()+" "+sub.Inputs["endpoint"].StringValue()] = sub.Name
	}
	if len(subs) != 2 || subs["email dba@example.com"] == "" || subs["email oncall@example.com"] == "" {
		t.Errorf("subscriptions %v", subs)
	}
	var tp Policy
	if err := json.Unmarshal([]byte(one(t, m, "aws:sns/topicPolicy:TopicPolicy")["policy"].StringValue()), &tp); err != nil {
		t.Fatal(err)
	}
	if len(tp.Statement) != 2 || tp.Statement[0].Principal["Service"] != "events.amazonaws.com" ||
		tp.Statement[0].Condition["ArnEquals"]["aws:SourceArn"] != "arn:aws:cloudwatch:us-east-1:123456789012:replicator-test-notify" {
		t.Errorf("topic policy %+v", tp)
	}
	dest := one(t, m, "aws:cloudwatch/eventApiDestination:EventApiDestination")
	if ep := dest["invocationEndpoint"]; !ep.IsSecret() || ep.SecretValue().Element.StringValue() != cfg.NotifyWebhooks[0] || dest["httpMethod"].StringValue() != "POST" {
		t.Errorf("API destination %v", dest)
	}
	targets := m.of("aws:cloudwatch/eventTarget:EventTarget")
	if len(targets) != 3 {
		t.Fatalf("%d targets, want the reaper's, the topic and the webhook", len(targets))
	}
	for _, tg := range targets {
		if tg.Name != "replicator-test-webhook-1" {
			continue
		}
		tmpl := tg.Inputs["inputTransformer"].ObjectValue()["inputTemplate"].StringValue()
		if !strings.Contains(tmpl, `"text":`) || !strings.Contains(tmpl, "<aws.events.event.json>") || tg.Inputs["roleArn"].StringValue() == "" {
			t.Errorf("webhook target %v", tg.Inputs)
		}
	}
	hooks := policies(t, m)["replicator-test-webhooks"]
	if len(hooks.Statement) != 1 || strings.Join(hooks.Statement[0].Action, ",") != "events:InvokeApiDestination" ||
		hooks.Statement[0].Resource[0] != "arn:aws:cloudwatch:us-east-1:123456789012:replicator-test-webhook-1" {
		t.Errorf("webhook role policy %+v", hooks)
	}
	board := one(t, m, "aws:cloudwatch/dashboard:Dashboard")
	var body map[string]any
	if err := json.Unmarshal([]byte(board["dashboardBody"].StringValue()), &body); err != nil || len(body["widgets"].([]any)) < 4 {
		t.Errorf("dashboard body %v: %v", board["dashboardBody"], err)
	}
	alarms := map[string]resource.PropertyMap{}
	for _, a := range m.of("aws:cloudwatch/metricAlarm:MetricAlarm") {
		alarms[a.Name] = a.Inputs
	}
	failed, lag := alarms["replicator-test-failed-jobs"], alarms["replicator-test-sync-lag"]
	if len(alarms) != 2 || failed["metricName"].StringValue() != "JobsEnded" || failed["dimensions"].ObjectValue()["Status"].StringValue() != "failed" ||
		failed["alarmActions"].ArrayValue()[0].StringValue() != "arn:aws:sns:us-east-1:123456789012:replicator-test-events" {
		t.Errorf("failed-jobs alarm %v", failed)
	}
	if lag["metricName"].StringValue() != "SyncLagSeconds" || lag["threshold"].NumberValue() != 900 || lag["statistic"].StringValue() != "Maximum" {
		t.Errorf("sync-lag alarm %v", lag)
	}
	stage := one(t, m, "aws:apigatewayv2/stage:Stage")["defaultRouteSettings"].ObjectValue()
	if stage["throttlingRateLimit"].NumberValue() != DefaultThrottleRate || stage["throttlingBurstLimit"].NumberValue() != DefaultThrottleBurst {
		t.Errorf("stage throttling %v", stage)
	}
	env := one(t, m, "aws:lambda/function:Function")["environment"].ObjectValue()["variables"].ObjectValue()
	if env[resource.PropertyKey("REPLICATOR_NOTIFY_TARGETS")].StringValue() != "3" {
		t.Errorf("notify targets %v", env["REPLICATOR_NOTIFY_TARGETS"])
	}
}
