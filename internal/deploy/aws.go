package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"net/url"
	"path"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	etypes "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	ktypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	stypes "github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"

	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Account is who and where a deployment goes.
type Account struct {
	ID, ARN, Region string
}

// WhoAmI checks the AWS credentials and names the account.
func WhoAmI(ctx context.Context, cfg aws.Config) (*Account, error) {
	out, err := sts.NewFromConfig(cfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return nil, fmt.Errorf("AWS credentials: %w (configure a profile, SSO or AWS_ACCESS_KEY_ID)", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: pass --region or set AWS_REGION")
	}
	return &Account{ID: aws.ToString(out.Account), ARN: aws.ToString(out.Arn), Region: cfg.Region}, nil
}

// StateKeyAlias is the KMS key of the Pulumi state's secrets.
const StateKeyAlias = "alias/replicator-state"

// StateBucket is the state bucket of an account and region.
func StateBucket(a *Account) string { return fmt.Sprintf("replicator-state-%s-%s", a.ID, a.Region) }

// StateBackend is the Pulumi backend URL of the state bucket. The region is in
// the URL: without it the pulumi CLI takes the profile's region (S3 then answers
// PermanentRedirect) or none at all ("region is required").
func StateBackend(a *Account) string {
	return "s3://" + StateBucket(a) + "?region=" + url.QueryEscape(a.Region)
}

// StateSecrets is the secrets provider URL of the state key.
func StateSecrets(a *Account) string {
	return "awskms://" + StateKeyAlias + "?region=" + url.QueryEscape(a.Region)
}

// Bootstrap makes the state backend in the account, idempotently (as CDK's
// bootstrap does): a private, versioned, encrypted S3 bucket for the state and a
// KMS key for the stack's secrets. It returns the backend URL and the secrets
// provider.
func Bootstrap(ctx context.Context, cfg aws.Config, a *Account, out io.Writer) (backend, secrets string, err error) {
	s3c := s3.NewFromConfig(cfg)
	bucket := StateBucket(a)
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: &bucket}); err != nil {
		fmt.Fprintf(out, "Creating the state bucket s3://%s\n", bucket)
		in := &s3.CreateBucketInput{Bucket: &bucket}
		if a.Region != "us-east-1" {
			in.CreateBucketConfiguration = &stypes.CreateBucketConfiguration{LocationConstraint: stypes.BucketLocationConstraint(a.Region)}
		}
		if _, err := s3c.CreateBucket(ctx, in); err != nil && apiCode(err) != "BucketAlreadyOwnedByYou" {
			return "", "", fmt.Errorf("create state bucket: %w", err)
		}
	}
	if _, err := s3c.PutPublicAccessBlock(ctx, &s3.PutPublicAccessBlockInput{Bucket: &bucket, PublicAccessBlockConfiguration: &stypes.PublicAccessBlockConfiguration{
		BlockPublicAcls: aws.Bool(true), BlockPublicPolicy: aws.Bool(true), IgnorePublicAcls: aws.Bool(true), RestrictPublicBuckets: aws.Bool(true)}}); err != nil {
		return "", "", fmt.Errorf("state bucket: %w", err)
	}
	if _, err := s3c.PutBucketVersioning(ctx, &s3.PutBucketVersioningInput{Bucket: &bucket,
		VersioningConfiguration: &stypes.VersioningConfiguration{Status: stypes.BucketVersioningStatusEnabled}}); err != nil {
		return "", "", fmt.Errorf("state bucket: %w", err)
	}
	if _, err := s3c.PutBucketEncryption(ctx, &s3.PutBucketEncryptionInput{Bucket: &bucket, ServerSideEncryptionConfiguration: &stypes.ServerSideEncryptionConfiguration{
		Rules: []stypes.ServerSideEncryptionRule{{ApplyServerSideEncryptionByDefault: &stypes.ServerSideEncryptionByDefault{SSEAlgorithm: stypes.ServerSideEncryptionAwsKms}, BucketKeyEnabled: aws.Bool(true)}},
	}}); err != nil {
		return "", "", fmt.Errorf("state bucket: %w", err)
	}
	kc := kms.NewFromConfig(cfg)
	if _, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(StateKeyAlias)}); err != nil {
		var nf *ktypes.NotFoundException
		if !errors.As(err, &nf) {
			return "", "", fmt.Errorf("state key: %w", err)
		}
		fmt.Fprintf(out, "Creating the state key %s\n", StateKeyAlias)
		key, err := kc.CreateKey(ctx, &kms.CreateKeyInput{Description: aws.String("replicator: secrets in the Pulumi state")})
		if err != nil {
			return "", "", fmt.Errorf("create state key: %w", err)
		}
		if _, err := kc.EnableKeyRotation(ctx, &kms.EnableKeyRotationInput{KeyId: key.KeyMetadata.KeyId}); err != nil {
			return "", "", err
		}
		if _, err := kc.CreateAlias(ctx, &kms.CreateAliasInput{AliasName: aws.String(StateKeyAlias), TargetKeyId: key.KeyMetadata.KeyId}); err != nil {
			return "", "", fmt.Errorf("state key alias: %w", err)
		}
	}
	return StateBackend(a), StateSecrets(a), nil
}

// stateFiles are the key prefixes of one stack's files in a Pulumi state
// bucket: its checkpoint (and .bak, .gz), history, backups and locks, in
// the project-scoped layout and the older one.
func stateFiles(stack string) []string {
	var out []string
	for _, root := range []string{".pulumi/%s/replicator/", ".pulumi/%s/"} {
		out = append(out, fmt.Sprintf(root, "stacks")+stack+".json")
		for _, dir := range []string{"history", "backups", "locks"} {
			out = append(out, fmt.Sprintf(root, dir)+stack+"/")
		}
	}
	// Locks are kept under the stack's fully qualified name.
	return append(out, ".pulumi/locks/organization/replicator/"+stack+"/")
}

// Purge removes the stack's files from the state bucket (every version).
// The bucket and the state key hold every stack of the account and region:
// they go only when no other stack's state remains, which is said
// otherwise.
func Purge(ctx context.Context, cfg aws.Config, a *Account, stack string, out io.Writer) error {
	s3c := s3.NewFromConfig(cfg)
	bucket := StateBucket(a)
	for _, prefix := range stateFiles(stack) {
		if err := deleteVersions(ctx, s3c, bucket, prefix); err != nil {
			return err
		}
	}
	fmt.Fprintf(out, "Deleted the state of stack %s from s3://%s\n", stack, bucket)
	others, err := stacksIn(ctx, s3c, bucket)
	if err != nil {
		return err
	}
	if len(others) > 0 {
		fmt.Fprintf(out, "The state bucket and key stay: they hold the state of stack(s) %s (replicator teardown --purge --stack NAME removes each)\n",
			strings.Join(others, ", "))
		return nil
	}
	if err := deleteVersions(ctx, s3c, bucket, ""); err != nil {
		return err
	}
	if _, err := s3c.DeleteBucket(ctx, &s3.DeleteBucketInput{Bucket: &bucket}); err != nil && apiCode(err) != "NoSuchBucket" {
		return fmt.Errorf("delete state bucket: %w", err)
	}
	fmt.Fprintf(out, "Deleted the state bucket s3://%s\n", bucket)
	kc := kms.NewFromConfig(cfg)
	key, err := kc.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(StateKeyAlias)})
	if err == nil {
		if _, err := kc.DeleteAlias(ctx, &kms.DeleteAliasInput{AliasName: aws.String(StateKeyAlias)}); err != nil {
			return err
		}
		if _, err := kc.ScheduleKeyDeletion(ctx, &kms.ScheduleKeyDeletionInput{KeyId: key.KeyMetadata.KeyId, PendingWindowInDays: aws.Int32(7)}); err != nil {
			return err
		}
		fmt.Fprintf(out, "Scheduled the deletion of the state key (AWS keeps it 7 days)\n")
	}
	return nil
}

// deleteVersions deletes every version and delete marker under prefix.
func deleteVersions(ctx context.Context, s3c *s3.Client, bucket, prefix string) error {
	p := s3.NewListObjectVersionsPaginator(s3c, &s3.ListObjectVersionsInput{Bucket: &bucket, Prefix: aws.String(prefix)})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			var nb *stypes.NoSuchBucket
			if errors.As(err, &nb) || apiCode(err) == "NoSuchBucket" {
				return nil
			}
			return fmt.Errorf("list state: %w", err)
		}
		var ids []stypes.ObjectIdentifier
		for _, v := range page.Versions {
			ids = append(ids, stypes.ObjectIdentifier{Key: v.Key, VersionId: v.VersionId})
		}
		for _, m := range page.DeleteMarkers {
			ids = append(ids, stypes.ObjectIdentifier{Key: m.Key, VersionId: m.VersionId})
		}
		if len(ids) > 0 {
			if _, err := s3c.DeleteObjects(ctx, &s3.DeleteObjectsInput{Bucket: &bucket, Delete: &stypes.Delete{Objects: ids}}); err != nil {
				return fmt.Errorf("delete state: %w", err)
			}
		}
	}
	return nil
}

// stacksIn names the stacks whose state the bucket holds.
func stacksIn(ctx context.Context, s3c *s3.Client, bucket string) ([]string, error) {
	var out []string
	p := s3.NewListObjectsV2Paginator(s3c, &s3.ListObjectsV2Input{Bucket: &bucket, Prefix: aws.String(".pulumi/stacks/")})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			if apiCode(err) == "NoSuchBucket" {
				return nil, nil
			}
			return nil, fmt.Errorf("list state: %w", err)
		}
		for _, o := range page.Contents {
			name := path.Base(aws.ToString(o.Key))
			name = strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(name, ".gz"), ".bak"), ".json")
			if !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out, nil
}

// ImagesInUse are the AMIs a stack may still launch or run: those of its
// launch template's default and latest versions, and those of its instances
// that still exist. setup never removes them: a launch from a version that
// points at a deregistered image fails with InvalidAMIID.
func ImagesInUse(ctx context.Context, cfg aws.Config, stack string) ([]string, error) {
	c := ec2.NewFromConfig(cfg)
	var out []string
	vers, err := c.DescribeLaunchTemplateVersions(ctx, &ec2.DescribeLaunchTemplateVersionsInput{
		LaunchTemplateName: aws.String(stacknames.Of(stack).LaunchTemplate()), Versions: []string{"$Default", "$Latest"}})
	var ae smithy.APIError
	switch {
	case errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidLaunchTemplateName"):
	case err != nil:
		return nil, fmt.Errorf("read the launch template: %w", err)
	default:
		for _, v := range vers.LaunchTemplateVersions {
			if v.LaunchTemplateData != nil && v.LaunchTemplateData.ImageId != nil {
				out = append(out, aws.ToString(v.LaunchTemplateData.ImageId))
			}
		}
	}
	p := ec2.NewDescribeInstancesPaginator(c, &ec2.DescribeInstancesInput{Filters: []etypes.Filter{
		{Name: aws.String("tag:" + stacknames.TagStack), Values: []string{stack}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running", "stopping", "stopped"}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list the stack's instances: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				out = append(out, aws.ToString(in.ImageId))
			}
		}
	}
	return out, nil
}

// RemoveImages deregisters the worker AMIs of a stack but those in keep, and
// deletes their snapshots: Image Builder leaves them behind when an image is
// rebuilt or destroyed. The snapshots are tagged first and deleted with
// their image (DeleteAssociatedSnapshots); any the deregistration left
// (a failed deletion, a service without that option) are found again by
// their tag, now and at every later run, rather than billed forever.
func RemoveImages(ctx context.Context, cfg aws.Config, stack string, keep []string, out io.Writer) (int, error) {
	c := ec2.NewFromConfig(cfg)
	imgs, err := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []etypes.Filter{
		{Name: aws.String("tag:" + stacknames.TagStack), Values: []string{stack}},
		{Name: aws.String("tag:" + stacknames.TagRole), Values: []string{stacknames.RoleWorkerImage}},
	}})
	if err != nil {
		return 0, fmt.Errorf("list worker images: %w", err)
	}
	n := 0
	for _, img := range imgs.Images {
		id := aws.ToString(img.ImageId)
		if slices.Contains(keep, id) {
			continue
		}
		var snaps []string
		for _, bd := range img.BlockDeviceMappings {
			if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
				snaps = append(snaps, aws.ToString(bd.Ebs.SnapshotId))
			}
		}
		if len(snaps) > 0 {
			if _, err := c.CreateTags(ctx, &ec2.CreateTagsInput{Resources: snaps, Tags: []etypes.Tag{
				{Key: aws.String(stacknames.TagStack), Value: aws.String(stack)}, {Key: aws.String(stacknames.TagRole), Value: aws.String(stacknames.RoleWorkerSnapshot)}}}); err != nil {
				return n, fmt.Errorf("tag the snapshots of %s: %w", id, err)
			}
		}
		if _, err := c.DeregisterImage(ctx, &ec2.DeregisterImageInput{ImageId: img.ImageId, DeleteAssociatedSnapshots: aws.Bool(true)}); err != nil {
			return n, fmt.Errorf("deregister %s: %w", id, err)
		}
		fmt.Fprintf(out, "  removed old worker image %s\n", id)
		n++
	}
	return n, sweepSnapshots(ctx, c, stack, out)
}

// sweepSnapshots deletes the snapshots of removed worker images that are
// still there.
func sweepSnapshots(ctx context.Context, c *ec2.Client, stack string, out io.Writer) error {
	p := ec2.NewDescribeSnapshotsPaginator(c, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []etypes.Filter{
		{Name: aws.String("tag:" + stacknames.TagStack), Values: []string{stack}},
		{Name: aws.String("tag:" + stacknames.TagRole), Values: []string{stacknames.RoleWorkerSnapshot}},
	}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("list the snapshots of removed worker images: %w", err)
		}
		for _, s := range page.Snapshots {
			id := aws.ToString(s.SnapshotId)
			if _, err := c.DeleteSnapshot(ctx, &ec2.DeleteSnapshotInput{SnapshotId: s.SnapshotId}); err != nil && apiCode(err) != "InvalidSnapshot.NotFound" {
				return fmt.Errorf("delete snapshot %s of a removed worker image (it stays tagged %s=%s, and the next setup or teardown tries again): %w",
					id, stacknames.TagRole, stacknames.RoleWorkerSnapshot, err)
			}
			fmt.Fprintf(out, "  deleted snapshot %s of a removed worker image\n", id)
		}
	}
	return nil
}

// apiCode is the AWS error code of err ("" for other errors).
func apiCode(err error) string {
	var ae smithy.APIError
	if errors.As(err, &ae) {
		return ae.ErrorCode()
	}
	return ""
}
