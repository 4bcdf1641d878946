package platform

import (
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/cloudwatch"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/dynamodb"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/kms"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/s3"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// dataStores are where jobs, their secrets, logs and the worker binary live.
type dataStores struct {
	key              *kms.Key
	bucket           *s3.BucketV2
	workerObject     *s3.BucketObjectv2
	table            *dynamodb.Table
	jobsLogs, fnLogs *cloudwatch.LogGroup
}

func (s *stack) data() (*dataStores, error) {
	d := &dataStores{}
	var err error
	if d.key, err = s.secretsKey(); err != nil {
		return nil, err
	}
	if d.bucket, d.workerObject, err = s.artifacts(); err != nil {
		return nil, err
	}
	if d.table, err = s.jobsTable(); err != nil {
		return nil, err
	}
	if d.jobsLogs, err = s.logGroup(s.names.Prefix()+"-jobs", s.names.JobsLogGroup()); err != nil {
		return nil, err
	}
	if d.fnLogs, err = s.logGroup(s.names.Prefix()+"-api", s.names.FunctionLogGroup()); err != nil {
		return nil, err
	}
	return d, nil
}

// secretsKey encrypts job secrets with a key of the stack's own.
func (s *stack) secretsKey() (*kms.Key, error) {
	p := s.names.Prefix()
	key, err := kms.NewKey(s.ctx, p+"-secrets", &kms.KeyArgs{
		Description: pulumi.String("replicator " + s.cfg.Stack + ": job connection URLs"), EnableKeyRotation: pulumi.Bool(true),
		DeletionWindowInDays: pulumi.Int(7), Tags: s.tags,
	})
	if err != nil {
		return nil, err
	}
	_, err = kms.NewAlias(s.ctx, p+"-secrets", &kms.AliasArgs{Name: pulumi.String(s.names.SecretsKeyAlias()), TargetKeyId: key.KeyId})
	return key, err
}

// artifacts is a private, versioned, encrypted bucket holding the worker
// binary of this CLI version.
func (s *stack) artifacts() (*s3.BucketV2, *s3.BucketObjectv2, error) {
	p := s.names.Prefix()
	bucket, err := s3.NewBucketV2(s.ctx, p+"-artifacts", &s3.BucketV2Args{
		Bucket: pulumi.String(s.names.ArtifactsBucket(s.at.Account, s.at.Region)), ForceDestroy: pulumi.Bool(true), Tags: s.tags})
	if err != nil {
		return nil, nil, err
	}
	if _, err := s3.NewBucketPublicAccessBlock(s.ctx, p+"-artifacts", &s3.BucketPublicAccessBlockArgs{Bucket: bucket.ID(),
		BlockPublicAcls: pulumi.Bool(true), BlockPublicPolicy: pulumi.Bool(true), IgnorePublicAcls: pulumi.Bool(true), RestrictPublicBuckets: pulumi.Bool(true)}); err != nil {
		return nil, nil, err
	}
	if _, err := s3.NewBucketVersioningV2(s.ctx, p+"-artifacts", &s3.BucketVersioningV2Args{Bucket: bucket.ID(),
		VersioningConfiguration: &s3.BucketVersioningV2VersioningConfigurationArgs{Status: pulumi.String("Enabled")}}); err != nil {
		return nil, nil, err
	}
	if _, err := s3.NewBucketServerSideEncryptionConfigurationV2(s.ctx, p+"-artifacts", &s3.BucketServerSideEncryptionConfigurationV2Args{Bucket: bucket.ID(),
		Rules: s3.BucketServerSideEncryptionConfigurationV2RuleArray{&s3.BucketServerSideEncryptionConfigurationV2RuleArgs{
			ApplyServerSideEncryptionByDefault: &s3.BucketServerSideEncryptionConfigurationV2RuleApplyServerSideEncryptionByDefaultArgs{SseAlgorithm: pulumi.String("aws:kms")},
			BucketKeyEnabled:                   pulumi.Bool(true),
		}}}); err != nil {
		return nil, nil, err
	}
	obj, err := s3.NewBucketObjectv2(s.ctx, p+"-worker", &s3.BucketObjectv2Args{Bucket: bucket.ID(), Key: pulumi.String(s.cfg.WorkerKey()),
		Source: pulumi.NewFileAsset(s.cfg.WorkerBinary), ServerSideEncryption: pulumi.String("aws:kms"), Tags: s.tags})
	return bucket, obj, err
}

// jobsTable holds jobs, their checkpoints and the active-job counter.
func (s *stack) jobsTable() (*dynamodb.Table, error) {
	attr := func(name string) *dynamodb.TableAttributeArgs {
		return &dynamodb.TableAttributeArgs{Name: pulumi.String(name), Type: pulumi.String("S")}
	}
	return dynamodb.NewTable(s.ctx, s.names.Prefix()+"-jobs", &dynamodb.TableArgs{
		Name: pulumi.String(s.names.Table()), BillingMode: pulumi.String("PAY_PER_REQUEST"), HashKey: pulumi.String("pk"), RangeKey: pulumi.String("sk"),
		Attributes: dynamodb.TableAttributeArray{attr("pk"), attr("sk"), attr("gsi1pk"), attr("gsi1sk"), attr("gsi2pk"), attr("gsi2sk")},
		GlobalSecondaryIndexes: dynamodb.TableGlobalSecondaryIndexArray{
			&dynamodb.TableGlobalSecondaryIndexArgs{Name: pulumi.String("by-owner"), HashKey: pulumi.String("gsi1pk"), RangeKey: pulumi.String("gsi1sk"), ProjectionType: pulumi.String("ALL")},
			&dynamodb.TableGlobalSecondaryIndexArgs{Name: pulumi.String("active"), HashKey: pulumi.String("gsi2pk"), RangeKey: pulumi.String("gsi2sk"), ProjectionType: pulumi.String("ALL")},
		},
		Ttl:                  &dynamodb.TableTtlArgs{AttributeName: pulumi.String("expires_at"), Enabled: pulumi.Bool(true)},
		PointInTimeRecovery:  &dynamodb.TablePointInTimeRecoveryArgs{Enabled: pulumi.Bool(true)},
		ServerSideEncryption: &dynamodb.TableServerSideEncryptionArgs{Enabled: pulumi.Bool(true)},
		Tags:                 s.tags,
	})
}

func (s *stack) logGroup(logical, name string) (*cloudwatch.LogGroup, error) {
	return cloudwatch.NewLogGroup(s.ctx, logical, &cloudwatch.LogGroupArgs{Name: pulumi.String(name),
		RetentionInDays: pulumi.Int(s.cfg.LogRetentionDays), Tags: s.tags})
}
