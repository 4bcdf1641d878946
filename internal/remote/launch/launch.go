// Package launch starts and finds worker instances: RunInstances from the
// stack's launch template, at the version the stack deployed (AMI, instance
// profile, security groups, IMDSv2, encrypted volume, shutdown meaning
// terminate), in each of the stack's subnets in turn until one has capacity,
// tagged with the stack, the worker role and the job. The user data carries
// only the job id and the table name.
package launch

import (
	"context"
	"encoding/base64"
	"errors"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/smithy-go"

	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Tags on every worker instance.
const (
	TagJob   = stacknames.TagJob
	TagRole  = stacknames.TagRole
	TagStack = stacknames.TagStack
	Role     = stacknames.RoleWorker
)

// Launcher starts workers of one stack.
type Launcher struct {
	EC2            *ec2.Client
	Stack          string
	LaunchTemplate string // name
	// Version of the launch template to launch ("" for its default version).
	Version string
	// SubnetIDs are tried in order: a zone out of capacity for the instance
	// type moves the launch to the next. None: the template's (default VPC).
	SubnetIDs []string
	Table     string // passed to the worker in user data
	VolumeGiB int32
}

// UserData is what a worker instance boots with.
func UserData(jobID, table string) string {
	return fmt.Sprintf("REPLICATOR_JOB_ID=%s\nREPLICATOR_TABLE=%s\n", jobID, table)
}

// capacityCodes are RunInstances errors that another zone may not have.
var capacityCodes = map[string]bool{
	"InsufficientInstanceCapacity": true, "InsufficientCapacity": true, "Unsupported": true, "InsufficientFreeAddressesInSubnet": true,
}

// Launch starts one worker for job id on an instance of the given type.
func (l *Launcher) Launch(ctx context.Context, jobID, instanceType string) (string, error) {
	subnets := l.SubnetIDs
	if len(subnets) == 0 {
		subnets = []string{""}
	}
	var err error
	for i, subnet := range subnets {
		var id string
		id, err = l.launchIn(ctx, jobID, instanceType, subnet)
		if err == nil {
			return id, nil
		}
		var ae smithy.APIError
		if !errors.As(err, &ae) || !capacityCodes[ae.ErrorCode()] || i == len(subnets)-1 {
			break
		}
	}
	return "", fmt.Errorf("launch worker: %w", err)
}

func (l *Launcher) launchIn(ctx context.Context, jobID, instanceType, subnet string) (string, error) {
	tags := []types.Tag{
		{Key: aws.String(TagStack), Value: aws.String(l.Stack)},
		{Key: aws.String(TagRole), Value: aws.String(Role)},
		{Key: aws.String(TagJob), Value: aws.String(jobID)},
		{Key: aws.String("Name"), Value: aws.String("replicator-" + l.Stack + "-" + jobID)},
	}
	size := l.VolumeGiB
	if size == 0 {
		size = stacknames.VolumeGiB
	}
	lt := &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String(l.LaunchTemplate)}
	if l.Version != "" {
		lt.Version = aws.String(l.Version)
	}
	in := &ec2.RunInstancesInput{
		MinCount:       aws.Int32(1),
		MaxCount:       aws.Int32(1),
		LaunchTemplate: lt,
		InstanceType:   types.InstanceType(instanceType),
		UserData:       aws.String(base64.StdEncoding.EncodeToString([]byte(UserData(jobID, l.Table)))),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled, HttpPutResponseHopLimit: aws.Int32(1),
		},
		InstanceInitiatedShutdownBehavior: types.ShutdownBehaviorTerminate,
		BlockDeviceMappings: []types.BlockDeviceMapping{{
			DeviceName: aws.String("/dev/xvda"),
			Ebs:        &types.EbsBlockDevice{Encrypted: aws.Bool(true), VolumeSize: aws.Int32(size), VolumeType: types.VolumeTypeGp3, DeleteOnTermination: aws.Bool(true)},
		}},
		TagSpecifications: []types.TagSpecification{
			{ResourceType: types.ResourceTypeInstance, Tags: tags},
			{ResourceType: types.ResourceTypeVolume, Tags: tags},
		},
	}
	if subnet != "" {
		in.SubnetId = aws.String(subnet)
	}
	out, err := l.EC2.RunInstances(ctx, in)
	if err != nil {
		return "", err
	}
	return aws.ToString(out.Instances[0].InstanceId), nil
}

// Terminate stops instances (already gone is fine).
func Terminate(ctx context.Context, client *ec2.Client, ids ...string) error {
	if len(ids) == 0 {
		return nil
	}
	_, err := client.TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: ids})
	if err != nil {
		return fmt.Errorf("terminate %v: %w", ids, err)
	}
	return nil
}

// Instance is a live worker instance.
type Instance struct {
	ID, JobID string
	Image     string // its AMI
	Launched  time.Time
}

// Workers lists the pending and running worker instances of stack.
func Workers(ctx context.Context, client *ec2.Client, stack string) ([]Instance, error) {
	if stack == "" {
		return nil, errors.New("list workers: no stack given")
	}
	p := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{Filters: []types.Filter{
		{Name: aws.String("tag:" + TagStack), Values: []string{stack}},
		{Name: aws.String("tag:" + TagRole), Values: []string{Role}},
		{Name: aws.String("instance-state-name"), Values: []string{"pending", "running"}},
	}})
	var out []Instance
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list workers: %w", err)
		}
		for _, r := range page.Reservations {
			for _, in := range r.Instances {
				i := Instance{ID: aws.ToString(in.InstanceId), Image: aws.ToString(in.ImageId), Launched: aws.ToTime(in.LaunchTime)}
				for _, t := range in.Tags {
					if aws.ToString(t.Key) == TagJob {
						i.JobID = aws.ToString(t.Value)
					}
				}
				out = append(out, i)
			}
		}
	}
	return out, nil
}

// Cause is a launch failure said for the job's owner: what went wrong and
// what to do, without the raw AWS text (request ids, ARNs), which goes to the
// API's log.
func Cause(err error, instanceType string) string {
	var ae smithy.APIError
	if !errors.As(err, &ae) {
		return "the worker could not be launched; see the API's log"
	}
	switch code := ae.ErrorCode(); {
	case capacityCodes[code]:
		return fmt.Sprintf("no capacity for %s in the stack's subnets right now (%s): try again later, or another instance type (--instance-type)", instanceType, code)
	case code == "InstanceLimitExceeded" || code == "VcpuLimitExceeded" || code == "MaxSpotInstanceCountExceeded":
		return fmt.Sprintf("the account's EC2 quota does not allow another %s (%s): raise the vCPU quota or wait for a job to end", instanceType, code)
	case code == "InvalidAMIID.NotFound" || code == "InvalidAMIID.Unavailable" || code == "InvalidLaunchTemplateName.NotFoundException":
		return fmt.Sprintf("the worker image or launch template is missing (%s): run replicator setup again", code)
	case code == "UnauthorizedOperation" || code == "AccessDenied":
		return fmt.Sprintf("the platform may not launch this worker (%s): run replicator setup again", code)
	default:
		return fmt.Sprintf("the worker could not be launched (%s); see the API's log", code)
	}
}
