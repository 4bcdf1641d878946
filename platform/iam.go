package platform

import (
	"encoding/json"

	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement of a policy. A condition value is a string or a list of strings.
type Statement struct {
	Sid    string `json:"Sid"`
	Effect string `json:"Effect"`
	// Principal: in a resource policy only.
	Principal map[string]any            `json:"Principal,omitempty"`
	Action    []string                  `json:"Action"`
	Resource  []string                  `json:"Resource"`
	Condition map[string]map[string]any `json:"Condition,omitempty"`
}

// JSON renders the document.
func (p Policy) JSON() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// ARNs the policies are scoped to.
type ARNs struct {
	Partition, Region, Account string
	Stack                      string
	Table                      string // table ARN
	SecretsKey                 string // KMS key ARN
	JobsLogGroup               string // log group ARN
	LambdaLogGroup             string
	Bucket                     string // artifacts bucket ARN
	WorkerRole                 string
	LaunchTemplate             string
	SecretPrefix               string // e.g. replicator/prod/jobs/
	// InstanceTypes workers may be launched as (IAM StringLike patterns).
	InstanceTypes []string
}

// defaultBus is the account's default event bus, where job events go.
func (a ARNs) defaultBus() string {
	return "arn:" + a.Partition + ":events:" + a.Region + ":" + a.Account + ":event-bus/default"
}

// jobEvents lets a component put job events on the default bus, and only
// with the source "replicator" (events:source, a condition key of
// PutEvents): it cannot pose as another service's events.
func (a ARNs) jobEvents() Statement {
	return Statement{Sid: "JobEvents", Effect: "Allow", Action: []string{"events:PutEvents"}, Resource: []string{a.defaultBus()},
		Condition: map[string]map[string]any{"StringEquals": {"events:source": events.Source}}}
}

// jobMetrics lets a component publish the platform's metrics.
// PutMetricData has no resource-level permissions ("*" is the only form);
// the cloudwatch:namespace condition keeps it to the Replicator namespace.
func (a ARNs) jobMetrics() Statement {
	return Statement{Sid: "JobMetrics", Effect: "Allow", Action: []string{"cloudwatch:PutMetricData"}, Resource: []string{"*"},
		Condition: map[string]map[string]any{"StringEquals": {"cloudwatch:namespace": stacknames.MetricsNamespace}}}
}

func (a ARNs) secrets() string {
	return "arn:" + a.Partition + ":secretsmanager:" + a.Region + ":" + a.Account + ":secret:" + a.SecretPrefix + "*"
}

func (a ARNs) ec2(kind string) string {
	return "arn:" + a.Partition + ":ec2:" + a.Region + ":" + a.Account + ":" + kind + "/*"
}

// stackWorker matches the stack's worker instances by their tags: another
// stack's workers, or any other instance, are out of reach.
func (a ARNs) stackWorker() map[string]map[string]any {
	return map[string]map[string]any{"StringEquals": {"ec2:ResourceTag/" + stacknames.TagStack: a.Stack, "ec2:ResourceTag/" + stacknames.TagRole: stacknames.RoleWorker}}
}

// LambdaPolicy is the API's and the reaper's: the job table; job secrets
// (create, tag with their worker, delete; never read); launching workers only
// from the stack's launch template and only with the stack's worker tags;
// terminating only the stack's workers; reading job logs.
func LambdaPolicy(a ARNs) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{
		// Scan: the reaper's one-time migration of job owners (store.MigrateOwners).
		{Sid: "Jobs", Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:Scan"},
			Resource: []string{a.Table, a.Table + "/index/*"}},
		{Sid: "CreateJobSecrets", Effect: "Allow", Action: []string{"secretsmanager:CreateSecret"}, Resource: []string{a.secrets()},
			Condition: map[string]map[string]any{"StringEquals": {"aws:RequestTag/" + stacknames.TagStack: a.Stack}}},
		// CreateSecret with tags needs TagResource; after a launch, the secret
		// is tagged with the worker allowed to read it.
		{Sid: "TagJobSecrets", Effect: "Allow", Action: []string{"secretsmanager:TagResource"}, Resource: []string{a.secrets()},
			Condition: map[string]map[string]any{"ForAllValues:StringEquals": {"aws:TagKeys": []string{stacknames.TagStack, stacknames.TagJob, stacknames.TagInstance}}}},
		{Sid: "DeleteJobSecrets", Effect: "Allow", Action: []string{"secretsmanager:DeleteSecret"}, Resource: []string{a.secrets()}},
		{Sid: "JobSecretsKey", Effect: "Allow", Action: []string{"kms:GenerateDataKey", "kms:Decrypt"}, Resource: []string{a.SecretsKey}},
		// The instance and its volume: only from the stack's launch template,
		// only tagged as the stack's worker.
		// ec2:InstanceType is in the request context of the instance
		// resource only: conditioning the volume on it would deny every launch.
		{Sid: "LaunchWorkers", Effect: "Allow", Action: []string{"ec2:RunInstances"}, Resource: []string{a.ec2("instance")},
			Condition: map[string]map[string]any{
				"ArnEquals":    {"ec2:LaunchTemplate": a.LaunchTemplate},
				"StringEquals": {"aws:RequestTag/" + stacknames.TagStack: a.Stack, "aws:RequestTag/" + stacknames.TagRole: stacknames.RoleWorker},
				"StringLike":   {"ec2:InstanceType": a.InstanceTypes},
			}},
		{Sid: "LaunchWorkerVolumes", Effect: "Allow", Action: []string{"ec2:RunInstances"}, Resource: []string{a.ec2("volume")},
			Condition: map[string]map[string]any{
				"ArnEquals":    {"ec2:LaunchTemplate": a.LaunchTemplate},
				"StringEquals": {"aws:RequestTag/" + stacknames.TagStack: a.Stack, "aws:RequestTag/" + stacknames.TagRole: stacknames.RoleWorker},
			}},
		// What such a launch also touches (none of these can be tagged in it).
		{Sid: "LaunchWorkersWith", Effect: "Allow", Action: []string{"ec2:RunInstances"}, Resource: []string{
			a.LaunchTemplate, a.ec2("network-interface"), a.ec2("subnet"), a.ec2("security-group"),
			"arn:" + a.Partition + ":ec2:" + a.Region + "::image/*"}},
		{Sid: "TagWorkersAtLaunch", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{a.ec2("instance"), a.ec2("volume")},
			Condition: map[string]map[string]any{"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
		{Sid: "TerminateWorkers", Effect: "Allow", Action: []string{"ec2:TerminateInstances"}, Resource: []string{a.ec2("instance")}, Condition: a.stackWorker()},
		// DescribeInstances has no resource-level permissions: "*" is the only form.
		{Sid: "FindWorkers", Effect: "Allow", Action: []string{"ec2:DescribeInstances"}, Resource: []string{"*"}},
		{Sid: "PassWorkerRole", Effect: "Allow", Action: []string{"iam:PassRole"}, Resource: []string{a.WorkerRole}},
		{Sid: "ReadJobLogs", Effect: "Allow", Action: []string{"logs:GetLogEvents"}, Resource: []string{a.JobsLogGroup + ":log-stream:*"}},
		{Sid: "OwnLogs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{a.LambdaLogGroup + ":*"}},
		a.jobEvents(),
		a.jobMetrics(),
	}}
}

// WorkerPolicy is a worker's. It reads only the secret tagged with its own
// instance (ec2:SourceInstanceARN is the caller's instance, set by EC2 and not
// forgeable). It writes job items and the slot counter of the table, and never
// the platform's configuration; IAM cannot tie the items to its own job (no
// policy variable carries the job id), see the README. It has no EC2 rights:
// it ends its instance by powering off (the launch template's shutdown
// behaviour terminates it).
func WorkerPolicy(a ARNs) Policy {
	ownInstance := map[string]map[string]any{"StringEquals": {"secretsmanager:ResourceTag/" + stacknames.TagInstance: "${ec2:SourceInstanceARN}"}}
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "ReadJobs", Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:Query"}, Resource: []string{a.Table},
			Condition: map[string]map[string]any{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": []string{"JOB#*", "PLATFORM"}}}},
		{Sid: "WriteJobs", Effect: "Allow", Action: []string{"dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:BatchWriteItem"},
			Resource:  []string{a.Table},
			Condition: map[string]map[string]any{"ForAllValues:StringLike": {"dynamodb:LeadingKeys": []string{"JOB#*", "ACCOUNT", "OWNER#*"}}}},
		{Sid: "OwnJobSecret", Effect: "Allow", Action: []string{"secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"}, Resource: []string{a.secrets()},
			Condition: ownInstance},
		{Sid: "JobSecretKey", Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: []string{a.SecretsKey}},
		{Sid: "JobLog", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{a.JobsLogGroup + ":log-stream:*"}},
		{Sid: "WorkerBinary", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{a.Bucket + "/worker/*"}},
		a.jobEvents(),
		a.jobMetrics(),
	}}
}
