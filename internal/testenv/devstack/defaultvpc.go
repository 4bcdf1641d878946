package devstack

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// ShapeDefaultVPC makes moto's default VPC of the client's region what AWS
// makes: a route to an internet gateway, and public IPs on its default
// subnets (moto's has neither, and setup checks that the AMI build can get
// out). Idempotent.
func ShapeDefaultVPC(ctx context.Context, c *ec2.Client) error {
	vpcs, err := c.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(vpcs.Vpcs) == 0 {
		return fmt.Errorf("moto's default VPC: %v", err)
	}
	vpc := vpcs.Vpcs[0].VpcId
	mains, err := c.DescribeRouteTables(ctx, &ec2.DescribeRouteTablesInput{Filters: []types.Filter{
		{Name: aws.String("vpc-id"), Values: []string{aws.ToString(vpc)}}, {Name: aws.String("association.main"), Values: []string{"true"}}}})
	if err != nil || len(mains.RouteTables) == 0 {
		return fmt.Errorf("main route table of the default VPC: %v", err)
	}
	for _, r := range mains.RouteTables[0].Routes {
		if aws.ToString(r.DestinationCidrBlock) == "0.0.0.0/0" {
			return nil
		}
	}
	igw, err := c.CreateInternetGateway(ctx, &ec2.CreateInternetGatewayInput{})
	if err != nil {
		return err
	}
	if _, err := c.AttachInternetGateway(ctx, &ec2.AttachInternetGatewayInput{InternetGatewayId: igw.InternetGateway.InternetGatewayId, VpcId: vpc}); err != nil {
		return err
	}
	if _, err := c.CreateRoute(ctx, &ec2.CreateRouteInput{RouteTableId: mains.RouteTables[0].RouteTableId, DestinationCidrBlock: aws.String("0.0.0.0/0"),
		GatewayId: igw.InternetGateway.InternetGatewayId}); err != nil {
		return err
	}
	subnets, err := c.DescribeSubnets(ctx, &ec2.DescribeSubnetsInput{Filters: []types.Filter{{Name: aws.String("default-for-az"), Values: []string{"true"}}}})
	if err != nil {
		return err
	}
	for _, sn := range subnets.Subnets {
		if _, err := c.ModifySubnetAttribute(ctx, &ec2.ModifySubnetAttributeInput{SubnetId: sn.SubnetId,
			MapPublicIpOnLaunch: &types.AttributeBooleanValue{Value: aws.Bool(true)}}); err != nil {
			return err
		}
	}
	return nil
}
