package launch_test

import (
	"context"
	"fmt"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/middleware"

	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

var moto *devstack.Moto

func TestMain(m *testing.M) { devstack.Main(m, &moto) }

func client(t *testing.T, extra ...func(*middleware.Stack) error) *ec2.Client {
	t.Helper()
	cfg, err := moto.Config(context.Background(), "eu-west-1")
	if err != nil {
		t.Fatal(err)
	}
	cfg.APIOptions = append(cfg.APIOptions, extra...)
	return ec2.NewFromConfig(cfg)
}

// template makes a launch template whose versions boot the given images, in
// order (version 1 first), and returns its name.
func template(t *testing.T, c *ec2.Client, name string, images ...string) {
	t.Helper()
	ctx := context.Background()
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String(name),
		LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(images[0])}}); err != nil {
		t.Fatal(err)
	}
	for _, img := range images[1:] {
		if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String(name),
			LaunchTemplateData: &types.RequestLaunchTemplateData{ImageId: aws.String(img)}}); err != nil {
			t.Fatal(err)
		}
	}
}

func imageOf(t *testing.T, c *ec2.Client, instance string) string {
	t.Helper()
	out, err := c.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{instance}})
	if err != nil {
		t.Fatal(err)
	}
	return aws.ToString(out.Reservations[0].Instances[0].ImageId)
}

func twoImages(t *testing.T, c *ec2.Client) (string, string) {
	t.Helper()
	out, err := c.DescribeImages(context.Background(), &ec2.DescribeImagesInput{})
	if err != nil || len(out.Images) < 2 {
		t.Fatalf("moto images: %v", err)
	}
	return aws.ToString(out.Images[0].ImageId), aws.ToString(out.Images[1].ImageId)
}

// Rule: RunInstances without a Version launches the template's default
// version, which CreateLaunchTemplateVersion does not change. A launch must
// name the version the stack deployed, or every job boots the first AMI
// (which setup removes: InvalidAMIID).
func TestLaunchUsesTheStacksTemplateVersion(t *testing.T) {
	c := client(t)
	old, current := twoImages(t, c)
	template(t, c, "replicator-v-worker", old, current)
	l := &launch.Launcher{EC2: c, Stack: "v", LaunchTemplate: "replicator-v-worker", Version: "2", Table: "t"}
	id, err := l.Launch(context.Background(), "j-aaaaaaaaaaaaaaaa", "c7g.large")
	if err != nil {
		t.Fatal(err)
	}
	if got := imageOf(t, c, id); got != current {
		t.Errorf("launched from %s, want the current version's %s", got, current)
	}
	// What the old code did: no version, the default (version 1).
	l.Version = ""
	id, err = l.Launch(context.Background(), "j-bbbbbbbbbbbbbbbb", "c7g.large")
	if err != nil {
		t.Fatal(err)
	}
	if got := imageOf(t, c, id); got != old {
		t.Errorf("without a version, moto (as AWS) should launch the default version 1's %s, got %s", old, got)
	}
}

// capacityIn fails RunInstances in the named subnet as a zone out of
// capacity does (moto has no notion of capacity: the error is injected).
func capacityIn(subnet string) func(*middleware.Stack) error {
	return func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("no-capacity", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if ri, ok := in.Parameters.(*ec2.RunInstancesInput); ok && aws.ToString(ri.SubnetId) == subnet {
				return middleware.InitializeOutput{}, middleware.Metadata{}, &smithy.GenericAPIError{Code: "InsufficientInstanceCapacity",
					Message: "We currently do not have sufficient c7g.large capacity in the Availability Zone you requested"}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	}
}

func subnets(t *testing.T, c *ec2.Client, n int) []string {
	t.Helper()
	ctx := context.Background()
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.42.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	var ids []string
	for i := 0; i < n; i++ {
		sn, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String(fmt.Sprintf("10.42.%d.0/24", i)),
			AvailabilityZone: aws.String(fmt.Sprintf("eu-west-1%c", 'a'+i))})
		if err != nil {
			t.Fatal(err)
		}
		ids = append(ids, aws.ToString(sn.Subnet.SubnetId))
	}
	return ids
}

// Every subnet given to setup is used: a zone without capacity moves the
// launch to the next subnet; other errors stop at once.
func TestLaunchMovesOnWhenAZoneHasNoCapacity(t *testing.T) {
	plain := client(t)
	img, _ := twoImages(t, plain)
	template(t, plain, "replicator-c-worker", img)
	sn := subnets(t, plain, 3)
	c := client(t, capacityIn(sn[0]), capacityIn(sn[1]))
	l := &launch.Launcher{EC2: c, Stack: "c", LaunchTemplate: "replicator-c-worker", SubnetIDs: sn, Table: "t"}
	id, err := l.Launch(context.Background(), "j-cccccccccccccccc", "c7g.large")
	if err != nil {
		t.Fatal(err)
	}
	out, _ := plain.DescribeInstances(context.Background(), &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if got := aws.ToString(out.Reservations[0].Instances[0].SubnetId); got != sn[2] {
		t.Errorf("launched in %s, want the third subnet %s", got, sn[2])
	}
	// Tagged with the stack, found by the stack only.
	ws, _ := launch.Workers(context.Background(), plain, "c")
	if len(ws) != 1 || ws[0].ID != id || ws[0].JobID != "j-cccccccccccccccc" {
		t.Errorf("workers of stack c: %+v", ws)
	}
	if other, _ := launch.Workers(context.Background(), plain, "other"); len(other) != 0 {
		t.Errorf("another stack sees this stack's workers: %+v", other)
	}

	// No capacity anywhere: the job fails with a readable cause.
	l.SubnetIDs = sn[:2]
	_, err = l.Launch(context.Background(), "j-dddddddddddddddd", "c7g.large")
	if err == nil {
		t.Fatal("launched without capacity")
	}
	if cause := launch.Cause(err, "c7g.large"); cause != "no capacity for c7g.large in the stack's subnets right now (InsufficientInstanceCapacity): try again later, or another instance type (--instance-type)" {
		t.Errorf("cause %q", cause)
	}
}
