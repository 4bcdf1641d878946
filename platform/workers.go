package platform

import (
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/iam"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// workerFleet is what a worker instance is launched from.
type workerFleet struct {
	role           *iam.Role
	launchTemplate *ec2.LaunchTemplate
}

// workers declares the worker's role, instance profile, security group and
// launch template. Every launch uses the template's latest version (the
// Lambda is told its number, and it is the default too), so a new AMI is used
// by the next job and no launch refers to an image setup has removed.
func (s *stack) workers(d *dataStores, img *builtImage) (*workerFleet, error) {
	p := s.names.Prefix()
	role, err := iam.NewRole(s.ctx, p+"-worker", &iam.RoleArgs{AssumeRolePolicy: pulumi.String(assume("ec2.amazonaws.com")), Tags: s.tags})
	if err != nil {
		return nil, err
	}
	profile, err := iam.NewInstanceProfile(s.ctx, p+"-worker", &iam.InstanceProfileArgs{Role: role.Name, Tags: s.tags})
	if err != nil {
		return nil, err
	}
	groups := pulumi.ToStringArray(s.cfg.SecurityGroupIDs)
	if len(s.cfg.SecurityGroupIDs) == 0 {
		// Nothing reaches a worker; it reaches the databases and AWS's APIs.
		sg, err := ec2.NewSecurityGroup(s.ctx, p+"-worker", &ec2.SecurityGroupArgs{
			Description: pulumi.String("replicator " + s.cfg.Stack + ": workers (outbound only)"), VpcId: pulumi.String(s.cfg.VPCID),
			Egress: s.workerEgress(), Tags: s.tags,
		})
		if err != nil {
			return nil, err
		}
		groups = pulumi.StringArray{sg.ID()}
	}
	workerTags := s.tagsWith(stacknames.TagRole, stacknames.RoleWorker)
	lt, err := ec2.NewLaunchTemplate(s.ctx, p+"-worker", &ec2.LaunchTemplateArgs{
		Name:                 pulumi.String(s.names.LaunchTemplate()),
		UpdateDefaultVersion: pulumi.Bool(true),
		ImageId:              img.amiID,
		InstanceType:         pulumi.String(s.cfg.DefaultInstanceType),
		IamInstanceProfile:   &ec2.LaunchTemplateIamInstanceProfileArgs{Arn: profile.Arn},
		VpcSecurityGroupIds:  groups,
		MetadataOptions: &ec2.LaunchTemplateMetadataOptionsArgs{HttpTokens: pulumi.String("required"), HttpEndpoint: pulumi.String("enabled"),
			HttpPutResponseHopLimit: pulumi.Int(1)},
		// The worker unit powers the instance off when the job ends.
		InstanceInitiatedShutdownBehavior: pulumi.String("terminate"),
		BlockDeviceMappings: ec2.LaunchTemplateBlockDeviceMappingArray{&ec2.LaunchTemplateBlockDeviceMappingArgs{
			DeviceName: pulumi.String("/dev/xvda"),
			Ebs: &ec2.LaunchTemplateBlockDeviceMappingEbsArgs{Encrypted: pulumi.String("true"), VolumeType: pulumi.String("gp3"),
				VolumeSize: pulumi.Int(stacknames.VolumeGiB), DeleteOnTermination: pulumi.String("true")},
		}},
		TagSpecifications: ec2.LaunchTemplateTagSpecificationArray{
			&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("instance"), Tags: workerTags},
			&ec2.LaunchTemplateTagSpecificationArgs{ResourceType: pulumi.String("volume"), Tags: workerTags},
		},
		Tags: s.tags,
	})
	if err != nil {
		return nil, err
	}
	return &workerFleet{role: role, launchTemplate: lt}, nil
}

// workerEgress is what workers may reach: HTTPS (AWS's APIs) and the
// database ports setup was given, or everything with --egress-ports all. A
// job cannot then use a worker to reach other services of the VPC.
func (s *stack) workerEgress() ec2.SecurityGroupEgressArray {
	anywhere := func(protocol string, from, to int) *ec2.SecurityGroupEgressArgs {
		return &ec2.SecurityGroupEgressArgs{Protocol: pulumi.String(protocol), FromPort: pulumi.Int(from), ToPort: pulumi.Int(to),
			CidrBlocks: pulumi.StringArray{pulumi.String("0.0.0.0/0")}, Ipv6CidrBlocks: pulumi.StringArray{pulumi.String("::/0")}}
	}
	if s.cfg.EgressAllPorts {
		return ec2.SecurityGroupEgressArray{anywhere("-1", 0, 0)}
	}
	rules := ec2.SecurityGroupEgressArray{anywhere("tcp", HTTPSPort, HTTPSPort)}
	for _, p := range s.cfg.EgressPorts {
		rules = append(rules, anywhere("tcp", p, p))
	}
	return rules
}
