package deploy

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/imagebuilder"
	ibtypes "github.com/aws/aws-sdk-go-v2/service/imagebuilder/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	kmstypes "github.com/aws/aws-sdk-go-v2/service/kms/types"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"

	"github.com/replicatorhq/replicator/internal/stacknames"
	"github.com/replicatorhq/replicator/platform"
)

// importIDs derive the AWS id of a named resource from its inputs, the way
// `pulumi import` takes it for each type.
var importIDs = map[string]func(in map[string]any) string{
	"aws:dynamodb/table:Table":                          field("name"),
	"aws:cloudwatch/logGroup:LogGroup":                  field("name"),
	"aws:lambda/function:Function":                      field("name"),
	"aws:iam/role:Role":                                 field("name"),
	"aws:iam/instanceProfile:InstanceProfile":           field("name"),
	"aws:iam/rolePolicy:RolePolicy":                     joined(":", "role", "name"),
	"aws:iam/rolePolicyAttachment:RolePolicyAttachment": joined("/", "role", "policyArn"),
	"aws:kms/alias:Alias":                               field("name"),
	"aws:s3/bucketV2:BucketV2":                          field("bucket"),
	"aws:cloudwatch/eventRule:EventRule":                field("name"),
	"aws:cloudwatch/eventTarget:EventTarget":            joined("/", "rule", "targetId"),
	"aws:lambda/permission:Permission":                  joined("/", "function", "statementId"),
	// CreateConnection and CreateApiDestination refuse a name that exists.
	// (CreateTopic, Subscribe, PutDashboard and PutMetricAlarm return or
	// replace what exists, so those are simply created again.)
	"aws:cloudwatch/eventConnection:EventConnection":         field("name"),
	"aws:cloudwatch/eventApiDestination:EventApiDestination": field("name"),
	"aws:cloudwatch/dashboard:Dashboard":                     field("dashboardName"),
	"aws:cloudwatch/metricAlarm:MetricAlarm":                 field("name"),
}

func field(k string) func(map[string]any) string {
	return func(in map[string]any) string { s, _ := in[k].(string); return s }
}

func joined(sep string, keys ...string) func(map[string]any) string {
	return func(in map[string]any) string {
		var parts []string
		for _, k := range keys {
			s, _ := in[k].(string)
			if s == "" {
				return ""
			}
			parts = append(parts, s)
		}
		return strings.Join(parts, sep)
	}
}

// ImagePollEvery is how often a build left running by an interrupted setup
// is checked.
var ImagePollEvery = 30 * time.Second

// findCreated returns the AWS id of a resource an interrupted run was
// creating, when it exists, or "" and why it is to be created again.
func (o *Options) findCreated(ctx context.Context, r apitype.ResourceV3, d *apitype.DeploymentV3) (id, why string, err error) {
	typ := string(r.Type)
	if f, ok := importIDs[typ]; ok {
		if id := f(r.Inputs); id != "" {
			return id, "named " + id, nil
		}
		return "", "no name recorded", nil
	}
	switch typ {
	case "aws:imagebuilder/component:Component", "aws:imagebuilder/imageRecipe:ImageRecipe",
		"aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration",
		"aws:imagebuilder/distributionConfiguration:DistributionConfiguration":
		arn, err := o.imageBuilderARN(ctx, typ, r.Inputs)
		if err != nil || arn == "" {
			return "", "not found", err
		}
		return arn, "found as " + arn, nil
	case "aws:ec2/launchTemplate:LaunchTemplate":
		return o.findLaunchTemplate(ctx, field("name")(r.Inputs))
	case "aws:kms/key:Key":
		return o.findKey(ctx, stateIDs(d, typ))
	case platform.ImageResourceType:
		return o.findImageBuild(ctx, field("imageRecipeArn")(r.Inputs), stateIDs(d, typ))
	}
	return "", "its AWS id is not known before it exists", nil
}

func stateIDs(d *apitype.DeploymentV3, typ string) []string {
	var ids []string
	for _, r := range d.Resources {
		if string(r.Type) == typ {
			ids = append(ids, string(r.ID))
		}
	}
	return ids
}

// where is the account, region and partition of the deployment, read from
// the caller's identity (its ARN names the partition).
func (o *Options) where(ctx context.Context) (account, region, partition string, err error) {
	id, err := sts.NewFromConfig(o.AWS).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", "", "", fmt.Errorf("AWS credentials: %w", err)
	}
	arn := strings.Split(aws.ToString(id.Arn), ":")
	if len(arn) < 2 {
		return "", "", "", fmt.Errorf("unexpected caller ARN %q", aws.ToString(id.Arn))
	}
	return aws.ToString(id.Account), o.Region, arn[1], nil
}

// imageBuilderARN is the ARN of a named Image Builder resource (names are
// lower-cased in ARNs; components carry build 1).
func (o *Options) imageBuilderARN(ctx context.Context, typ string, in map[string]any) (string, error) {
	name := strings.ToLower(field("name")(in))
	if name == "" {
		return "", nil
	}
	account, region, partition, err := o.where(ctx)
	if err != nil {
		return "", err
	}
	base := "arn:" + partition + ":imagebuilder:" + region + ":" + account + ":"
	version := field("version")(in)
	switch typ {
	case "aws:imagebuilder/component:Component":
		return base + "component/" + name + "/" + version + "/1", nil
	case "aws:imagebuilder/imageRecipe:ImageRecipe":
		return base + "image-recipe/" + name + "/" + version, nil
	case "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration":
		return base + "infrastructure-configuration/" + name, nil
	default:
		return base + "distribution-configuration/" + name, nil
	}
}

func (o *Options) findLaunchTemplate(ctx context.Context, name string) (string, string, error) {
	out, err := ec2.NewFromConfig(o.AWS).DescribeLaunchTemplates(ctx, &ec2.DescribeLaunchTemplatesInput{LaunchTemplateNames: []string{name}})
	var ae smithy.APIError
	if errors.As(err, &ae) && strings.HasPrefix(ae.ErrorCode(), "InvalidLaunchTemplateName") {
		return "", "not found", nil
	}
	if err != nil {
		return "", "", err
	}
	if len(out.LaunchTemplates) == 0 {
		return "", "not found", nil
	}
	id := aws.ToString(out.LaunchTemplates[0].LaunchTemplateId)
	return id, "found as " + id, nil
}

// findKey finds a key of the stack that the state does not know: KMS keys
// have no name, only the stack's tag.
func (o *Options) findKey(ctx context.Context, known []string) (string, string, error) {
	c := kms.NewFromConfig(o.AWS)
	var best *kmstypes.KeyMetadata
	p := kms.NewListKeysPaginator(c, &kms.ListKeysInput{})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return "", "", fmt.Errorf("list keys: %w", err)
		}
		for _, k := range page.Keys {
			id := aws.ToString(k.KeyId)
			if slices.Contains(known, id) {
				continue
			}
			meta, err := c.DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: k.KeyId})
			if err != nil || meta.KeyMetadata.KeyState != kmstypes.KeyStateEnabled || meta.KeyMetadata.KeyManager != kmstypes.KeyManagerTypeCustomer {
				continue
			}
			tags, err := c.ListResourceTags(ctx, &kms.ListResourceTagsInput{KeyId: k.KeyId})
			if err != nil {
				continue
			}
			for _, t := range tags.Tags {
				if aws.ToString(t.TagKey) == stacknames.TagStack && aws.ToString(t.TagValue) == o.Config.Stack &&
					(best == nil || aws.ToTime(meta.KeyMetadata.CreationDate).After(aws.ToTime(best.CreationDate))) {
					best = meta.KeyMetadata
				}
			}
		}
	}
	if best == nil {
		return "", "not found", nil
	}
	return aws.ToString(best.KeyId), "found by the stack's tag", nil
}

// findImageBuild finds the AMI build an interrupted setup started. One still
// running is waited for: starting another would take as long again.
func (o *Options) findImageBuild(ctx context.Context, recipeARN string, known []string) (string, string, error) {
	if recipeARN == "" {
		return "", "no recipe recorded", nil
	}
	version := strings.Replace(recipeARN, ":image-recipe/", ":image/", 1)
	c := imagebuilder.NewFromConfig(o.AWS)
	deadline := time.Now().Add(90 * time.Minute)
	for {
		out, err := c.ListImageBuildVersions(ctx, &imagebuilder.ListImageBuildVersionsInput{ImageVersionArn: aws.String(version)})
		var ae smithy.APIError
		if errors.As(err, &ae) && ae.ErrorCode() == "ResourceNotFoundException" {
			return "", "no build found", nil
		}
		if err != nil {
			return "", "", fmt.Errorf("list the AMI builds: %w", err)
		}
		var latest *ibtypes.ImageSummary
		for i, img := range out.ImageSummaryList {
			if slices.Contains(known, aws.ToString(img.Arn)) {
				continue
			}
			if latest == nil || aws.ToString(img.DateCreated) > aws.ToString(latest.DateCreated) {
				latest = &out.ImageSummaryList[i]
			}
		}
		if latest == nil || latest.State == nil {
			return "", "no build found", nil
		}
		arn := aws.ToString(latest.Arn)
		switch latest.State.Status {
		case ibtypes.ImageStatusAvailable:
			return arn, "the build finished", nil
		case ibtypes.ImageStatusFailed, ibtypes.ImageStatusCancelled, ibtypes.ImageStatusDeleted, ibtypes.ImageStatusDeprecated, ibtypes.ImageStatusDisabled:
			return "", fmt.Sprintf("the build %s ended %s", arn, strings.ToLower(string(latest.State.Status))), nil
		}
		if time.Now().After(deadline) {
			return "", "", fmt.Errorf("the AMI build %s left by the interrupted run is still %s after 90 minutes", arn, latest.State.Status)
		}
		fmt.Fprintf(o.Out, "  the AMI build %s left by the interrupted run is %s: waiting for it rather than starting another\n", arn, strings.ToLower(string(latest.State.Status)))
		select {
		case <-ctx.Done():
			return "", "", ctx.Err()
		case <-time.After(ImagePollEvery):
		}
	}
}
