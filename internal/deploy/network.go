package deploy

import (
	"context"
	"fmt"
	"io"
	"slices"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"

	"github.com/replicatorhq/replicator/platform"
)

// The VPC endpoints that stand in for a route out: Image Builder drives the
// build through SSM, the build instance fetches its component from Image
// Builder (imagebuilder:GetComponent, in EC2InstanceProfileForImageBuilder)
// and the packages from S3; a worker calls DynamoDB, Secrets Manager,
// CloudWatch Logs, EventBridge (its job's events), CloudWatch (metrics,
// "monitoring") and S3.
var (
	buildEndpoints  = []string{"ssm", "ssmmessages", "ec2messages", "imagebuilder", "s3"}
	workerEndpoints = []string{"dynamodb", "secretsmanager", "logs", "events", "monitoring", "s3"}
)

// Network is where workers run and where the AMI is built.
type Network struct {
	VPCID            string
	SubnetIDs        []string
	SecurityGroupIDs []string
	BuildSubnetID    string
	BuildVPCID       string
}

// ResolveNetwork checks the network settings of a setup before anything is
// deployed, and fills in the VPCs: the workers' from their subnets (or the
// region's default VPC), the build's from its subnet. The AMI build must reach
// SSM and the package repositories: without that, Image Builder waits 90
// minutes before it fails, so a build subnet with no such route is refused now,
// with the fix. The workers' subnets get a warning when they have no route out
// (they need AWS's APIs and the databases).
func ResolveNetwork(ctx context.Context, c *ec2.Client, region string, n *Network, warn io.Writer) error {
	if len(n.SubnetIDs) > 0 {
		vpc, err := subnetsVPC(ctx, c, n.SubnetIDs)
		if err != nil {
			return err
		}
		if n.VPCID != "" && n.VPCID != vpc {
			return fmt.Errorf("--vpc-id %s: the subnets are in %s; drop --vpc-id or give subnets of that VPC", n.VPCID, vpc)
		}
		n.VPCID = vpc
		for _, s := range n.SubnetIDs {
			if ok, why, err := routeOut(ctx, c, s, vpc, workerEndpoints); err != nil {
				return err
			} else if !ok {
				fmt.Fprintf(warn, "warning: worker subnet %s %s: workers there cannot reach AWS's APIs unless a proxy does\n", s, why)
			}
		}
	} else if n.VPCID != "" {
		return fmt.Errorf("--vpc-id %s needs --subnet-ids in that VPC (without them workers go to the default VPC)", n.VPCID)
	}
	if len(n.SecurityGroupIDs) > 0 {
		vpc := n.VPCID
		if vpc == "" {
			v, err := defaultVPC(ctx, c)
			if err != nil {
				return err
			}
			if v == "" {
				return fmt.Errorf("--security-group-ids: this region has no default VPC; pass --subnet-ids of the groups' VPC")
			}
			vpc, n.VPCID = v, v
		}
		out, err := c.DescribeSecurityGroups(ctx, &ec2.DescribeSecurityGroupsInput{GroupIds: n.SecurityGroupIDs})
		if err != nil {
			return fmt.Errorf("--security-group-ids: %w", err)
		}
		for _, g := range out.SecurityGroups {
			if aws.ToString(g.VpcId) != vpc {
				return fmt.Errorf("--security-group-ids: %s is in %s, the workers' subnets in %s", aws.ToString(g.GroupId), aws.ToString(g.VpcId), vpc)
			}
		}
	}
	if n.VPCID == "" {
		vpc, err := defaultVPC(ctx, c)
		if err != nil {
			return err
		}
		if vpc == "" {
			return fmt.Errorf("region %s has no default VPC for the workers: pass --subnet-ids (subnets whose databases the workers must reach)", region)
		}
		n.VPCID = vpc
	}
	if len(n.SubnetIDs) == 0 {
		// Recorded, so that a launch tries the next zone when one has no
		// Graviton capacity (with no subnet, EC2 picks one zone, and only it).
		subnets, err := defaultSubnets(ctx, c, n.VPCID, "")
		if err != nil {
			return err
		}
		if len(subnets) == 0 {
			return fmt.Errorf("the default VPC %s has no default subnet: pass --subnet-ids", n.VPCID)
		}
		n.SubnetIDs = subnets
	}
	if n.BuildSubnetID == "" {
		// The build always gets a subnet and its own outbound-only security
		// group: the default VPC's default group has no rules in accounts
		// hardened to CIS / Security Hub EC2.2, and a build there never
		// reaches SSM.
		vpc, err := defaultVPC(ctx, c)
		if err != nil {
			return err
		}
		if vpc == "" {
			return fmt.Errorf("region %s has no default VPC to build the worker AMI in: pass --build-subnet-id, a subnet with a route to the internet (or to SSM and S3 endpoints)", region)
		}
		subnets, err := defaultSubnets(ctx, c, vpc, platform.ImageBuildInstanceType)
		if err != nil {
			return err
		}
		if len(subnets) == 0 {
			return fmt.Errorf("the default VPC %s has no default subnet in a zone offering %s: pass --build-subnet-id", vpc, platform.ImageBuildInstanceType)
		}
		n.BuildSubnetID = subnets[0]
	}
	vpc, err := subnetsVPC(ctx, c, []string{n.BuildSubnetID})
	if err != nil {
		return fmt.Errorf("--build-subnet-id: %w", err)
	}
	n.BuildVPCID = vpc
	ok, why, err := routeOut(ctx, c, n.BuildSubnetID, vpc, buildEndpoints)
	if err != nil {
		return err
	}
	if !ok {
		return fmt.Errorf("--build-subnet-id %s %s: the AMI build would hang for 90 minutes; give a subnet with a route to the internet (an internet gateway with public IPs, or a NAT gateway), or add VPC endpoints for ssm, ssmmessages, ec2messages, imagebuilder and an S3 gateway endpoint", n.BuildSubnetID, why)
	}
	return nil
}

func subnetsVPC(ctx context.Context, c *ec2.Client, ids []string) (string, error) {
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: ids})
	if err != nil {
		return "", fmt.Errorf("subnets %s: %w", strings.Join(ids, ", "), err)
	}
	vpc := ""
	for _, s := range out.Subnets {
		v := aws.ToString(s.VpcId)
		if vpc != "" && v != vpc {
			return "", fmt.Errorf("subnets %s are in different VPCs (%s, %s): give subnets of one VPC", strings.Join(ids, ", "), vpc, v)
		}
		vpc = v
	}
	return vpc, nil
}

// defaultSubnets are the default subnets of vpc, by zone name (stable from
// one setup to the next), in zones that offer instanceType when one is given.
func defaultSubnets(ctx context.Context, c *ec2.Client, vpc, instanceType string) ([]string, error) {
	out, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return nil, fmt.Errorf("default subnets of %s: %w", vpc, err)
	}
	offered := map[string]bool{}
	if instanceType != "" {
		offers, err := c.DescribeInstanceTypeOfferings(ctx, &ec2.DescribeInstanceTypeOfferingsInput{LocationType: types.LocationTypeAvailabilityZone,
			Filters: []types.Filter{{Name: aws.String("instance-type"), Values: []string{instanceType}}}})
		if err != nil {
			return nil, fmt.Errorf("zones offering %s: %w", instanceType, err)
		}
		for _, o := range offers.InstanceTypeOfferings {
			offered[aws.ToString(o.Location)] = true
		}
	}
	sn := out.Subnets
	slices.SortFunc(sn, func(a, b types.Subnet) int {
		return strings.Compare(aws.ToString(a.AvailabilityZone), aws.ToString(b.AvailabilityZone))
	})
	var ids []string
	for _, s := range sn {
		if instanceType == "" || offered[aws.ToString(s.AvailabilityZone)] {
			ids = append(ids, aws.ToString(s.SubnetId))
		}
	}
	return ids, nil
}

func defaultVPC(ctx context.Context, c *ec2.Client) (string, error) {
	out, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil {
		return "", fmt.Errorf("find the default VPC: %w", err)
	}
	if len(out.Vpcs) == 0 {
		return "", nil
	}
	return aws.ToString(out.Vpcs[0].VpcId), nil
}

// routeOut says whether an instance in subnet reaches the services: a default
// route through a NAT gateway (or a transit gateway or NAT instance), through
// an internet gateway with public IPs on launch, or a VPC endpoint for each
// service. When not, why says what is missing.
func routeOut(ctx context.Context, c *ec2.Client, subnet, vpc string, services []string) (ok bool, why string, err error) {
	rts, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("association.subnet-id"), Values: []string{subnet}}}})
	if err != nil {
		return false, "", fmt.Errorf("route table of %s: %w", subnet, err)
	}
	if len(rts.RouteTables) == 0 {
		// No explicit association: the VPC's main route table applies.
		rts, err = c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
			{Name: aws.String("vpc-id"), Values: []string{vpc}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
		if err != nil {
			return false, "", fmt.Errorf("main route table of %s: %w", vpc, err)
		}
	}
	viaIGW := false
	for _, rt := range rts.RouteTables {
		for _, r := range rt.Routes {
			if aws.ToString(r.DestinationCidrBlock) != "0.0.0.0/0" || r.State == types.RouteStateBlackhole {
				continue
			}
			switch {
			case r.NatGatewayId != nil, r.TransitGatewayId != nil, r.NetworkInterfaceId != nil, r.InstanceId != nil:
				return true, "", nil
			case strings.HasPrefix(aws.ToString(r.GatewayId), "igw-"):
				viaIGW = true
			}
		}
	}
	if viaIGW {
		sn, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{SubnetIds: []string{subnet}})
		if err != nil {
			return false, "", err
		}
		if len(sn.Subnets) > 0 && aws.ToBool(sn.Subnets[0].MapPublicIpOnLaunch) {
			return true, "", nil
		}
		return false, "routes to an internet gateway but gives instances no public IP (MapPublicIpOnLaunch is off)", nil
	}
	eps, err := c.DescribeVpcEndpoints(ctx, &ec2.DescribeVpcEndpointsInput{Filters: []types.Filter{{Name: aws.String("vpc-id"), Values: []string{vpc}}}})
	if err != nil {
		return false, "", fmt.Errorf("VPC endpoints of %s: %w", vpc, err)
	}
	have := map[string]bool{}
	for _, e := range eps.VpcEndpoints {
		name := aws.ToString(e.ServiceName)
		have[name[strings.LastIndex(name, ".")+1:]] = true
	}
	var missing []string
	for _, svc := range services {
		if !have[svc] {
			missing = append(missing, svc)
		}
	}
	if len(missing) == 0 {
		return true, "", nil
	}
	slices.Sort(missing)
	return false, "has no route to the internet and no VPC endpoint for " + strings.Join(missing, ", "), nil
}
