package devstack

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	ebtypes "github.com/aws/aws-sdk-go-v2/service/eventbridge/types"
	"github.com/aws/aws-sdk-go-v2/service/sns"
	"github.com/aws/aws-sdk-go-v2/service/sqs"
	sqstypes "github.com/aws/aws-sdk-go-v2/service/sqs/types"

	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// provisionNotify creates what setup deploys for notifications: the topic
// and the rule on the default bus that matches the stack's job events
// (moto matches the pattern for real). moto cannot deliver a rule's events
// to an SNS target (only to SQS, logs and buses), so the rule's target here
// is a queue, and a bridge publishes what arrives there to the topic, as
// EventBridge's SNS target does (the event's JSON as the message). That
// bridge is the one stand-in.
func (s *Stack) provisionNotify(ctx context.Context, webhook string) error {
	n := stacknames.Of(s.Config.Stack)
	snsc, sqsc := sns.NewFromConfig(s.Clients.AWS), sqs.NewFromConfig(s.Clients.AWS)
	topic, err := snsc.CreateTopic(ctx, &sns.CreateTopicInput{Name: aws.String(n.Topic())})
	if err != nil {
		return fmt.Errorf("create topic: %w", err)
	}
	s.Topic = aws.ToString(topic.TopicArn)
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(n.Prefix() + "-bridge")})
	if err != nil {
		return fmt.Errorf("create bridge queue: %w", err)
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return fmt.Errorf("bridge queue: %w", err)
	}
	if _, err := s.Clients.EventBridge.PutRule(ctx, &eventbridge.PutRuleInput{Name: aws.String(n.NotifyRule()),
		EventPattern: aws.String(events.NotifyPattern(s.Config.Stack)), State: ebtypes.RuleStateEnabled}); err != nil {
		return fmt.Errorf("create notify rule: %w", err)
	}
	if _, err := s.Clients.EventBridge.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(n.NotifyRule()),
		Targets: []ebtypes.Target{{Id: aws.String("topic"), Arn: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)])}}}); err != nil {
		return fmt.Errorf("target the notify rule: %w", err)
	}
	s.bridge = &bridge{sqs: sqsc, sns: snsc, queue: aws.ToString(q.QueueUrl), topic: s.Topic}
	if webhook != "" {
		return s.provisionWebhook(ctx, n, webhook)
	}
	return nil
}

// provisionWebhook makes a webhook as the program does (platform/notify.go):
// connection, API destination, and a target with the shared input
// transformer. moto checks neither the role nor HTTPS.
func (s *Stack) provisionWebhook(ctx context.Context, n stacknames.Names, url string) error {
	eb := s.Clients.EventBridge
	conn, err := eb.CreateConnection(ctx, &eventbridge.CreateConnectionInput{Name: aws.String(n.Webhook(0)), AuthorizationType: ebtypes.ConnectionAuthorizationTypeApiKey,
		AuthParameters: &ebtypes.CreateConnectionAuthRequestParameters{ApiKeyAuthParameters: &ebtypes.CreateConnectionApiKeyAuthRequestParameters{
			ApiKeyName: aws.String(events.WebhookHeader), ApiKeyValue: aws.String(s.Config.Stack)}}})
	if err != nil {
		return fmt.Errorf("create webhook connection: %w", err)
	}
	dest, err := eb.CreateApiDestination(ctx, &eventbridge.CreateApiDestinationInput{Name: aws.String(n.Webhook(0)), ConnectionArn: conn.ConnectionArn,
		HttpMethod: ebtypes.ApiDestinationHttpMethodPost, InvocationEndpoint: aws.String(url), InvocationRateLimitPerSecond: aws.Int32(1)})
	if err != nil {
		return fmt.Errorf("create webhook destination: %w", err)
	}
	_, err = eb.PutTargets(ctx, &eventbridge.PutTargetsInput{Rule: aws.String(n.NotifyRule()), Targets: []ebtypes.Target{{
		Id: aws.String("webhook-1"), Arn: dest.ApiDestinationArn, RoleArn: aws.String("arn:aws:iam::" + Account + ":role/" + n.Prefix() + "-webhooks"),
		InputTransformer: &ebtypes.InputTransformer{InputPathsMap: events.WebhookPaths, InputTemplate: aws.String(events.WebhookTemplate)}}}})
	if err != nil {
		return fmt.Errorf("target the webhook: %w", err)
	}
	return nil
}

// bridge stands in for EventBridge's delivery to an SNS target.
type bridge struct {
	sqs          *sqs.Client
	sns          *sns.Client
	queue, topic string
}

func (b *bridge) run(ctx context.Context) {
	for ctx.Err() == nil {
		out, err := b.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &b.queue, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			select {
			case <-ctx.Done():
			case <-time.After(200 * time.Millisecond):
			}
			continue
		}
		for _, m := range out.Messages {
			if _, err := b.sns.Publish(ctx, &sns.PublishInput{TopicArn: &b.topic, Message: m.Body}); err != nil {
				continue // delivered again once visible
			}
			_, _ = b.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &b.queue, ReceiptHandle: m.ReceiptHandle})
		}
	}
}

// Inbox is a queue subscribed to the stack's topic, as an email or webhook
// subscriber would be: what a user would be told.
type Inbox struct {
	sqs *sqs.Client
	url string
}

// Subscribe subscribes a new queue to the topic (raw delivery: each message
// is the event EventBridge sent).
func (s *Stack) Subscribe(ctx context.Context, name string) (*Inbox, error) {
	sqsc := sqs.NewFromConfig(s.Clients.AWS)
	q, err := sqsc.CreateQueue(ctx, &sqs.CreateQueueInput{QueueName: aws.String(stacknames.Of(s.Config.Stack).Prefix() + "-" + name)})
	if err != nil {
		return nil, err
	}
	attrs, err := sqsc.GetQueueAttributes(ctx, &sqs.GetQueueAttributesInput{QueueUrl: q.QueueUrl, AttributeNames: []sqstypes.QueueAttributeName{sqstypes.QueueAttributeNameQueueArn}})
	if err != nil {
		return nil, err
	}
	_, err = sns.NewFromConfig(s.Clients.AWS).Subscribe(ctx, &sns.SubscribeInput{TopicArn: aws.String(s.Topic), Protocol: aws.String("sqs"),
		Endpoint: aws.String(attrs.Attributes[string(sqstypes.QueueAttributeNameQueueArn)]), Attributes: map[string]string{"RawMessageDelivery": "true"}})
	if err != nil {
		return nil, err
	}
	return &Inbox{sqs: sqsc, url: aws.ToString(q.QueueUrl)}, nil
}

// Receive returns the messages that arrive within wait.
func (in *Inbox) Receive(ctx context.Context, wait time.Duration) ([]string, error) {
	var got []string
	for deadline := time.Now().Add(wait); time.Now().Before(deadline); {
		out, err := in.sqs.ReceiveMessage(ctx, &sqs.ReceiveMessageInput{QueueUrl: &in.url, MaxNumberOfMessages: 10, WaitTimeSeconds: 1})
		if err != nil {
			return got, err
		}
		for _, m := range out.Messages {
			got = append(got, aws.ToString(m.Body))
			_, _ = in.sqs.DeleteMessage(ctx, &sqs.DeleteMessageInput{QueueUrl: &in.url, ReceiptHandle: m.ReceiptHandle})
		}
	}
	return got, nil
}
