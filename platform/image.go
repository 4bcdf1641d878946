package platform

import (
	_ "embed"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/imagebuilder"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// The Image Builder component installing the worker's OS layer (image/).
//
//go:embed component.yaml
var componentYAML string

// ImageCreateTimeout is how long the AMI build may take: it is the slow step of
// a setup (20 to 40 minutes).
const ImageCreateTimeout = "90m"

// ImageResourceType is the Pulumi type of the AMI build, which setup names in
// its progress as the slow step.
const ImageResourceType = "aws:imagebuilder/image:Image"

type builtImage struct {
	amiID pulumi.StringOutput
}

// workerImage builds the worker AMI in the account with EC2 Image Builder:
// Amazon Linux 2023 arm64, the PostgreSQL client tools and the worker's systemd
// unit. The worker binary is not in the image: it is fetched from the artifacts
// bucket at boot, so a new CLI version does not rebuild the AMI.
func workerImage(ctx *pulumi.Context, cfg Config, tags pulumi.StringMap) (*builtImage, error) {
	p := cfg.Prefix()
	role, err := iam.NewRole(ctx, p+"-image-builder", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("ec2.amazonaws.com")), Tags: tags})
	if err != nil {
		return nil, err
	}
	for i, arn := range []string{
		"arn:aws:iam::aws:policy/AmazonSSMManagedInstanceCore",
		"arn:aws:iam::aws:policy/EC2InstanceProfileForImageBuilder",
	} {
		if _, err := iam.NewRolePolicyAttachment(ctx, p+"-image-builder-"+string(rune('a'+i)), &iam.RolePolicyAttachmentArgs{Role: role.Name, PolicyArn: pulumi.String(arn)}); err != nil {
			return nil, err
		}
	}
	profile, err := iam.NewInstanceProfile(ctx, p+"-image-builder", &iam.InstanceProfileArgs{Role: role.Name, Tags: tags})
	if err != nil {
		return nil, err
	}
	component, err := imagebuilder.NewComponent(ctx, p+"-worker", &imagebuilder.ComponentArgs{
		Name: pulumi.String(p + "-worker"), Platform: pulumi.String("Linux"), Version: pulumi.String("1.0.0"),
		Data: pulumi.String(componentYAML), Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	recipe, err := imagebuilder.NewImageRecipe(ctx, p+"-worker", &imagebuilder.ImageRecipeArgs{
		Name: pulumi.String(p + "-worker"), Version: pulumi.String("1.0.0"),
		ParentImage: pulumi.Sprintf("arn:aws:imagebuilder:%s:aws:image/amazon-linux-2023-arm64/x.x.x", regionOf(ctx)),
		Components:  imagebuilder.ImageRecipeComponentArray{&imagebuilder.ImageRecipeComponentArgs{ComponentArn: component.Arn}},
		BlockDeviceMappings: imagebuilder.ImageRecipeBlockDeviceMappingArray{&imagebuilder.ImageRecipeBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &imagebuilder.ImageRecipeBlockDeviceMappingEbsArgs{Encrypted: pulumi.String("true"), VolumeSize: pulumi.Int(20),
				VolumeType: pulumi.String("gp3"), DeleteOnTermination: pulumi.String("true")},
		}},
		Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	infraArgs := &imagebuilder.InfrastructureConfigurationArgs{
		Name: pulumi.String(p + "-worker"), InstanceProfileName: profile.Name,
		InstanceTypes:              pulumi.StringArray{pulumi.String("t4g.small")},
		TerminateInstanceOnFailure: pulumi.Bool(true),
		InstanceMetadataOptions:    &imagebuilder.InfrastructureConfigurationInstanceMetadataOptionsArgs{HttpTokens: pulumi.String("required")},
		Tags:                       tags,
	}
	if len(cfg.SubnetIDs) > 0 {
		infraArgs.SubnetId = pulumi.String(cfg.SubnetIDs[0])
		infraArgs.SecurityGroupIds = pulumi.ToStringArray(cfg.SecurityGroupIDs)
	}
	infra, err := imagebuilder.NewInfrastructureConfiguration(ctx, p+"-worker", infraArgs)
	if err != nil {
		return nil, err
	}
	dist, err := imagebuilder.NewDistributionConfiguration(ctx, p+"-worker", &imagebuilder.DistributionConfigurationArgs{
		Name: pulumi.String(p + "-worker"),
		Distributions: imagebuilder.DistributionConfigurationDistributionArray{&imagebuilder.DistributionConfigurationDistributionArgs{
			Region: pulumi.String(regionOf(ctx)),
			AmiDistributionConfiguration: &imagebuilder.DistributionConfigurationDistributionAmiDistributionConfigurationArgs{
				Name:    pulumi.String(p + "-worker-{{ imagebuilder:buildDate }}"),
				AmiTags: pulumi.StringMap{"replicator:stack": pulumi.String(cfg.Stack), "replicator:role": pulumi.String("worker-image")},
			},
		}},
		Tags: tags,
	})
	if err != nil {
		return nil, err
	}
	img, err := imagebuilder.NewImage(ctx, p+"-worker", &imagebuilder.ImageArgs{
		ImageRecipeArn: recipe.Arn, InfrastructureConfigurationArn: infra.Arn, DistributionConfigurationArn: dist.Arn, Tags: tags,
	}, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: ImageCreateTimeout}))
	if err != nil {
		return nil, err
	}
	ami := img.OutputResources.ApplyT(func(rs []imagebuilder.ImageOutputResource) string {
		for _, r := range rs {
			for _, a := range r.Amis {
				if a.Image != nil {
					return *a.Image
				}
			}
		}
		return ""
	}).(pulumi.StringOutput)
	return &builtImage{amiID: ami}, nil
}

// regionOf is the stack's region, from the aws:region configuration.
func regionOf(ctx *pulumi.Context) string {
	if r, ok := ctx.GetConfig("aws:region"); ok {
		return r
	}
	return "us-east-1"
}
