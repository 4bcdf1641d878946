package platform

import "encoding/json"

// Policy is an IAM policy document.
type Policy struct {
	Version   string      `json:"Version"`
	Statement []Statement `json:"Statement"`
}

// Statement of a policy.
type Statement struct {
	Sid       string                       `json:"Sid"`
	Effect    string                       `json:"Effect"`
	Action    []string                     `json:"Action"`
	Resource  []string                     `json:"Resource"`
	Condition map[string]map[string]string `json:"Condition,omitempty"`
}

// JSON renders the document.
func (p Policy) JSON() string {
	b, _ := json.Marshal(p)
	return string(b)
}

// ARNs the policies are scoped to.
type ARNs struct {
	Partition, Region, Account string
	Table                      string // table ARN
	SecretsKey                 string // KMS key ARN
	JobsLogGroup               string // log group ARN
	LambdaLogGroup             string
	Bucket                     string // artifacts bucket ARN
	WorkerRole                 string
	LaunchTemplate             string
	SecretPrefix               string // e.g. replicator/prod/jobs/
}

func (a ARNs) secrets() string {
	return "arn:" + a.Partition + ":secretsmanager:" + a.Region + ":" + a.Account + ":secret:" + a.SecretPrefix + "*"
}

func (a ARNs) ec2(kind string) string {
	return "arn:" + a.Partition + ":ec2:" + a.Region + ":" + a.Account + ":" + kind + "/*"
}

// workerTag limits EC2 actions to instances tagged as replicator workers.
var workerTag = map[string]map[string]string{"StringEquals": {"ec2:ResourceTag/replicator:role": "worker"}}

// LambdaPolicy is the API's and the reaper's: the job table, job secrets (create
// and delete, never read), launching and terminating workers, reading job logs.
func LambdaPolicy(a ARNs) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "Jobs", Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:TransactWriteItems"},
			Resource: []string{a.Table, a.Table + "/index/*"}},
		{Sid: "JobSecrets", Effect: "Allow", Action: []string{"secretsmanager:CreateSecret", "secretsmanager:TagResource", "secretsmanager:DeleteSecret"},
			Resource: []string{a.secrets()}},
		{Sid: "JobSecretsKey", Effect: "Allow", Action: []string{"kms:GenerateDataKey", "kms:Decrypt"}, Resource: []string{a.SecretsKey}},
		{Sid: "LaunchWorkers", Effect: "Allow", Action: []string{"ec2:RunInstances"}, Resource: []string{
			a.LaunchTemplate, a.ec2("instance"), a.ec2("volume"), a.ec2("network-interface"), a.ec2("subnet"), a.ec2("security-group"),
			"arn:" + a.Partition + ":ec2:" + a.Region + "::image/*"}},
		{Sid: "TagWorkersAtLaunch", Effect: "Allow", Action: []string{"ec2:CreateTags"}, Resource: []string{a.ec2("instance"), a.ec2("volume")},
			Condition: map[string]map[string]string{"StringEquals": {"ec2:CreateAction": "RunInstances"}}},
		{Sid: "TerminateWorkers", Effect: "Allow", Action: []string{"ec2:TerminateInstances"}, Resource: []string{a.ec2("instance")}, Condition: workerTag},
		// DescribeInstances has no resource-level permissions: "*" is the only form.
		{Sid: "FindWorkers", Effect: "Allow", Action: []string{"ec2:DescribeInstances"}, Resource: []string{"*"}},
		{Sid: "PassWorkerRole", Effect: "Allow", Action: []string{"iam:PassRole"}, Resource: []string{a.WorkerRole}},
		{Sid: "ReadJobLogs", Effect: "Allow", Action: []string{"logs:GetLogEvents"}, Resource: []string{a.JobsLogGroup + ":log-stream:*"}},
		{Sid: "OwnLogs", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{a.LambdaLogGroup + ":*"}},
	}}
}

// WorkerPolicy is a worker's: its job's items and checkpoints, its job's secret,
// its log stream, the worker binary, and terminating itself.
func WorkerPolicy(a ARNs) Policy {
	return Policy{Version: "2012-10-17", Statement: []Statement{
		{Sid: "JobAndCheckpoints", Effect: "Allow", Action: []string{"dynamodb:GetItem", "dynamodb:PutItem", "dynamodb:UpdateItem", "dynamodb:Query", "dynamodb:BatchWriteItem", "dynamodb:TransactWriteItems"},
			Resource: []string{a.Table}},
		{Sid: "JobSecret", Effect: "Allow", Action: []string{"secretsmanager:GetSecretValue", "secretsmanager:DeleteSecret"}, Resource: []string{a.secrets()}},
		{Sid: "JobSecretKey", Effect: "Allow", Action: []string{"kms:Decrypt"}, Resource: []string{a.SecretsKey}},
		{Sid: "JobLog", Effect: "Allow", Action: []string{"logs:CreateLogStream", "logs:PutLogEvents"}, Resource: []string{a.JobsLogGroup + ":log-stream:*"}},
		{Sid: "WorkerBinary", Effect: "Allow", Action: []string{"s3:GetObject"}, Resource: []string{a.Bucket + "/worker/*"}},
		{Sid: "TerminateSelf", Effect: "Allow", Action: []string{"ec2:TerminateInstances"}, Resource: []string{a.ec2("instance")}, Condition: workerTag},
	}}
}
