package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

// The AMI build must reach SSM and the package repositories, or Image Builder
// waits 90 minutes before failing. ResolveNetwork refuses such a subnet before
// anything is deployed, and says what to do. Against moto's EC2.
func TestBuildNetworkIsCheckedFirst(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t, "eu-west-1")
	c := ec2.NewFromConfig(cfg)
	vpc, err := c.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.9.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	vpcID := vpc.Vpc.VpcId
	subnet := func(cidr string) string {
		s, err := c.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpcID, CidrBlock: aws.String(cidr)})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(s.Subnet.SubnetId)
	}
	table := func(sn string) *string {
		rt, err := c.CreateRouteTable(ctx, &ec2.CreateRouteTableInput{VpcId: vpcID})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := c.AssociateRouteTable(ctx, &ec2.AssociateRouteTableInput{RouteTableId: rt.RouteTable.RouteTableId, SubnetId: aws.String(sn)}); err != nil {
			t.Fatal(err)
		}
		return rt.RouteTable.RouteTableId
	}
	// The default VPC as AWS makes it (moto's has no route out).
	if err := devstack.ShapeDefaultVPC(ctx, c); err != nil {
		t.Fatal(err)
	}
	defaultVPCID, err := defaultVPC(ctx, c)
	if err != nil {
		t.Fatal(err)
	}
	defaults, _ := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})

	igw, _ := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpcID})

	isolated := subnet("10.9.1.0/24")
	table(isolated)
	publicNoIP := subnet("10.9.2.0/24")
	rt := table(publicNoIP)
	c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId})
	public := subnet("10.9.3.0/24")
	rt = table(public)
	c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt, DestinationCidrBlock: aws.String("0.0.0.0/0"), GatewayId: igw.InternetGateway.InternetGatewayId})
	c.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{SubnetId: aws.String(public), MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(true)}})
	private := subnet("10.9.4.0/24")
	eip, _ := c.AllocateAddress(ctx, &ec2.AllocateAddressInput{})
	nat, err := c.CreateNatGateway(ctx, &ec2.CreateNatGatewayInput{SubnetId: aws.String(public), AllocationId: eip.AllocationId})
	if err != nil {
		t.Fatal(err)
	}
	rt = table(private)
	c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: rt, DestinationCidrBlock: aws.String("0.0.0.0/0"), NatGatewayId: nat.NatGateway.NatGatewayId})

	for _, tc := range []struct {
		name, build, want string
	}{
		{"default VPC", "", ""},
		{"no route at all", isolated, "has no route to the internet and no VPC endpoint for ec2messages, imagebuilder, s3, ssm, ssmmessages"},
		{"internet gateway without public IPs", publicNoIP, "gives instances no public IP"},
		{"public subnet", public, ""},
		{"NAT gateway", private, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			n := &Network{BuildSubnetID: tc.build}
			err := ResolveNetwork(ctx, c, "eu-west-1", n, &bytes.Buffer{})
			if tc.want == "" {
				if err != nil {
					t.Fatal(err)
				}
				if tc.build != "" && n.BuildVPCID != aws.ToString(vpcID) {
					t.Errorf("build VPC %q", n.BuildVPCID)
				}
				if tc.build == "" {
					// Issue 22, 3 and 4: the build always gets a subnet (and
					// so its own security group), and the workers the
					// default VPC's subnets, one per zone, to try in turn.
					if n.BuildVPCID != defaultVPCID || n.BuildSubnetID == "" {
						t.Errorf("default build network: %q in %q", n.BuildSubnetID, n.BuildVPCID)
					}
					if len(n.SubnetIDs) != len(defaults.Subnets) || len(n.SubnetIDs) < 2 {
						t.Errorf("worker subnets %v, want the %d default ones", n.SubnetIDs, len(defaults.Subnets))
					}
				}
				return
			}
			if err == nil || !strings.Contains(err.Error(), tc.want) || !strings.Contains(err.Error(), "would hang for 90 minutes") {
				t.Errorf("got %v, want %q", err, tc.want)
			}
		})
	}

	// Endpoints stand in for a route.
	for _, svc := range []string{"ssm", "ssmmessages", "ec2messages"} {
		c.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: vpcID, ServiceName: aws.String("com.amazonaws.eu-west-1." + svc), VpcEndpointType: types.VpcEndpointTypeInterface})
	}
	c.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: vpcID, ServiceName: aws.String("com.amazonaws.eu-west-1.s3"), RouteTableIds: []string{aws.ToString(rt)}})
	// Issue 22, 4: without Image Builder's endpoint the build instance cannot
	// fetch its component.
	if err := ResolveNetwork(ctx, c, "eu-west-1", &Network{BuildSubnetID: isolated}, &bytes.Buffer{}); err == nil || !strings.Contains(err.Error(), "no VPC endpoint for imagebuilder") {
		t.Errorf("without the imagebuilder endpoint: %v", err)
	}
	c.CreateVpcEndpoint(ctx, &ec2.CreateVpcEndpointInput{VpcId: vpcID, ServiceName: aws.String("com.amazonaws.eu-west-1.imagebuilder"), VpcEndpointType: types.VpcEndpointTypeInterface})
	if err := ResolveNetwork(ctx, c, "eu-west-1", &Network{BuildSubnetID: isolated}, &bytes.Buffer{}); err != nil {
		t.Errorf("with endpoints: %v", err)
	}

	// Workers: the VPC comes from the subnets; a --vpc-id that disagrees is
	// an error; a subnet with no way out is a warning.
	var warn bytes.Buffer
	n := &Network{SubnetIDs: []string{private, public}}
	if err := ResolveNetwork(ctx, c, "eu-west-1", n, &warn); err != nil || n.VPCID != aws.ToString(vpcID) || warn.Len() != 0 {
		t.Errorf("workers: %v %q %s", err, n.VPCID, warn.String())
	}
	if err := ResolveNetwork(ctx, c, "eu-west-1", &Network{VPCID: "vpc-other", SubnetIDs: []string{private}}, &warn); err == nil || !strings.Contains(err.Error(), "the subnets are in") {
		t.Errorf("mismatched VPC: %v", err)
	}
	// A worker sends its job's events and metrics: EventBridge's and
	// CloudWatch's endpoints count too (issue 22, 4).
	warn.Reset()
	if err := ResolveNetwork(ctx, c, "eu-west-1", &Network{SubnetIDs: []string{isolated}}, &warn); err != nil ||
		!strings.Contains(warn.String(), "events") || !strings.Contains(warn.String(), "monitoring") {
		t.Errorf("an isolated worker subnet: %v %q", err, warn.String())
	}
	n = &Network{SubnetIDs: []string{publicNoIP}}
	if err := ResolveNetwork(ctx, c, "eu-west-1", n, &warn); err != nil || !strings.Contains(warn.String(), "warning: worker subnet "+publicNoIP) {
		t.Errorf("worker subnet without a way out: %v %q", err, warn.String())
	}
}
