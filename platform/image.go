package platform

import (
	"cmp"
	"crypto/sha256"
	_ "embed"
	"encoding/binary"
	"fmt"
	"strings"

	"github.com/replicatorhq/replicator/internal/stacknames"

	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
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

// ImageTestTimeoutMinutes bounds Image Builder's test stage (the smallest value
// it accepts is 60).
const ImageTestTimeoutMinutes = 60

// ImageResourceType is the Pulumi type of the AMI build, which setup names in
// its progress as the slow step.
const ImageResourceType = "aws:imagebuilder/image:Image"

// ParentImage is the Image Builder image the worker's is built on (owned
// by "aws"); setup resolves its newest version.
const ParentImage = "image/amazon-linux-2023-arm64"

// ImageBuildInstanceType is the build instance: the smallest Graviton that
// builds in minutes (setup picks a zone that offers it).
const ImageBuildInstanceType = "t4g.small"

type builtImage struct {
	amiID pulumi.StringOutput
}

// contentVersion derives an Image Builder semantic version from content.
// Components and recipes are immutable per name and version, and every input
// of theirs forces a replacement, which Pulumi creates before deleting the old
// one: a fixed "1.0.0" would collide with itself. Each part of a version must
// be below 2^30; 24 bits of the hash stay well within.
func contentVersion(parts ...string) string {
	h := sha256.Sum256([]byte(strings.Join(parts, "\x00")))
	return fmt.Sprintf("1.0.%d", binary.BigEndian.Uint32(h[:4])>>8)
}

// ComponentVersion is the version of the worker component built from doc.
func ComponentVersion(doc string) string { return contentVersion("component", doc) }

// recipeVersion covers everything the recipe declares.
func recipeVersion(componentVersion, parentImage string) string {
	return contentVersion("recipe", componentVersion, parentImage, fmt.Sprint(stacknames.VolumeGiB), "gp3", "encrypted")
}

// image builds the worker AMI in the account with EC2 Image Builder: Amazon
// Linux 2023 arm64, the newest PostgreSQL client tools and the worker's
// systemd units. The worker binary is not in the image: it is fetched from the
// artifacts bucket at boot, so a new CLI version does not rebuild the AMI; a
// changed component.yaml does.
func (s *stack) image() (*builtImage, error) {
	profile, attached, err := s.imageBuilderProfile()
	if err != nil {
		return nil, err
	}
	// Image Builder logs each build to /aws/imagebuilder/RECIPE; owning the
	// group gives it a retention and lets teardown remove it.
	logs, err := s.logGroup(s.names.Prefix()+"-image-builds", s.names.ImageLogGroup())
	if err != nil {
		return nil, err
	}
	recipe, err := s.imageRecipe()
	if err != nil {
		return nil, err
	}
	infra, err := s.imageInfrastructure(profile)
	if err != nil {
		return nil, err
	}
	dist, err := imagebuilder.NewDistributionConfiguration(s.ctx, s.names.Prefix()+"-worker", &imagebuilder.DistributionConfigurationArgs{
		Name: pulumi.String(s.names.Image()),
		Distributions: imagebuilder.DistributionConfigurationDistributionArray{&imagebuilder.DistributionConfigurationDistributionArgs{
			Region: pulumi.String(s.at.Region),
			AmiDistributionConfiguration: &imagebuilder.DistributionConfigurationDistributionAmiDistributionConfigurationArgs{
				Name:    pulumi.String(s.names.Image() + "-{{ imagebuilder:buildDate }}"),
				AmiTags: pulumi.StringMap{stacknames.TagStack: pulumi.String(s.cfg.Stack), stacknames.TagRole: pulumi.String(stacknames.RoleWorkerImage)},
			},
		}},
		Tags: s.tags,
	})
	if err != nil {
		return nil, err
	}
	img, err := imagebuilder.NewImage(s.ctx, s.names.Prefix()+"-worker", &imagebuilder.ImageArgs{
		ImageRecipeArn: recipe.Arn, InfrastructureConfigurationArn: infra.Arn, DistributionConfigurationArn: dist.Arn,
		// The test stage boots the image without a job: the component's test
		// phase checks the worker stays idle and the tools are there.
		ImageTestsConfiguration: &imagebuilder.ImageImageTestsConfigurationArgs{ImageTestsEnabled: pulumi.Bool(true), TimeoutMinutes: pulumi.Int(ImageTestTimeoutMinutes)},
		Tags:                    s.tags,
		// The build instance needs its role's policies from its first
		// minute (SSM, Image Builder's own): nothing else orders them.
	}, pulumi.Timeouts(&pulumi.CustomTimeouts{Create: ImageCreateTimeout}), pulumi.DependsOn(append([]pulumi.Resource{logs}, attached...)))
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

// imageBuilderProfile is the build instance's role: what Image Builder and SSM
// need, by AWS's managed policies in the stack's partition.
func (s *stack) imageBuilderProfile() (*iam.InstanceProfile, []pulumi.Resource, error) {
	p := s.names.Prefix()
	role, err := iam.NewRole(s.ctx, p+"-image-builder", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("ec2.amazonaws.com")), Tags: s.tags})
	if err != nil {
		return nil, nil, err
	}
	var attached []pulumi.Resource
	for i, policy := range []string{"AmazonSSMManagedInstanceCore", "EC2InstanceProfileForImageBuilder"} {
		a, err := iam.NewRolePolicyAttachment(s.ctx, p+"-image-builder-"+string(rune('a'+i)), &iam.RolePolicyAttachmentArgs{
			Role: role.Name, PolicyArn: pulumi.String(s.at.arn("iam", "", "aws", "policy/"+policy))})
		if err != nil {
			return nil, nil, err
		}
		attached = append(attached, a)
	}
	profile, err := iam.NewInstanceProfile(s.ctx, p+"-image-builder", &iam.InstanceProfileArgs{Role: role.Name, Tags: s.tags})
	return profile, attached, err
}

// imageRecipe is the component (component.yaml) on Amazon Linux 2023 arm64,
// each versioned by its content.
func (s *stack) imageRecipe() (*imagebuilder.ImageRecipe, error) {
	p, name := s.names.Prefix(), s.names.Image()
	compVersion := ComponentVersion(componentYAML)
	component, err := imagebuilder.NewComponent(s.ctx, p+"-worker", &imagebuilder.ComponentArgs{
		Name: pulumi.String(name), Platform: pulumi.String("Linux"), Version: pulumi.String(compVersion),
		Data: pulumi.String(componentYAML), Tags: s.tags,
	})
	if err != nil {
		return nil, err
	}
	parent := s.at.arn("imagebuilder", s.at.Region, "aws", ParentImage+"/"+cmp.Or(s.cfg.ParentImageVersion, "x.x.x"))
	return imagebuilder.NewImageRecipe(s.ctx, p+"-worker", &imagebuilder.ImageRecipeArgs{
		Name: pulumi.String(name), Version: pulumi.String(recipeVersion(compVersion, parent)), ParentImage: pulumi.String(parent),
		Components: imagebuilder.ImageRecipeComponentArray{&imagebuilder.ImageRecipeComponentArgs{ComponentArn: component.Arn}},
		BlockDeviceMappings: imagebuilder.ImageRecipeBlockDeviceMappingArray{&imagebuilder.ImageRecipeBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &imagebuilder.ImageRecipeBlockDeviceMappingEbsArgs{Encrypted: pulumi.String("true"), VolumeSize: pulumi.Int(stacknames.VolumeGiB),
				VolumeType: pulumi.String("gp3"), DeleteOnTermination: pulumi.String("true")},
		}},
		Tags: s.tags,
	})
}

// imageInfrastructure is where the build runs: the subnet setup checked for
// a route to the package repositories and SSM (the default VPC's, unless
// --build-subnet-id), never the workers'.
func (s *stack) imageInfrastructure(profile *iam.InstanceProfile) (*imagebuilder.InfrastructureConfiguration, error) {
	p := s.names.Prefix()
	args := &imagebuilder.InfrastructureConfigurationArgs{
		Name: pulumi.String(s.names.Image()), InstanceProfileName: profile.Name,
		InstanceTypes:              pulumi.StringArray{pulumi.String(ImageBuildInstanceType)},
		TerminateInstanceOnFailure: pulumi.Bool(true),
		InstanceMetadataOptions:    &imagebuilder.InfrastructureConfigurationInstanceMetadataOptionsArgs{HttpTokens: pulumi.String("required")},
		Tags:                       s.tags,
	}
	// Always a group of its own, outbound only: without one, the build gets
	// the VPC's default group, which hardened accounts (CIS, Security Hub
	// EC2.2) leave without rules, and the build never reaches SSM. A group
	// needs a subnet (setup picks the default VPC's when none is given).
	sg, err := ec2.NewSecurityGroup(s.ctx, p+"-image-build", &ec2.SecurityGroupArgs{
		Description: pulumi.String("replicator " + s.cfg.Stack + ": AMI builds (outbound only)"), VpcId: pulumi.String(s.cfg.BuildVPCID),
		Egress: ec2.SecurityGroupEgressArray{&ec2.SecurityGroupEgressArgs{Protocol: pulumi.String("-1"), FromPort: pulumi.Int(0), ToPort: pulumi.Int(0),
			CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")}}},
		Tags: s.tags,
	})
	if err != nil {
		return nil, err
	}
	args.SubnetId = pulumi.String(s.cfg.BuildSubnetID)
	args.SecurityGroupIds = pulumi.StringArray{sg.ID()}
	return imagebuilder.NewInfrastructureConfiguration(s.ctx, p+"-worker", args)
}

func assume(service string) string {
	return fmt.Sprintf(`{"Version":"2012-10-17","Statement":[{"Effect":"Allow","Principal":{"Service":%q},"Action":"sts:AssumeRole"}]}`, service)
}
