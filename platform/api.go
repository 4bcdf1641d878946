package platform

import (
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/apigatewayv2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lambda"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
)

type jobAPI struct {
	url pulumi.StringOutput
}

// api declares the Lambda (the job API and the reaper), its HTTP API with
// every route AWS_IAM-authorised, the reaper's schedule, and both roles'
// policies.
func (s *stack) api(d *dataStores, w *workerFleet) (*jobAPI, error) {
	fnRole, fnPolicy, err := s.roles(d, w)
	if err != nil {
		return nil, err
	}
	fn, err := s.function(d, w, fnRole, fnPolicy)
	if err != nil {
		return nil, err
	}
	url, err := s.gateway(fn)
	if err != nil {
		return nil, err
	}
	if err := s.reaperSchedule(fn); err != nil {
		return nil, err
	}
	return &jobAPI{url: url}, nil
}

// roles attaches the worker's policy and makes the Lambda's role and policy
// (iam.go), scoped to this stack's resources.
func (s *stack) roles(d *dataStores, w *workerFleet) (*iam.Role, *iam.RolePolicy, error) {
	p, ctx := s.names.Prefix(), s.ctx
	arns := pulumi.All(d.table.Arn, d.key.Arn, d.jobsLogs.Arn, d.fnLogs.Arn, d.bucket.Arn, w.role.Arn, w.launchTemplate.Arn)
	policy := func(build func(ARNs) Policy) pulumi.StringOutput {
		return arns.ApplyT(func(v []any) string {
			return build(ARNs{Partition: s.at.Partition, Region: s.at.Region, Account: s.at.Account, Stack: s.cfg.Stack,
				Table: v[0].(string), SecretsKey: v[1].(string), JobsLogGroup: strings.TrimSuffix(v[2].(string), ":*"),
				LambdaLogGroup: strings.TrimSuffix(v[3].(string), ":*"), Bucket: v[4].(string), WorkerRole: v[5].(string),
				LaunchTemplate: v[6].(string), SecretPrefix: s.names.SecretPrefix(),
				InstanceTypes: remote.InstanceTypePatterns(s.cfg.MaxInstanceSize)}).JSON()
		}).(pulumi.StringOutput)
	}
	if _, err := iam.NewRolePolicy(ctx, p+"-worker", &iam.RolePolicyArgs{Role: w.role.Name, Policy: policy(WorkerPolicy)}); err != nil {
		return nil, nil, err
	}
	fnRole, err := iam.NewRole(ctx, p+"-api", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("lambda.amazonaws.com")), Tags: s.tags})
	if err != nil {
		return nil, nil, err
	}
	fnPolicy, err := iam.NewRolePolicy(ctx, p+"-api", &iam.RolePolicyArgs{Role: fnRole.Name, Policy: policy(LambdaPolicy)})
	return fnRole, fnPolicy, err
}

// function is the Lambda, told the stack's names and limits.
func (s *stack) function(d *dataStores, w *workerFleet, role *iam.Role, policy *iam.RolePolicy) (*lambda.Function, error) {
	return lambda.NewFunction(s.ctx, s.names.Function(), &lambda.FunctionArgs{
		Name: pulumi.String(s.names.Function()), Runtime: pulumi.String("provided.al2023"), Architectures: pulumi.StringArray{pulumi.String("arm64")},
		Handler: pulumi.String("bootstrap"), Code: pulumi.NewFileArchive(s.cfg.LambdaZip), Role: role.Arn,
		MemorySize: pulumi.Int(256), Timeout: pulumi.Int(30),
		Environment: &lambda.FunctionEnvironmentArgs{Variables: pulumi.StringMap{
			"REPLICATOR_STACK": pulumi.String(s.cfg.Stack), "REPLICATOR_VERSION": pulumi.String(s.cfg.Version),
			"REPLICATOR_PARTITION": pulumi.String(s.at.Partition), "REPLICATOR_ACCOUNT_ID": pulumi.String(s.at.Account),
			"REPLICATOR_TABLE": d.table.Name, "REPLICATOR_LOG_GROUP": d.jobsLogs.Name,
			"REPLICATOR_SECRET_PREFIX": pulumi.String(s.names.SecretPrefix()), "REPLICATOR_KMS_KEY_ID": d.key.Arn,
			"REPLICATOR_LAUNCH_TEMPLATE": w.launchTemplate.Name,
			// The version this stack deployed: launches never use an older one.
			"REPLICATOR_LAUNCH_TEMPLATE_VERSION":    w.launchTemplate.LatestVersion.ApplyT(strconv.Itoa).(pulumi.StringOutput),
			"REPLICATOR_SUBNET_IDS":                 pulumi.String(strings.Join(s.cfg.SubnetIDs, ",")),
			"REPLICATOR_DEFAULT_INSTANCE_TYPE":      pulumi.String(s.cfg.DefaultInstanceType),
			"REPLICATOR_MAX_ACTIVE_JOBS":            pulumi.String(strconv.Itoa(s.cfg.MaxConcurrentJobs)),
			"REPLICATOR_MAX_JOBS_PER_OWNER":         pulumi.String(strconv.Itoa(s.cfg.MaxJobsPerOwner)),
			"REPLICATOR_MAX_INSTANCE_SIZE":          pulumi.String(s.cfg.MaxInstanceSize),
			"REPLICATOR_MAX_TIME_LIMIT_MINUTES":     pulumi.String(strconv.Itoa(s.cfg.MaxTimeLimitMinutes)),
			"REPLICATOR_EGRESS_PORTS":               pulumi.String(awsenv.JoinPorts(s.cfg.Limits().EgressPorts)),
			"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES": pulumi.String(strconv.Itoa(s.cfg.DefaultTimeLimitMinutes)),
			"REPLICATOR_ARTIFACTS_BUCKET":           d.bucket.Bucket, "REPLICATOR_WORKER_KEY": d.workerObject.Key,
			"REPLICATOR_NOTIFY_TARGETS": pulumi.String(strconv.Itoa(s.cfg.NotifyTargets())),
		}},
		Tags: s.tags,
	}, pulumi.DependsOn([]pulumi.Resource{d.fnLogs, policy}))
}

// gateway is the HTTP API in front of the Lambda, every route AWS_IAM.
func (s *stack) gateway(fn *lambda.Function) (pulumi.StringOutput, error) {
	p, ctx := s.names.Prefix(), s.ctx
	api, err := apigatewayv2.NewApi(ctx, p, &apigatewayv2.ApiArgs{Name: pulumi.String(s.names.API()), ProtocolType: pulumi.String("HTTP"), Tags: s.tags})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	integration, err := apigatewayv2.NewIntegration(ctx, p, &apigatewayv2.IntegrationArgs{ApiId: api.ID(), IntegrationType: pulumi.String("AWS_PROXY"),
		IntegrationUri: fn.InvokeArn, PayloadFormatVersion: pulumi.String("2.0"), IntegrationMethod: pulumi.String("POST")})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	for _, route := range Routes {
		name := p + "-" + strings.NewReplacer(" ", "-", "/", "-", "{", "", "}", "").Replace(strings.ToLower(route))
		if _, err := apigatewayv2.NewRoute(ctx, name, &apigatewayv2.RouteArgs{ApiId: api.ID(), RouteKey: pulumi.String(route),
			AuthorizationType: pulumi.String("AWS_IAM"), Target: pulumi.Sprintf("integrations/%s", integration.ID())}); err != nil {
			return pulumi.StringOutput{}, err
		}
	}
	// Throttling of every route: a caller over it gets 429 Too Many
	// Requests, which the CLI explains.
	stage, err := apigatewayv2.NewStage(ctx, p, &apigatewayv2.StageArgs{ApiId: api.ID(), Name: pulumi.String("$default"), AutoDeploy: pulumi.Bool(true),
		DefaultRouteSettings: &apigatewayv2.StageDefaultRouteSettingsArgs{ThrottlingRateLimit: pulumi.Float64(s.cfg.ThrottleRate),
			ThrottlingBurstLimit: pulumi.Int(s.cfg.ThrottleBurst)},
		Tags: s.tags})
	if err != nil {
		return pulumi.StringOutput{}, err
	}
	if _, err := lambda.NewPermission(ctx, p+"-api", &lambda.PermissionArgs{Function: fn.Name, Action: pulumi.String("lambda:InvokeFunction"),
		Principal: pulumi.String("apigateway.amazonaws.com"), SourceArn: pulumi.Sprintf("%s/*/*", api.ExecutionArn)}); err != nil {
		return pulumi.StringOutput{}, err
	}
	return stage.InvokeUrl, nil
}

// reaperSchedule runs the Lambda's reaper every minute.
func (s *stack) reaperSchedule(fn *lambda.Function) error {
	p, ctx := s.names.Prefix(), s.ctx
	rule, err := cloudwatch.NewEventRule(ctx, p+"-reaper", &cloudwatch.EventRuleArgs{ScheduleExpression: pulumi.String("rate(1 minute)"),
		Description: pulumi.String("replicator reaper: relaunch silent workers, enforce time limits, terminate orphans"), Tags: s.tags})
	if err != nil {
		return err
	}
	if _, err := cloudwatch.NewEventTarget(ctx, p+"-reaper", &cloudwatch.EventTargetArgs{Rule: rule.Name, Arn: fn.Arn}); err != nil {
		return err
	}
	_, err = lambda.NewPermission(ctx, p+"-reaper", &lambda.PermissionArgs{Function: fn.Name, Action: pulumi.String("lambda:InvokeFunction"),
		Principal: pulumi.String("events.amazonaws.com"), SourceArn: rule.Arn})
	return err
}
