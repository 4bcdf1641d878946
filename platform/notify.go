package platform

import (
	"fmt"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/sns"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"

	"github.com/replicatorhq/replicator/internal/remote/events"
)

// notifications is where the stack's job events go besides the bus.
type notifications struct {
	topic *sns.Topic
}

// notifications declares the topic of job events, the rule that sends the
// stack's events there (from the account's default bus, where the Lambda
// and the workers put them, source "replicator"), the email subscriptions,
// and one API destination per webhook. The topic always exists: the alarms
// notify it too.
func (s *stack) notifications() (*notifications, error) {
	p, ctx := s.names.Prefix(), s.ctx
	topic, err := sns.NewTopic(ctx, p+"-events", &sns.TopicArgs{Name: pulumi.String(s.names.Topic()), Tags: s.tags})
	if err != nil {
		return nil, err
	}
	rule, err := cloudwatch.NewEventRule(ctx, p+"-notify", &cloudwatch.EventRuleArgs{Name: pulumi.String(s.names.NotifyRule()),
		Description:  pulumi.String("replicator " + s.cfg.Stack + ": job events to the stack's topic and webhooks"),
		EventPattern: pulumi.String(events.NotifyPattern(s.cfg.Stack)), State: pulumi.String("ENABLED"), Tags: s.tags})
	if err != nil {
		return nil, err
	}
	// EventBridge publishes to the topic only with the topic's leave, and
	// only for this rule (aws:SourceArn); CloudWatch alarms of this account
	// publish the alarms.
	policy := pulumi.All(topic.Arn, rule.Arn).ApplyT(func(v []any) string {
		return TopicPolicy(v[0].(string), v[1].(string), s.at.Account).JSON()
	}).(pulumi.StringOutput)
	if _, err := sns.NewTopicPolicy(ctx, p+"-events", &sns.TopicPolicyArgs{Arn: topic.Arn, Policy: policy}); err != nil {
		return nil, err
	}
	if _, err := cloudwatch.NewEventTarget(ctx, p+"-notify-topic", &cloudwatch.EventTargetArgs{Rule: rule.Name, Arn: topic.Arn, TargetId: pulumi.String("topic")}); err != nil {
		return nil, err
	}
	for i, addr := range s.cfg.NotifyEmails {
		// The address receives a confirmation email first; nothing is sent
		// to it before it confirms.
		if _, err := sns.NewTopicSubscription(ctx, fmt.Sprintf("%s-email-%d", p, i+1), &sns.TopicSubscriptionArgs{
			Topic: topic.Arn, Protocol: pulumi.String("email"), Endpoint: pulumi.String(addr)}); err != nil {
			return nil, err
		}
	}
	if err := s.webhooks(rule); err != nil {
		return nil, err
	}
	return &notifications{topic: topic}, nil
}

// webhooks sends each event to each webhook through an EventBridge API
// destination, with a role EventBridge assumes that may invoke only these
// destinations. The body suits Slack's incoming webhooks ("text") and
// carries the whole event for any other endpoint. The URLs are Pulumi
// secrets: a webhook's path is its credential.
func (s *stack) webhooks(rule *cloudwatch.EventRule) error {
	if len(s.cfg.NotifyWebhooks) == 0 {
		return nil
	}
	p, ctx := s.names.Prefix(), s.ctx
	role, err := iam.NewRole(ctx, p+"-webhooks", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("events.amazonaws.com")), Tags: s.tags})
	if err != nil {
		return err
	}
	var destinations pulumi.StringArray
	for i, hook := range s.cfg.NotifyWebhooks {
		name := s.names.Webhook(i)
		// A connection is required; the webhooks take no credential of
		// EventBridge's, so it sends a header naming the stack.
		conn, err := cloudwatch.NewEventConnection(ctx, name, &cloudwatch.EventConnectionArgs{Name: pulumi.String(name),
			AuthorizationType: pulumi.String("API_KEY"),
			AuthParameters: cloudwatch.EventConnectionAuthParametersArgs{ApiKey: &cloudwatch.EventConnectionAuthParametersApiKeyArgs{
				Key: pulumi.String(events.WebhookHeader), Value: pulumi.String(s.cfg.Stack)}}})
		if err != nil {
			return err
		}
		dest, err := cloudwatch.NewEventApiDestination(ctx, name, &cloudwatch.EventApiDestinationArgs{Name: pulumi.String(name),
			ConnectionArn: conn.Arn, HttpMethod: pulumi.String("POST"), InvocationEndpoint: pulumi.ToSecret(pulumi.String(hook)).(pulumi.StringOutput),
			InvocationRateLimitPerSecond: pulumi.Int(1)})
		if err != nil {
			return err
		}
		destinations = append(destinations, dest.Arn)
		if _, err := cloudwatch.NewEventTarget(ctx, name, &cloudwatch.EventTargetArgs{Rule: rule.Name, Arn: dest.Arn, RoleArn: role.Arn,
			TargetId: pulumi.String(fmt.Sprintf("webhook-%d", i+1)), InputTransformer: webhookBody()}); err != nil {
			return err
		}
	}
	policy := destinations.ToStringArrayOutput().ApplyT(func(arns []string) string {
		return Policy{Version: "2012-10-17", Statement: []Statement{{Sid: "InvokeWebhooks", Effect: "Allow",
			Action: []string{"events:InvokeApiDestination"}, Resource: arns}}}.JSON()
	}).(pulumi.StringOutput)
	_, err = iam.NewRolePolicy(ctx, p+"-webhooks", &iam.RolePolicyArgs{Role: role.Name, Policy: policy})
	return err
}

// webhookBody is the webhooks' JSON (events.WebhookTemplate).
func webhookBody() *cloudwatch.EventTargetInputTransformerArgs {
	return &cloudwatch.EventTargetInputTransformerArgs{InputPaths: pulumi.ToStringMap(events.WebhookPaths),
		InputTemplate: pulumi.String(events.WebhookTemplate)}
}

// TopicPolicy lets the stack's rule (EventBridge) and the account's
// CloudWatch alarms publish to the topic.
func TopicPolicy(topic, rule, account string) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "RuleEvents", Effect: "Allow", Principal: map[string]any{"Service": "events.amazonaws.com"}, Action: []string{"sns:Publish"},
			Resource: []string{topic}, Condition: map[string]map[string]any{"ArnEquals": {"aws:SourceArn": rule}}},
		{Sid: "Alarms", Effect: "Allow", Principal: map[string]any{"Service": "cloudwatch.amazonaws.com"}, Action: []string{"sns:Publish"},
			Resource: []string{topic}, Condition: map[string]map[string]any{"StringEquals": {"aws:SourceAccount": account}}},
	}}
}
