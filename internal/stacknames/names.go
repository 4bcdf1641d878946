// Package stacknames holds the fixed names and tags of a stack's resources, shared
// by the Pulumi program, the Lambda, the worker, the emulated platform and
// teardown. It imports nothing heavy: the Lambda and the worker link it.
package stacknames

import (
	"fmt"
	"strings"
)

// Tags every resource of a stack carries. Lookups, the reaper, teardown and the
// IAM conditions all filter on TagStack, so stacks side by side never touch
// each other's resources.
const (
	TagStack = "replicator:stack"
	TagRole  = "replicator:role"
	TagJob   = "replicator:job-id"
	// TagInstance on a job's secret names the worker instance (its ARN) that
	// may read it; the worker's IAM policy compares it with the caller.
	TagInstance = "replicator:instance"

	RoleWorker      = "worker"
	RoleWorkerImage = "worker-image"
	// RoleWorkerSnapshot marks the snapshot of a worker image being
	// removed, so that one whose deletion failed is found again.
	RoleWorkerSnapshot = "worker-image-snapshot"
)

// Names are the physical names of a stack's resources that are fixed by the
// stack's name. Fixed names make an interrupted setup recoverable (a resource
// created but not recorded can be found and imported) and let the emulated
// platform, teardown and the policies agree with the program.
type Names struct {
	Stack string
}

// Of returns the names of stack.
func Of(stack string) Names { return Names{Stack: stack} }

// Prefix starts every name of the stack.
func (n Names) Prefix() string { return "replicator-" + n.Stack }

// Table is the DynamoDB table of jobs and checkpoints.
func (n Names) Table() string { return n.Prefix() + "-jobs" }

// JobsLogGroup holds one log stream per job.
func (n Names) JobsLogGroup() string { return "/replicator/" + n.Stack + "/jobs" }

// Function is the Lambda of the API and the reaper.
func (n Names) Function() string { return n.Prefix() + "-api" }

// FunctionLogGroup is where the Lambda runtime writes.
func (n Names) FunctionLogGroup() string { return "/aws/lambda/" + n.Function() }

// SecretPrefix is where job secrets live.
func (n Names) SecretPrefix() string { return "replicator/" + n.Stack + "/jobs/" }

// SecretsKeyAlias is the KMS key of job secrets.
func (n Names) SecretsKeyAlias() string { return "alias/" + n.Prefix() + "-secrets" }

// LaunchTemplate is the workers' launch template.
func (n Names) LaunchTemplate() string { return n.Prefix() + "-worker" }

// Image is the name of the Image Builder component, recipe, infrastructure
// and distribution configurations of the worker image.
func (n Names) Image() string { return n.Prefix() + "-worker" }

// ImageLogGroup is where Image Builder logs the builds of the recipe (it
// creates /aws/imagebuilder/RECIPE-NAME itself when missing; the stack owns it
// so that teardown removes it).
func (n Names) ImageLogGroup() string { return "/aws/imagebuilder/" + n.Image() }

// Topic is the SNS topic job events are sent to (topic names: at most 256
// letters, digits, hyphens and underscores).
func (n Names) Topic() string { return n.Prefix() + "-events" }

// NotifyRule is the EventBridge rule that sends the stack's job events to
// its topic and webhooks (rule names: at most 64 of [.-_A-Za-z0-9]).
func (n Names) NotifyRule() string { return n.Prefix() + "-notify" }

// Webhook is the EventBridge connection and API destination of the i-th
// webhook (both: at most 64 of [.-_A-Za-z0-9]).
func (n Names) Webhook(i int) string { return fmt.Sprintf("%s-webhook-%d", n.Prefix(), i+1) }

// Dashboard is the stack's CloudWatch dashboard (at most 255 of
// [-_A-Za-z0-9]).
func (n Names) Dashboard() string { return n.Prefix() }

// DashboardURL is the console page of the stack's dashboard in region (the
// console's domain follows the partition: China and GovCloud have theirs).
func (n Names) DashboardURL(region string) string {
	host := region + ".console.aws.amazon.com"
	switch {
	case strings.HasPrefix(region, "cn-"):
		host = "console.amazonaws.cn"
	case strings.HasPrefix(region, "us-gov-"):
		host = "console.amazonaws-us-gov.com"
	}
	return "https://" + host + "/cloudwatch/home?region=" + region + "#dashboards/dashboard/" + n.Dashboard()
}

// MetricsNamespace is where workers publish their metrics, the same for
// every stack (the Stack dimension tells them apart); the workers' IAM
// policy allows no other (cloudwatch:namespace).
const MetricsNamespace = "Replicator"

// API is the HTTP API's name.
func (n Names) API() string { return n.Prefix() }

// ArtifactsBucket is the bucket of the worker binaries. Bucket names are
// global: the account and region make it unique, as CDK's bootstrap bucket.
func (n Names) ArtifactsBucket(account, region string) string {
	return strings.ToLower(n.Prefix() + "-" + account + "-" + region)
}

// MaxBucketName is S3's limit on bucket names.
const MaxBucketName = 63

// CheckBucket fails when the stack and region make too long a bucket name.
func (n Names) CheckBucket(account, region string) error {
	if b := n.ArtifactsBucket(account, region); len(b) > MaxBucketName {
		return fmt.Errorf("stack name %q is too long for region %s: the artifacts bucket %s would be over S3's %d characters", n.Stack, region, b, MaxBucketName)
	}
	return nil
}

// VolumeGiB is the size of a worker's root volume, in the image and at launch.
const VolumeGiB = 20
