package deploy

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	etypes "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/kms"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

// The state backend's bootstrap, its purge and the AMI clean-up, against moto.
func TestBootstrapPurgeAndImages(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t, "eu-west-1")
	acct, err := WhoAmI(ctx, cfg)
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	backend, secrets, err := Bootstrap(ctx, cfg, acct, &out)
	if err != nil {
		t.Fatalf("bootstrap: %v", err)
	}
	if backend != "s3://replicator-state-"+acct.ID+"-eu-west-1?region=eu-west-1" || secrets != "awskms://alias/replicator-state?region=eu-west-1" {
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
	described, _ := ec2c.DescribeImages(ctx, &ec2.DescribeImagesInput{ImageIds: amis})
	var snaps []string
	for _, img := range described.Images {
		for _, bd := range img.BlockDeviceMappings {
			if bd.Ebs != nil && bd.Ebs.SnapshotId != nil {
				snaps = append(snaps, aws.ToString(bd.Ebs.SnapshotId))
			}
		}
	}
	// Issue 22, 4: a snapshot whose deletion failed once (left tagged by an
	// earlier run) is found again, not billed forever.
	vol, _ := ec2c.CreateVolume(ctx, &ec2.CreateVolumeInput{AvailabilityZone: aws.String("eu-west-1a"), Size: aws.Int32(1)})
	lost, err := ec2c.CreateSnapshot(ctx, &ec2.CreateSnapshotInput{VolumeId: vol.VolumeId, TagSpecifications: []etypes.TagSpecification{{ResourceType: etypes.ResourceTypeSnapshot,
		Tags: []etypes.Tag{{Key: aws.String("replicator:stack"), Value: aws.String("prod")}, {Key: aws.String("replicator:role"), Value: aws.String("worker-image-snapshot")}}}}})
	if err != nil {
		t.Fatal(err)
	}
	snaps = append(snaps, aws.ToString(lost.SnapshotId))
	if n, err := RemoveImages(ctx, cfg, "prod", []string{amis[1]}, &out); err != nil || n != 1 {
		t.Fatalf("rebuild clean-up: %d %v", n, err)
	}
	if n, err := RemoveImages(ctx, cfg, "prod", nil, &out); err != nil || n != 1 {
		t.Fatalf("teardown clean-up: %d %v", n, err)
	}
	for _, id := range snaps {
		if left, err := ec2c.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{SnapshotIds: []string{id}}); err == nil && len(left.Snapshots) > 0 {
			t.Errorf("snapshot %s of a removed worker image is left", id)
		}
	}

	// Issue 22, 1: the bucket holds every stack's state; purging one stack
	// removed the others' (their resources then billed on, unmanaged).
	s3c := s3.NewFromConfig(cfg)
	bucket := aws.String(StateBucket(acct))
	put := func(key string) {
		for i := 0; i < 2; i++ { // two versions each
			if _, err := s3c.PutObject(ctx, &s3.PutObjectInput{Bucket: bucket, Key: aws.String(key), Body: strings.NewReader("{}")}); err != nil {
				t.Fatal(err)
			}
		}
	}
	for _, stack := range []string{"prod", "staging", "prod2"} {
		put(".pulumi/stacks/replicator/" + stack + ".json")
		put(".pulumi/stacks/replicator/" + stack + ".json.bak")
		put(".pulumi/history/replicator/" + stack + "/" + stack + "-1.history.json")
		put(".pulumi/backups/replicator/" + stack + "/" + stack + ".1.json")
		put(".pulumi/locks/organization/replicator/" + stack + "/lock-1.json")
	}
	put(".pulumi/meta.yaml")
	keys := func() []string {
		var out []string
		vs, err := s3c.ListObjectVersions(ctx, &s3.ListObjectVersionsInput{Bucket: bucket})
		if err != nil {
			t.Fatal(err)
		}
		for _, v := range vs.Versions {
			out = append(out, aws.ToString(v.Key))
		}
		return out
	}
	out.Reset()
	if err := Purge(ctx, cfg, acct, "prod", &out); err != nil {
		t.Fatalf("purge prod: %v", err)
	}
	for _, k := range keys() {
		if strings.Contains(k, "/prod/") || strings.Contains(k, "/prod.") {
			t.Errorf("prod's %s is left (a version)", k)
		}
	}
	if n := len(keys()); n != 2*(5*2+1) {
		t.Errorf("%d versions left, want staging's and prod2's (20) and meta.yaml's (2)", n)
	}
	if !strings.Contains(out.String(), "The state bucket and key stay: they hold the state of stack(s) prod2, staging") {
		t.Errorf("purge should name the stacks whose state stays: %s", out.String())
	}
	if _, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(StateKeyAlias)}); err != nil {
		t.Errorf("the state key went while other stacks use it: %v", err)
	}
	for _, stack := range []string{"staging", "prod2"} {
		if err := Purge(ctx, cfg, acct, stack, &out); err != nil {
			t.Fatalf("purge %s: %v", stack, err)
		}
	}
	if _, err := s3c.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: bucket}); err == nil {
		t.Errorf("state bucket left after purge")
	}
	if _, err := kms.NewFromConfig(cfg).DescribeKey(ctx, &kms.DescribeKeyInput{KeyId: aws.String(StateKeyAlias)}); err == nil {
		t.Errorf("state key alias left after purge")
	}
}

// Rule: a launch template version that a launch may use (the default, and the
// latest, which the stack's Lambda names) must never point at a deregistered
// AMI, nor may an instance's AMI go while it lives: setup keeps them.
func TestImagesInUseAreKept(t *testing.T) {
	ctx := context.Background()
	cfg := motoConfig(t, "eu-west-1")
	c := ec2.NewFromConfig(cfg)
	base, _ := c.DescribeImages(ctx, &ec2.DescribeImagesInput{})
	stackTags := []etypes.Tag{{Key: aws.String("replicator:stack"), Value: aws.String("prod")}}
	image := func(name string) string {
		inst, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: base.Images[0].ImageId, MinCount: aws.Int32(1), MaxCount: aws.Int32(1)})
		if err != nil {
			t.Fatal(err)
		}
		img, err := c.CreateImage(ctx, &ec2.CreateImageInput{InstanceId: inst.Instances[0].InstanceId, Name: aws.String(name),
			TagSpecifications: []etypes.TagSpecification{{ResourceType: etypes.ResourceTypeImage, Tags: append(stackTags,
				etypes.Tag{Key: aws.String("replicator:role"), Value: aws.String("worker-image")})}}})
		if err != nil {
			t.Fatal(err)
		}
		return aws.ToString(img.ImageId)
	}
	v1, v2, running, unused := image("v1"), image("v2"), image("running"), image("unused")
	if _, err := c.CreateLaunchTemplate(ctx, &ec2.CreateLaunchTemplateInput{LaunchTemplateName: aws.String("replicator-prod-worker"),
		LaunchTemplateData: &etypes.RequestLaunchTemplateData{ImageId: aws.String(v1)}}); err != nil {
		t.Fatal(err)
	}
	if _, err := c.CreateLaunchTemplateVersion(ctx, &ec2.CreateLaunchTemplateVersionInput{LaunchTemplateName: aws.String("replicator-prod-worker"),
		LaunchTemplateData: &etypes.RequestLaunchTemplateData{ImageId: aws.String(v2)}}); err != nil {
		t.Fatal(err)
	}
	// A worker still runs on an older image.
	if _, err := c.RunInstances(ctx, &ec2.RunInstancesInput{ImageId: aws.String(running), MinCount: aws.Int32(1), MaxCount: aws.Int32(1),
		TagSpecifications: []etypes.TagSpecification{{ResourceType: etypes.ResourceTypeInstance, Tags: stackTags}}}); err != nil {
		t.Fatal(err)
	}
	keep, err := ImagesInUse(ctx, cfg, "prod")
	if err != nil {
		t.Fatal(err)
	}
	var out bytes.Buffer
	if _, err := RemoveImages(ctx, cfg, "prod", keep, &out); err != nil {
		t.Fatal(err)
	}
	left := map[string]bool{}
	imgs, _ := c.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}})
	for _, i := range imgs.Images {
		left[aws.ToString(i.ImageId)] = true
	}
	// v1 is the default version (CreateLaunchTemplateVersion does not move
	// it), v2 the latest, "running" an instance's: all stay.
	for id, want := range map[string]bool{v1: true, v2: true, running: true, unused: false} {
		if left[id] != want {
			t.Errorf("image %s kept=%v, want %v (in use: %v)", id, left[id], want, keep)
		}
	}
}

// motoConfig starts a moto_server for the test and returns a configuration
// for it.
func motoConfig(t *testing.T, region string) aws.Config {
	t.Helper()
	moto, err := devstack.StartMoto(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(moto.Stop)
	cfg, err := moto.Config(context.Background(), region)
	if err != nil {
		t.Fatal(err)
	}
	return cfg
}
