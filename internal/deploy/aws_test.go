package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	etypes "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/replicatorhq/replicator/internal/devstack"
)

// The state backend's bootstrap, its purge and the AMI clean-up, against moto.
func TestBootstrapPurgeAndImages(t *testing.T) {
	ctx := context.Background()
	moto, err := devstack.StartMoto(ctx)
	if err != nil {
		t.Fatal(err)
	}
	defer moto.Stop()
	cfg, err := config.LoadDefaultConfig(ctx, config.WithRegion("eu-west-1"), config.WithBaseEndpoint(moto.URL),
		config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIA", "secret", "")),
		config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil))
	if err != nil {
		t.Fatal(err)
	}
	acct, err := WhoAmI(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	backend, secrets, err := Bootstrap(ctx, cfg, acct, &out)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if backend != "s3://replicator-state-"+acct.ID+"-eu-west-1" || secrets != "awskms://alias/replicator-state?region=eu-west-1" {
		t.Errorf("backend %s, secrets %s", backend, secrets)
	}
	if !strings.Contains(out.String(), "Creating the state bucket") || !strings.Contains(out.String(), "Creating the state key") {
		t.Errorf("bootstrap output: %s", out.String())
	}
	out.Reset()
	if _, _, err := Bootstrap(ctx, cfg, acct, &out); err != nil || out.Len() != 0 {
		t.Errorf("second bootstrap is not a no-op: %v %q", err, out.String())
	}

	// Two worker AMIs of the stack: setup keeps the current one, teardown none.
	ec2c := ec2.NewFromConfig(cfg)
	imgs, _ := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	var amis []string
	for i := 0; i < 2; i++ {
		inst, err := ec2c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: imgs.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		img, err := ec2c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: inst.Instances[0].InstanceId, Name: aws.String("worker-" + string(rune('a'+i))),
			TagSpecifications: []etypes.TagSpecification{{ResourceType: etypes.ResourceTypeImage, Tags: []etypes.Tag{
				{Key: aws.String("replicator:stack"), Value: aws.String("prod")}, {Key: aws.String("replicator:role"), Value: aws.String("worker-image")}}}}})
		if err != nil {
			t.Fatal(err)
		}
		amis = append(amis, aws.ToString(img.ImageId))
	}
	if n, err := RemoveImages(ctx, cfg, "prod", amis[1], &out); err != nil || n != 1 {
		t.Fatalf("rebuild clean-up: %d %v", n, err)
	}
	if n, err := RemoveImages(ctx, cfg, "prod", "", &out); err != nil || n != 1 {
		t.Fatalf("teardown clean-up: %d %v", n, err)
	}

	if err := Purge(ctx, cfg, acct, &out); err != nil {
		t.Fatalf("purge: %v", err)
	}
	if _, err := s3.NewFromConfig(cfg).HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(StateBucket(acct))}); err == nil {
		t.Errorf("state bucket left after purge")
	}
	if _, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(StateKeyAlias)}); err == nil {
		t.Errorf("state key alias left after purge")
	}
}
