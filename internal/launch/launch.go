// Package launch starts and stops worker instances: RunInstances from the
// platform's launch template (AMI, instance profile, network), with IMDSv2
// required, an encrypted volume, shutdown meaning terminate, and tags naming the
// job. The user data carries only the job id and the table name.
package launch

import (
	"context"
	"encoding/base64"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/ec2/types"
)

// Tags on every worker instance.
const (
	TagJob  = "replicator:job-id"
	TagRole = "replicator:role"
	Role    = "worker"
)

// Launcher starts workers.
type Launcher struct {
	EC2            *ec2.Client
	LaunchTemplate string // name
	Table          string // passed to the worker in user data
	VolumeGiB      int32
}

// UserData is what a worker instance boots with.
func UserData(jobID, table string) string {
	return fmt.Sprintf("REPLICATOR_JOB_ID=%s\nREPLICATOR_TABLE=%s\n", jobID, table)
}

// Launch starts one worker for job id on an instance of the given type.
func (l *Launcher) Launch(ctx context.Context, jobID, instanceType string) (string, error) {
	tags := []types.Tag{
		{Key: aws.String(TagJob), Value: aws.String(jobID)},
		{Key: aws.String(TagRole), Value: aws.String(Role)},
		{Key: aws.String("Name"), Value: aws.String("replicator-" + jobID)},
	}
	size := l.VolumeGiB
	if size == 0 {
		size = 20
	}
	out, err := l.EC2.RunInstances(ctx, &ec2.RunInstancesInput{
		MinCount:       aws.Int32(1),
		MaxCount:       aws.Int32(1),
		LaunchTemplate: &types.LaunchTemplateSpecification{LaunchTemplateName: aws.String(l.LaunchTemplate)},
		InstanceType:   types.InstanceType(instanceType),
		UserData:       aws.String(base64.StdEncoding.EncodeToString([]byte(UserData(jobID, l.Table)))),
		MetadataOptions: &types.InstanceMetadataOptionsRequest{
			HttpTokens: types.HttpTokensStateRequired, HttpEndpoint: types.InstanceMetadataEndpointStateEnabled,
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
	})
	if err != nil {
		return "", fmt.Errorf("launch worker: %w", err)
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
	Launched  time.Time
}

// Workers lists pending and running instances tagged as workers.
func Workers(ctx context.Context, client *ec2.Client) ([]Instance, error) {
	p := ec2.NewDescribeInstancesPaginator(client, &ec2.DescribeInstancesInput{Filters: []types.Filter{
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
				i := Instance{ID: aws.ToString(in.InstanceId), Launched: aws.ToTime(in.LaunchTime)}
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
