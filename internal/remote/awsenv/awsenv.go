// Package awsenv reads the platform's configuration (resource names, limits)
// from the environment, as the Lambda and the worker receive it, and builds the
// AWS clients from the default credential chain. AWS_ENDPOINT_URL points every
// client elsewhere (moto_server in tests).
package awsenv

import (
	"context"
	"fmt"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatch/schemas"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/transport/http/protocol/awsquery"
	"github.com/replicatorhq/replicator/internal/remote"
)

// Config names the platform's resources and limits.
type Config struct {
	Stack          string // REPLICATOR_STACK: every resource carries its tag
	Version        string // REPLICATOR_VERSION: the CLI version that deployed it
	Partition      string // REPLICATOR_PARTITION (aws, aws-cn, aws-us-gov)
	Region         string // AWS_REGION
	AccountID      string // REPLICATOR_ACCOUNT_ID
	Table          string // REPLICATOR_TABLE
	LogGroup       string // REPLICATOR_LOG_GROUP
	SecretPrefix   string // REPLICATOR_SECRET_PREFIX
	KMSKeyID       string // REPLICATOR_KMS_KEY_ID
	LaunchTemplate string // REPLICATOR_LAUNCH_TEMPLATE
	// LaunchTemplateVersion is the version the stack deployed
	// (REPLICATOR_LAUNCH_TEMPLATE_VERSION); "" means the default version.
	LaunchTemplateVersion string
	SubnetIDs             []string // REPLICATOR_SUBNET_IDS, comma-separated, tried in order
	DefaultInstanceType   string   // REPLICATOR_DEFAULT_INSTANCE_TYPE
	ArtifactsBucket       string   // REPLICATOR_ARTIFACTS_BUCKET
	WorkerKey             string   // REPLICATOR_WORKER_KEY

	MaxActiveJobs       int    // REPLICATOR_MAX_ACTIVE_JOBS
	MaxJobsPerOwner     int    // REPLICATOR_MAX_JOBS_PER_OWNER
	MaxInstanceSize     string // REPLICATOR_MAX_INSTANCE_SIZE
	MaxTimeLimitMinutes int    // REPLICATOR_MAX_TIME_LIMIT_MINUTES
	// EgressPorts the workers' security group allows (REPLICATOR_EGRESS_PORTS,
	// comma-separated; empty when the user's own security groups decide).
	EgressPorts             []int
	DefaultTimeLimitMinutes int           // REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES
	HeartbeatTimeout        time.Duration // REPLICATOR_HEARTBEAT_TIMEOUT
	ProvisionTimeout        time.Duration // REPLICATOR_PROVISION_TIMEOUT
	CancelGrace             time.Duration // REPLICATOR_CANCEL_GRACE
	// SubmitTimeout: a job still without its secret this long after it was
	// created is a submission that stopped halfway (REPLICATOR_SUBMIT_TIMEOUT).
	SubmitTimeout time.Duration
	MaxAttempts   int // REPLICATOR_MAX_ATTEMPTS
	// NotifyTargets counts the stack's notification targets (emails and
	// webhooks; REPLICATOR_NOTIFY_TARGETS): a job that asks for --notify on
	// a stack with none is refused.
	NotifyTargets int
}

// Defaults of the limits, when the environment does not set them.
const (
	DefaultMaxActiveJobs    = 5
	DefaultMaxJobsPerOwner  = 2
	DefaultTimeLimitMinutes = 24 * 60
	DefaultMaxAttempts      = 3
	DefaultHeartbeatTimeout = 3 * time.Minute
	DefaultProvisionTimeout = 10 * time.Minute
	DefaultCancelGrace      = 2 * time.Minute
	// DefaultSubmitTimeout is beyond the API Lambda's longest run.
	DefaultSubmitTimeout = 2 * time.Minute
	defaultPartition     = "aws"
)

// Env returns the configuration as environment variables (for child processes).
func (c Config) Env() []string {
	return []string{
		"REPLICATOR_STACK=" + c.Stack, "REPLICATOR_VERSION=" + c.Version,
		"REPLICATOR_PARTITION=" + c.Partition, "REPLICATOR_ACCOUNT_ID=" + c.AccountID,
		"REPLICATOR_TABLE=" + c.Table, "REPLICATOR_LAUNCH_TEMPLATE=" + c.LaunchTemplate,
		"REPLICATOR_LAUNCH_TEMPLATE_VERSION=" + c.LaunchTemplateVersion,
		"REPLICATOR_SUBNET_IDS=" + strings.Join(c.SubnetIDs, ","),
		"REPLICATOR_DEFAULT_INSTANCE_TYPE=" + c.DefaultInstanceType,
		"REPLICATOR_LOG_GROUP=" + c.LogGroup, "REPLICATOR_SECRET_PREFIX=" + c.SecretPrefix,
		"REPLICATOR_KMS_KEY_ID=" + c.KMSKeyID,
		"REPLICATOR_ARTIFACTS_BUCKET=" + c.ArtifactsBucket, "REPLICATOR_WORKER_KEY=" + c.WorkerKey,
		"REPLICATOR_MAX_ACTIVE_JOBS=" + strconv.Itoa(c.MaxActiveJobs),
		"REPLICATOR_MAX_JOBS_PER_OWNER=" + strconv.Itoa(c.MaxJobsPerOwner),
		"REPLICATOR_MAX_INSTANCE_SIZE=" + c.MaxInstanceSize,
		"REPLICATOR_MAX_TIME_LIMIT_MINUTES=" + strconv.Itoa(c.MaxTimeLimitMinutes),
		"REPLICATOR_EGRESS_PORTS=" + JoinPorts(c.EgressPorts),
		"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES=" + strconv.Itoa(c.DefaultTimeLimitMinutes),
		"REPLICATOR_HEARTBEAT_TIMEOUT=" + c.HeartbeatTimeout.String(),
		"REPLICATOR_PROVISION_TIMEOUT=" + c.ProvisionTimeout.String(),
		"REPLICATOR_CANCEL_GRACE=" + c.CancelGrace.String(),
		"REPLICATOR_SUBMIT_TIMEOUT=" + c.SubmitTimeout.String(),
		"REPLICATOR_MAX_ATTEMPTS=" + strconv.Itoa(c.MaxAttempts),
		"REPLICATOR_NOTIFY_TARGETS=" + strconv.Itoa(c.NotifyTargets),
	}
}

// FromEnv reads the configuration; names are required, limits have defaults.
func FromEnv() (Config, error) {
	c := Config{
		Stack: os.Getenv("REPLICATOR_STACK"), Version: os.Getenv("REPLICATOR_VERSION"),
		Partition: os.Getenv("REPLICATOR_PARTITION"), Region: os.Getenv("AWS_REGION"), AccountID: os.Getenv("REPLICATOR_ACCOUNT_ID"),
		Table: os.Getenv("REPLICATOR_TABLE"), LaunchTemplate: os.Getenv("REPLICATOR_LAUNCH_TEMPLATE"),
		LaunchTemplateVersion: os.Getenv("REPLICATOR_LAUNCH_TEMPLATE_VERSION"),
		DefaultInstanceType:   os.Getenv("REPLICATOR_DEFAULT_INSTANCE_TYPE"),
		LogGroup:              os.Getenv("REPLICATOR_LOG_GROUP"), SecretPrefix: os.Getenv("REPLICATOR_SECRET_PREFIX"),
		KMSKeyID: os.Getenv("REPLICATOR_KMS_KEY_ID"), ArtifactsBucket: os.Getenv("REPLICATOR_ARTIFACTS_BUCKET"),
		WorkerKey: os.Getenv("REPLICATOR_WORKER_KEY"), MaxInstanceSize: os.Getenv("REPLICATOR_MAX_INSTANCE_SIZE"),
	}
	if v := os.Getenv("REPLICATOR_SUBNET_IDS"); v != "" {
		c.SubnetIDs = strings.Split(v, ",")
	}
	if c.MaxInstanceSize == "" {
		c.MaxInstanceSize = remote.DefaultMaxInstanceSize
	}
	var err error
	if c.EgressPorts, err = ParsePorts(os.Getenv("REPLICATOR_EGRESS_PORTS")); err != nil {
		return c, fmt.Errorf("REPLICATOR_EGRESS_PORTS: %w", err)
	}
	if c.Partition == "" {
		c.Partition = defaultPartition
	}
	for _, req := range []struct{ name, v string }{
		{"REPLICATOR_STACK", c.Stack}, {"REPLICATOR_TABLE", c.Table}, {"REPLICATOR_LOG_GROUP", c.LogGroup},
		{"REPLICATOR_SECRET_PREFIX", c.SecretPrefix},
	} {
		if req.v == "" {
			return c, fmt.Errorf("%s is not set", req.name)
		}
	}
	ints := []struct {
		env string
		dst *int
		def int
	}{
		{"REPLICATOR_MAX_ACTIVE_JOBS", &c.MaxActiveJobs, DefaultMaxActiveJobs},
		{"REPLICATOR_MAX_JOBS_PER_OWNER", &c.MaxJobsPerOwner, DefaultMaxJobsPerOwner},
		{"REPLICATOR_MAX_TIME_LIMIT_MINUTES", &c.MaxTimeLimitMinutes, remote.MaxTimeLimitMinutes},
		{"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES", &c.DefaultTimeLimitMinutes, DefaultTimeLimitMinutes},
		{"REPLICATOR_MAX_ATTEMPTS", &c.MaxAttempts, DefaultMaxAttempts},
		{"REPLICATOR_NOTIFY_TARGETS", &c.NotifyTargets, 0},
	}
	for _, i := range ints {
		*i.dst = i.def
		if v := os.Getenv(i.env); v != "" {
			if *i.dst, err = strconv.Atoi(v); err != nil {
				return c, fmt.Errorf("%s: %w", i.env, err)
			}
		}
	}
	durs := []struct {
		env string
		dst *time.Duration
		def time.Duration
	}{
		{"REPLICATOR_HEARTBEAT_TIMEOUT", &c.HeartbeatTimeout, DefaultHeartbeatTimeout},
		{"REPLICATOR_PROVISION_TIMEOUT", &c.ProvisionTimeout, DefaultProvisionTimeout},
		{"REPLICATOR_CANCEL_GRACE", &c.CancelGrace, DefaultCancelGrace},
		{"REPLICATOR_SUBMIT_TIMEOUT", &c.SubmitTimeout, DefaultSubmitTimeout},
	}
	for _, d := range durs {
		*d.dst = d.def
		if v := os.Getenv(d.env); v != "" {
			if *d.dst, err = time.ParseDuration(v); err != nil {
				return c, fmt.Errorf("%s: %w", d.env, err)
			}
		}
	}
	return c, nil
}

// Limits are the platform's bounds on a submission.
func (c Config) Limits() remote.Limits {
	return remote.Limits{MaxInstanceSize: c.MaxInstanceSize, MaxTimeLimitMinutes: c.MaxTimeLimitMinutes, EgressPorts: c.EgressPorts}
}

// ParsePorts reads a comma-separated list of TCP ports ("" is none).
func ParsePorts(s string) ([]int, error) {
	if s == "" {
		return nil, nil
	}
	var out []int
	for _, f := range strings.Split(s, ",") {
		p, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || p < 1 || p > 65535 {
			return nil, fmt.Errorf("%q is not a TCP port", f)
		}
		out = append(out, p)
	}
	return out, nil
}

// JoinPorts writes ports as ParsePorts reads them.
func JoinPorts(ports []int) string {
	s := make([]string, len(ports))
	for i, p := range ports {
		s[i] = strconv.Itoa(p)
	}
	return strings.Join(s, ",")
}

// InstanceARN is the ARN of an instance of this platform's account and region.
func (c Config) InstanceARN(id string) string {
	return "arn:" + c.Partition + ":ec2:" + c.Region + ":" + c.AccountID + ":instance/" + id
}

// Clients are the AWS APIs the platform uses.
type Clients struct {
	AWS            aws.Config
	DynamoDB       *dynamodb.Client
	EC2            *ec2.Client
	SecretsManager *secretsmanager.Client
	Logs           *cloudwatchlogs.Client
	EventBridge    *eventbridge.Client
	CloudWatch     *cloudwatch.Client
}

// Load builds the clients from the default credential chain.
func Load(ctx context.Context, opts ...func(*config.LoadOptions) error) (*Clients, error) {
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	return &Clients{
		AWS: cfg, DynamoDB: dynamodb.NewFromConfig(cfg), EC2: ec2.NewFromConfig(cfg),
		SecretsManager: secretsmanager.NewFromConfig(cfg), Logs: cloudwatchlogs.NewFromConfig(cfg),
		EventBridge: eventbridge.NewFromConfig(cfg), CloudWatch: NewCloudWatch(cfg),
	}, nil
}

// NewCloudWatch is a CloudWatch client that speaks the Query protocol, which
// every CloudWatch endpoint serves (its model lists awsQuery beside JSON and
// CBOR), instead of the SDK's default CBOR, which moto cannot read: the
// same calls then run against moto in the tests.
func NewCloudWatch(cfg aws.Config) *cloudwatch.Client {
	return cloudwatch.NewFromConfig(cfg, func(o *cloudwatch.Options) {
		o.Protocol = awsquery.New(schemas.GraniteServiceVersion20100801)
	})
}
