package platform

import (
	_ "embed"
	"fmt"
	"strconv"
	"strings"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/apigatewayv2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/lambda"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Routes of the job API; every one is authorised with AWS_IAM.
var Routes = []string{"POST /jobs", "GET /jobs", "GET /jobs/{id}", "GET /jobs/{id}/logs", "POST /jobs/{id}/cancel"}

// Program declares the platform.
func Program(cfg Config) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return err
		}
		p := cfg.Prefix()
		tags := pulumi.StringMap{"replicator:stack": pulumi.String(cfg.Stack), "managed-by": pulumi.String("replicator setup")}
		region, err := aws.GetRegion(ctx, nil)
		if err != nil {
			return err
		}
		caller, err := aws.GetCallerIdentity(ctx, nil)
		if err != nil {
			return err
		}
		partition, err := aws.GetPartition(ctx, nil)
		if err != nil {
			return err
		}

		// Job secrets are encrypted with a key of their own.
		key, err := kms.NewKey(ctx, p+"-secrets", &kms.KeyArgs{
			Description: pulumi.String("replicator " + cfg.Stack + ": job connection URLs"), EnableKeyRotation: pulumi.Bool(true),
			DeletionWindowInDays: pulumi.Int(7), Tags: tags,
		})
		if err != nil {
			return err
		}
		if _, err := kms.NewAlias(ctx, p+"-secrets", &kms.AliasArgs{Name: pulumi.String("alias/" + p + "-secrets"), TargetKeyId: key.KeyId}); err != nil {
			return err
		}

		// Artifacts: the worker binary of this CLI version.
		bucket, err := s3.NewBucketV2(ctx, p+"-artifacts", &s3.BucketV2Args{BucketPrefix: pulumi.String(p + "-artifacts-"), ForceDestroy: pulumi.Bool(true), Tags: tags})
		if err != nil {
			return err
		}
		if _, err := s3.NewBucketPublicAccessBlock(ctx, p+"-artifacts", &s3.BucketPublicAccessBlockArgs{Bucket: bucket.ID(),
			BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true), IgnorePublicAcls: pulumi.Bool(true), RestrictPublicBuckets: pulumi.Bool(true)}); err != nil {
			return err
		}
		if _, err := s3.NewBucketVersioningV2(ctx, p+"-artifacts", &s3.BucketVersioningV2Args{Bucket: bucket.ID(),
			VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")}}); err != nil {
			return err
		}
		if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(ctx, p+"-artifacts", &s3.BucketServerSideEncryptionConfigurationV2Args{Bucket: bucket.ID(),
			Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
				ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{SseAlgorithm: pulumi.String("aws:kms")},
				BucketKeyEnabled:                   pulumi.Bool(true),
			}}}); err != nil {
			return err
		}
		workerObject, err := s3.NewBucketObjectv2(ctx, p+"-worker", &s3.BucketObjectv2Args{Bucket: bucket.ID(), Key: pulumi.String(cfg.WorkerKey()),
			Source: pulumi.NewFileAsset(cfg.WorkerBinary), ServerSideEncryption: pulumi.String("aws:kms"), Tags: tags})
		if err != nil {
			return err
		}

		// Jobs, their checkpoints and the active-job counter, in one table.
		table, err := dynamodb.NewTable(ctx, p+"-jobs", &dynamodb.TableArgs{
			Name: pulumi.String(p + "-jobs"), BillingMode: pulumi.String("PAY_PER_REQUEST"), HashKey: pulumi.String("pk"), RangeKey: pulumi.String("sk"),
			Attributes: dynamodb.TableAttributeArray{
				attr("pk"), attr("sk"), attr("gsi1pk"), attr("gsi1sk"), attr("gsi2pk"), attr("gsi2sk"),
			},
			GlobalSecondaryIndexes: dynamodb.TableGlobalSecondaryIndexArray{
				&dynamodb.TableGlobalSecondaryIndexArgs{Name: pulumi.String("by-owner"), HashKey: pulumi.String("gsi1pk"), RangeKey: pulumi.String("gsi1sk"), ProjectionType: pulumi.String("ALL")},
				&dynamodb.TableGlobalSecondaryIndexArgs{Name: pulumi.String("active"), HashKey: pulumi.String("gsi2pk"), RangeKey: pulumi.String("gsi2sk"), ProjectionType: pulumi.String("ALL")},
			},
			Ttl:                  &dynamodb.TableTtlArgs{AttributeName: pulumi.String("expires_at"), Enabled: pulumi.Bool(true)},
			PointInTimeRecovery:  &dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(true)},
			ServerSideEncryption: &dynamodb.TableServerSideEncryptionArgs{Enabled: pulumi.Bool(true)},
			Tags:                 tags,
		})
		if err != nil {
			return err
		}

		jobsLogs, err := cloudwatch.NewLogGroup(ctx, p+"-jobs", &cloudwatch.LogGroupArgs{Name: pulumi.String("/replicator/" + cfg.Stack + "/jobs"),
			RetentionInDays: pulumi.Int(cfg.LogRetentionDays), Tags: tags})
		if err != nil {
			return err
		}
		fnName := p + "-api"
		lambdaLogs, err := cloudwatch.NewLogGroup(ctx, p+"-api", &cloudwatch.LogGroupArgs{Name: pulumi.String("/aws/lambda/" + fnName),
			RetentionInDays: pulumi.Int(cfg.LogRetentionDays), Tags: tags})
		if err != nil {
			return err
		}

		// The worker: its role, instance profile, image and launch template.
		workerRole, err := iam.NewRole(ctx, p+"-worker", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("ec2.amazonaws.com")), Tags: tags})
		if err != nil {
			return err
		}
		profile, err := iam.NewInstanceProfile(ctx, p+"-worker", &iam.InstanceProfileArgs{Role: workerRole.Name, Tags: tags})
		if err != nil {
			return err
		}
		image, err := workerImage(ctx, cfg, tags)
		if err != nil {
			return err
		}
		ltArgs := &ec2.LaunchTemplateArgs{
			NamePrefix:         pulumi.String(p + "-worker-"),
			ImageId:            image.amiID,
			InstanceType:       pulumi.String(cfg.DefaultInstanceType),
			IamInstanceProfile: &ec2.LaunchTemplateIamInstanceProfileArgs{Arn: profile.Arn},
			MetadataOptions: &ec2.LaunchTemplateMetadataOptionsArgs{HttpTokens: pulumi.String("required"), HttpEndpoint: pulumi.String("enabled"),
				HttpPutResponseHopLimit: pulumi.Int(1)},
			InstanceInitiatedShutdownBehavior: pulumi.String("terminate"),
			BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{&ec2.LaunchTemplateBlockDeviceMappingArgs{
				DeviceName: pulumi.String("/dev/xvda"),
				Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{Encrypted: pulumi.String("true"), VolumeType: pulumi.String("gp3"),
					VolumeSize: pulumi.Int(20), DeleteOnTermination: pulumi.String("true")},
			}},
			TagSpecifications: ec2.LaunchTemplateTagSpecificationArray{
				&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("instance"), Tags: tags},
				&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("volume"), Tags: tags},
			},
			Tags: tags,
		}
		if len(cfg.SubnetIDs) > 0 || len(cfg.SecurityGroupIDs) > 0 {
			ni := &ec2.LaunchTemplateNetworkInterfaceArgs{DeviceIndex: pulumi.Int(0), SecurityGroups: pulumi.ToStringArray(cfg.SecurityGroupIDs)}
			if len(cfg.SubnetIDs) > 0 {
				ni.SubnetId = pulumi.String(cfg.SubnetIDs[0])
			}
			ltArgs.NetworkInterfaces = ec2.LaunchTemplateNetworkInterfaceArray{ni}
		}
		launchTemplate, err := ec2.NewLaunchTemplate(ctx, p+"-worker", ltArgs)
		if err != nil {
			return err
		}

		arns := pulumi.All(table.Arn, key.Arn, jobsLogs.Arn, lambdaLogs.Arn, bucket.Arn, workerRole.Arn, launchTemplate.Arn)
		policy := func(build func(ARNs) Policy) pulumi.StringOutput {
			return arns.ApplyT(func(v []any) string {
				return build(ARNs{Partition: partition.Partition, Region: region.Name, Account: caller.AccountId,
					Table: v[0].(string), SecretsKey: v[1].(string), JobsLogGroup: strings.TrimSuffix(v[2].(string), ":*"),
					LambdaLogGroup: strings.TrimSuffix(v[3].(string), ":*"), Bucket: v[4].(string), WorkerRole: v[5].(string),
					LaunchTemplate: v[6].(string), SecretPrefix: cfg.SecretPrefix()}).JSON()
			}).(pulumi.StringOutput)
		}
		if _, err := iam.NewRolePolicy(ctx, p+"-worker", &iam.RolePolicyArgs{Role: workerRole.Name, Policy: policy(WorkerPolicy)}); err != nil {
			return err
		}

		// The API and the reaper: one Lambda.
		fnRole, err := iam.NewRole(ctx, p+"-api", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("lambda.amazonaws.com")), Tags: tags})
		if err != nil {
			return err
		}
		fnPolicy, err := iam.NewRolePolicy(ctx, p+"-api", &iam.RolePolicyArgs{Role: fnRole.Name, Policy: policy(LambdaPolicy)})
		if err != nil {
			return err
		}
		fn, err := lambda.NewFunction(ctx, fnName, &lambda.FunctionArgs{
			Name: pulumi.String(fnName), Runtime: pulumi.String("provided.al2023"), Architectures: pulumi.StringArray{pulumi.String("arm64")},
			Handler: pulumi.String("bootstrap"), Code: pulumi.NewFileArchive(cfg.LambdaZip), Role: fnRole.Arn,
			MemorySize: pulumi.Int(256), Timeout: pulumi.Int(30),
			Environment: &lambda.FunctionEnvironmentArgs{Variables: pulumi.StringMap{
				"REPLICATOR_TABLE": table.Name, "REPLICATOR_LAUNCH_TEMPLATE": launchTemplate.Name, "REPLICATOR_LOG_GROUP": jobsLogs.Name,
				"REPLICATOR_SECRET_PREFIX": pulumi.String(cfg.SecretPrefix()), "REPLICATOR_KMS_KEY_ID": key.Arn,
				"REPLICATOR_MAX_ACTIVE_JOBS":            pulumi.String(strconv.Itoa(cfg.MaxConcurrentJobs)),
				"REPLICATOR_DEFAULT_TIME_LIMIT_MINUTES": pulumi.String(strconv.Itoa(cfg.DefaultTimeLimitMinutes)),
				"REPLICATOR_ARTIFACTS_BUCKET":           bucket.Bucket, "REPLICATOR_WORKER_KEY": workerObject.Key,
			}},
			Tags: tags,
		}, pulumi.DependsOn([]pulumi.Resource{lambdaLogs, fnPolicy}))
		if err != nil {
			return err
		}
		api, err := apigatewayv2.NewApi(ctx, p, &apigatewayv2.ApiArgs{Name: pulumi.String(p), ProtocolType: pulumi.String("HTTP"), Tags: tags})
		if err != nil {
			return err
		}
		integration, err := apigatewayv2.NewIntegration(ctx, p, &apigatewayv2.IntegrationArgs{ApiId: api.ID(), IntegrationType: pulumi.String("AWS_PROXY"),
			IntegrationUri: fn.InvokeArn, PayloadFormatVersion: pulumi.String("2.0"), IntegrationMethod: pulumi.String("POST")})
		if err != nil {
			return err
		}
		for _, route := range Routes {
			name := p + "-" + strings.NewReplacer(" ", "-", "/", "-", "{", "", "}", "").Replace(strings.ToLower(route))
			if _, err := apigatewayv2.NewRoute(ctx, name, &apigatewayv2.RouteArgs{ApiId: api.ID(), RouteKey: pulumi.String(route),
				AuthorizationType: pulumi.String("AWS_IAM"), Target: pulumi.Sprintf("integrations/%s", integration.ID())}); err != nil {
				return err
			}
		}
		stage, err := apigatewayv2.NewStage(ctx, p, &apigatewayv2.StageArgs{ApiId: api.ID(), Name: pulumi.String("$default"), AutoDeploy: pulumi.Bool(true), Tags: tags})
		if err != nil {
			return err
		}
		if _, err := lambda.NewPermission(ctx, p+"-api", &lambda.PermissionArgs{Function: fn.Name, Action: pulumi.String("lambda:InvokeFunction"),
			Principal: pulumi.String("apigateway.amazonaws.com"), SourceArn: pulumi.Sprintf("%s/*/*", api.ExecutionArn)}); err != nil {
			return err
		}
		// The reaper's schedule.
		rule, err := cloudwatch.NewEventRule(ctx, p+"-reaper", &cloudwatch.EventRuleArgs{ScheduleExpression: pulumi.String("rate(1 minute)"),
			Description: pulumi.String("replicator reaper: relaunch silent workers, enforce time limits, terminate orphans"), Tags: tags})
		if err != nil {
			return err
		}
		if _, err := cloudwatch.NewEventTarget(ctx, p+"-reaper", &cloudwatch.EventTargetArgs{Rule: rule.Name, Arn: fn.Arn}); err != nil {
			return err
		}
		if _, err := lambda.NewPermission(ctx, p+"-reaper", &lambda.PermissionArgs{Function: fn.Name, Action: pulumi.String("lambda:InvokeFunction"),
			Principal: pulumi.String("events.amazonaws.com"), SourceArn: rule.Arn}); err != nil {
			return err
		}

		ctx.Export(OutAPIURL, stage.InvokeUrl)
		ctx.Export(OutRegion, pulumi.String(region.Name))
		ctx.Export(OutTable, table.Name)
		ctx.Export(OutLogGroup, jobsLogs.Name)
		ctx.Export(OutBucket, bucket.Bucket)
		ctx.Export(OutAMI, image.amiID)
		ctx.Export(OutVersion, pulumi.String(cfg.Version))
		ctx.Export(OutLaunchTemplate, launchTemplate.Name)
		ctx.Export(OutSecretsKey, key.Arn)
		return nil
	}
}

func attr(name string) *dynamodb.TableAttributeArgs {
	return &dynamodb.TableAttributeArgs{Name: pulumi.String(name), Type: pulumi.String("S")}
}

func assume(service string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":%q},"Action":"sts:AssumeRole"}]}`, service)
}
