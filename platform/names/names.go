// Package names holds the fixed names and tags of a stack's resources, shared
// by the Pulumi program, the Lambda, the worker, the emulated platform and
// teardown. It imports nothing heavy: the Lambda and the worker link it.
package names

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
