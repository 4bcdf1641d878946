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
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
)

// Config names the platform's resources and limits.
type Config struct {
	Table          string // REPLICATOR_TABLE
	LaunchTemplate string // REPLICATOR_LAUNCH_TEMPLATE
	LogGroup       string // REPLICATOR_LOG_GROUP
	SecretPrefix   string // REPLICATOR_SECRET_PREFIX
	KMSKeyID       string // REPLICATOR_KMS_KEY_ID

	MaxActiveJobs           int           // REPLICATOR_MAX_ACTIVE_JOBS
	DefaultTimeLimitMinutes int           // REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES
	HeartbeatTimeout        time.Duration // REPLICATOR_HEARTBEAT_TIMEOUT
	ProvisionTimeout        time.Duration // REPLICATOR_PROVISION_TIMEOUT
	CancelGrace             time.Duration // REPLICATOR_CANCEL_GRACE
	MaxAttempts             int           // REPLICATOR_MAX_ATTEMPTS
}

// Env returns the configuration as environment variables (for child processes).
func (c Config) Env() []string {
	return []string{
		"REPLICATOR_TABLE=" + c.Table, "REPLICATOR_LAUNCH_TEMPLATE=" + c.LaunchTemplate,
		"REPLICATOR_LOG_GROUP=" + c.LogGroup, "REPLICATOR_SECRET_PREFIX=" + c.SecretPrefix,
		"REPLICATOR_KMS_KEY_ID=" + c.KMSKeyID,
		"REPLICATOR_MAX_ACTIVE_JOBS=" + strconv.Itoa(c.MaxActiveJobs),
		"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES=" + strconv.Itoa(c.DefaultTimeLimitMinutes),
		"REPLICATOR_HEARTBEAT_TIMEOUT=" + c.HeartbeatTimeout.String(),
		"REPLICATOR_PROVISION_TIMEOUT=" + c.ProvisionTimeout.String(),
		"REPLICATOR_CANCEL_GRACE=" + c.CancelGrace.String(),
		"REPLICATOR_MAX_ATTEMPTS=" + strconv.Itoa(c.MaxAttempts),
	}
}

// FromEnv reads the configuration; names are required, limits have defaults.
func FromEnv() (Config, error) {
	c := Config{
		Table: os.Getenv("REPLICATOR_TABLE"), LaunchTemplate: os.Getenv("REPLICATOR_LAUNCH_TEMPLATE"),
		LogGroup: os.Getenv("REPLICATOR_LOG_GROUP"), SecretPrefix: os.Getenv("REPLICATOR_SECRET_PREFIX"),
		KMSKeyID: os.Getenv("REPLICATOR_KMS_KEY_ID"),
	}
	if c.SecretPrefix == "" {
		c.SecretPrefix = "replicator/jobs/"
	}
	for name, v := range map[string]string{"REPLICATOR_TABLE": c.Table, "REPLICATOR_LOG_GROUP": c.LogGroup} {
		if v == "" {
			return c, fmt.Errorf("%s is not set", name)
		}
	}
	var err error
	ints := []struct {
		env string
		dst *int
		def int
	}{
		{"REPLICATOR_MAX_ACTIVE_JOBS", &c.MaxActiveJobs, 5},
		{"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES", &c.DefaultTimeLimitMinutes, 24 * 60},
		{"REPLICATOR_MAX_ATTEMPTS", &c.MaxAttempts, 3},
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
		{"REPLICATOR_HEARTBEAT_TIMEOUT", &c.HeartbeatTimeout, 3 * time.Minute},
		{"REPLICATOR_PROVISION_TIMEOUT", &c.ProvisionTimeout, 10 * time.Minute},
		{"REPLICATOR_CANCEL_GRACE", &c.CancelGrace, 2 * time.Minute},
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

// Clients are the AWS APIs the platform uses.
type Clients struct {
	AWS            aws.Config
	DynamoDB       *dynamodb.Client
	EC2            *ec2.Client
	SecretsManager *secretsmanager.Client
	Logs           *cloudwatchlogs.Client
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
	}, nil
}
