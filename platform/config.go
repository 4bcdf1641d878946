// Package platform is the replicator job platform as a Pulumi program: a plain Go
// function of a Config that declares everything `replicator setup` deploys into
// the user's AWS account (DynamoDB, the Lambda API and reaper behind API Gateway,
// the worker launch template and its AMI, KMS, S3, IAM). The CLI runs it through
// the Automation API; Pulumi.yaml runs the same program with the pulumi CLI.
package platform

import (
	"fmt"
	"net/url"
	"regexp"
	"slices"
	"time"

	"github.com/replicatorhq/replicator/internal/stacknames"

	"github.com/replicatorhq/replicator/internal/remote"
)

// Config is what the program is a function of.
type Config struct {
	// Stack names the deployment; several can live side by side.
	Stack string
	// Version of the CLI deploying: the worker binary of this exact version goes
	// to the artifacts bucket.
	Version string
	// LambdaZip is the Lambda's code (a zip holding "bootstrap", linux/arm64);
	// WorkerBinary the worker (linux/arm64).
	LambdaZip, WorkerBinary string
	// Networking for workers that must reach databases in private networks:
	// every subnet is used (a launch moves on to the next one when a zone has
	// no capacity). VPCID is the subnets' VPC ("" for the region's default
	// VPC); without SecurityGroupIDs the stack creates a worker security group
	// in it.
	VPCID            string
	SubnetIDs        []string
	SecurityGroupIDs []string
	// BuildSubnetID is where Image Builder builds the AMI (setup picks a
	// default subnet of the default VPC when none is given): it needs a
	// route to the package repositories and to SSM, which the workers'
	// subnets may not have. BuildVPCID is its VPC.
	BuildSubnetID, BuildVPCID string
	// ParentImageVersion is the version of Amazon Linux 2023 (arm64) the
	// worker image is built on, as setup resolved it ("" for the newest at
	// build time): in the recipe's version, so that a new release of it
	// rebuilds the image (security patches, new PostgreSQL client tools).
	ParentImageVersion string
	// Limits and defaults of jobs.
	DefaultInstanceType     string
	MaxConcurrentJobs       int
	DefaultTimeLimitMinutes int
	// MaxJobsPerOwner: jobs one caller may have active at once, so that one
	// user cannot hold every slot.
	MaxJobsPerOwner int
	// MaxInstanceSize is the largest worker size a job may ask for;
	// MaxTimeLimitMinutes the longest time limit.
	MaxInstanceSize     string
	MaxTimeLimitMinutes int
	// EgressPorts are the database ports the workers' security group lets
	// them reach (besides 443 for AWS's APIs), when the stack creates it;
	// EgressAllPorts opens every port instead.
	EgressPorts    []int
	EgressAllPorts bool
	// LogRetentionDays of the Lambda's and the jobs' logs.
	LogRetentionDays int
	// NotifyEmails subscribe to the stack's topic of job events (each
	// address confirms by email); NotifyWebhooks are HTTPS endpoints (Slack
	// incoming webhooks or any other) that receive each event as JSON.
	NotifyEmails, NotifyWebhooks []string
	// Throttling of the API's stage: requests per second and the burst
	// above it, so that a loop in a script cannot flood the Lambda.
	ThrottleRate  float64
	ThrottleBurst int
	// SyncLagAlarmSeconds: the stack's alarm goes off when a monitored sync
	// job's target is this far behind for 3 minutes.
	SyncLagAlarmSeconds int
}

// Default API throttling: far above what a person or a script watching
// jobs needs (a watch polls every 2 s), far below what would run up the
// Lambda's bill.
const (
	DefaultThrottleRate  = 10
	DefaultThrottleBurst = 20
)

var stackRE = regexp.MustCompile(`^[a-z][a-z0-9-]{0,23}$`)

// Defaults fills in what is unset.
func (c *Config) Defaults() {
	if c.Stack == "" {
		c.Stack = "replicator"
	}
	if c.DefaultInstanceType == "" {
		c.DefaultInstanceType = remote.DefaultInstanceType
	}
	if c.MaxConcurrentJobs == 0 {
		c.MaxConcurrentJobs = 5
	}
	if c.DefaultTimeLimitMinutes == 0 {
		c.DefaultTimeLimitMinutes = 24 * 60
	}
	if c.MaxJobsPerOwner == 0 {
		c.MaxJobsPerOwner = min(2, c.MaxConcurrentJobs)
	}
	if c.MaxInstanceSize == "" {
		c.MaxInstanceSize = remote.DefaultMaxInstanceSize
	}
	if c.MaxTimeLimitMinutes == 0 {
		c.MaxTimeLimitMinutes = max(remote.MaxTimeLimitMinutes, c.DefaultTimeLimitMinutes)
	}
	if len(c.EgressPorts) == 0 && !c.EgressAllPorts {
		c.EgressPorts = DefaultEgressPorts
	}
	if c.LogRetentionDays == 0 {
		c.LogRetentionDays = 30
	}
	if c.ThrottleRate == 0 {
		c.ThrottleRate = DefaultThrottleRate
	}
	if c.ThrottleBurst == 0 {
		c.ThrottleBurst = DefaultThrottleBurst
	}
	if c.SyncLagAlarmSeconds == 0 {
		c.SyncLagAlarmSeconds = 15 * 60
	}
}

// NotifyTargets counts the stack's notification targets.
func (c *Config) NotifyTargets() int { return len(c.NotifyEmails) + len(c.NotifyWebhooks) }

// DefaultEgressPorts are the ports workers may reach databases on unless
// setup says otherwise: PostgreSQL's, PgBouncer's and Supabase's pooler's.
var DefaultEgressPorts = []int{5432, 6432, 6543}

// HTTPSPort is open to the workers whatever the egress ports: they reach
// DynamoDB, Secrets Manager, CloudWatch Logs and S3 over HTTPS. (Security
// groups do not filter instance metadata or the Amazon DNS server.)
const HTTPSPort = 443

// Validate checks the config before anything is deployed.
func (c *Config) Validate() error {
	if err := c.ValidateOptions(); err != nil {
		return err
	}
	if (len(c.SubnetIDs) > 0 || len(c.SecurityGroupIDs) > 0) && c.VPCID == "" {
		return fmt.Errorf("subnets and security groups need their VPC id")
	}
	if c.BuildSubnetID == "" || c.BuildVPCID == "" {
		return fmt.Errorf("the AMI build needs a subnet and its VPC id (setup picks the default VPC's)")
	}
	if c.LambdaZip == "" || c.WorkerBinary == "" || c.Version == "" {
		return fmt.Errorf("the Lambda and worker builds are missing")
	}
	return nil
}

// ValidateOptions checks what the user chose (the stack's name, the
// instance type, the limits), before anything else: the flags of setup.
func (c *Config) ValidateOptions() error {
	if !stackRE.MatchString(c.Stack) {
		return fmt.Errorf("stack name %q: use lowercase letters, digits and dashes, at most 24 characters", c.Stack)
	}
	if c.Stack == "state" {
		// replicator-state-ACCOUNT-REGION is the state bucket's name.
		return fmt.Errorf("stack name %q is reserved: choose another", c.Stack)
	}
	if err := remote.CheckSize(c.MaxInstanceSize); err != nil {
		return fmt.Errorf("--max-instance-size: %w", err)
	}
	if err := remote.CheckInstanceType(c.DefaultInstanceType, c.MaxInstanceSize); err != nil {
		return fmt.Errorf("--instance-type: %w", err)
	}
	if c.MaxConcurrentJobs < 1 || c.DefaultTimeLimitMinutes < 1 || c.MaxJobsPerOwner < 1 {
		return fmt.Errorf("--max-jobs, --max-jobs-per-owner and --time-limit must be positive")
	}
	if c.MaxTimeLimitMinutes > remote.MaxTimeLimitMinutes {
		return fmt.Errorf("--max-time-limit is at most %s", time.Duration(remote.MaxTimeLimitMinutes)*time.Minute)
	}
	if c.DefaultTimeLimitMinutes > c.MaxTimeLimitMinutes {
		return fmt.Errorf("--time-limit (%s) is over --max-time-limit (%s)", time.Duration(c.DefaultTimeLimitMinutes)*time.Minute, time.Duration(c.MaxTimeLimitMinutes)*time.Minute)
	}
	if len(c.SecurityGroupIDs) > 0 && (c.EgressAllPorts || len(c.EgressPorts) > 0 && !slices.Equal(c.EgressPorts, DefaultEgressPorts)) {
		return fmt.Errorf("--egress-ports applies to the security group setup creates; with --security-group-ids, your groups decide what workers reach")
	}
	for _, e := range c.NotifyEmails {
		if !emailRE.MatchString(e) {
			return fmt.Errorf("--notify-email %q is not an email address", e)
		}
	}
	for _, w := range c.NotifyWebhooks {
		// An API destination's endpoint must be HTTPS.
		if u, err := url.Parse(w); err != nil || u.Scheme != "https" || u.Host == "" {
			return fmt.Errorf("--notify-webhook %q: give an https:// URL (EventBridge API destinations call only HTTPS endpoints)", redactURL(w))
		}
	}
	if len(c.NotifyWebhooks) > MaxWebhooks {
		return fmt.Errorf("--notify-webhook: at most %d webhooks (an EventBridge rule has at most 5 targets, one is the topic)", MaxWebhooks)
	}
	if c.ThrottleRate < 0 || c.ThrottleBurst < 0 {
		return fmt.Errorf("--api-rate-limit and --api-burst-limit must be positive")
	}
	for _, p := range c.EgressPorts {
		if p == HTTPSPort {
			return fmt.Errorf("--egress-ports: %d is open to the workers for AWS's APIs and is not a database port", p)
		}
	}
	return nil
}

// MaxWebhooks: an EventBridge rule has at most 5 targets, and the topic is
// one of them.
const MaxWebhooks = 4

var emailRE = regexp.MustCompile(`^[^@\s]+@[^@\s]+\.[^@\s]+$`)

// redactURL keeps a webhook's scheme and host: its path is its secret (a
// Slack webhook's token).
func redactURL(raw string) string {
	u, err := url.Parse(raw)
	if err != nil || u.Host == "" {
		return "(unreadable URL)"
	}
	return u.Scheme + "://" + u.Host + "/..."
}

// Limits are the bounds the API holds submissions to.
func (c *Config) Limits() remote.Limits {
	lim := remote.Limits{MaxInstanceSize: c.MaxInstanceSize, MaxTimeLimitMinutes: c.MaxTimeLimitMinutes}
	if len(c.SecurityGroupIDs) == 0 && !c.EgressAllPorts {
		lim.EgressPorts = c.EgressPorts
	}
	return lim
}

// Outputs of the stack, by name.
const (
	OutAPIURL         = "apiUrl"
	OutRegion         = "region"
	OutTable          = "table"
	OutLogGroup       = "jobsLogGroup"
	OutBucket         = "artifactsBucket"
	OutAMI            = "amiId"
	OutVersion        = "version"
	OutLaunchTemplate = "launchTemplate"
	OutSecretsKey     = "secretsKeyArn"
	OutTopic          = "eventsTopicArn"
	OutDashboard      = "dashboard"
)

// Names are the stack's fixed resource stacknames.
func (c *Config) Names() stacknames.Names { return stacknames.Of(c.Stack) }

// WorkerKey is the artifacts bucket key of this version's worker.
func (c *Config) WorkerKey() string { return "worker/" + c.Version + "/worker" }
