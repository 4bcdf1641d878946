package platform

import (
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws"
	"github.com/pulumi/pulumi-aws/sdk/v6/go/aws/ec2"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Routes of the job API; every one is authorised with AWS_IAM.
var Routes = []string{"POST /jobs", "GET /jobs", "GET /jobs/{id}", "GET /jobs/{id}/logs", "POST /jobs/{id}/cancel", "GET /version"}

// where the stack is deployed, as the AWS provider sees it: never a literal
// region or partition (GovCloud and China are partitions of their own).
type where struct {
	Region, Partition, Account string
}

// stack is the program's state while it declares resources, one area at a
// time (data.go, workers.go, image.go, api.go; the policies in iam.go).
type stack struct {
	ctx   *pulumi.Context
	cfg   Config
	names stacknames.Names
	at    where
	tags  pulumi.StringMap
}

// Program declares the platform.
func Program(cfg Config) pulumi.RunFunc {
	return func(ctx *pulumi.Context) error {
		cfg.Defaults()
		if err := cfg.Validate(); err != nil {
			return err
		}
		at, err := lookupWhere(ctx)
		if err != nil {
			return err
		}
		s := &stack{ctx: ctx, cfg: cfg, names: cfg.Names(), at: at, tags: pulumi.StringMap{
			stacknames.TagStack: pulumi.String(cfg.Stack), "managed-by": pulumi.String("replicator setup"),
		}}
		if err := s.names.CheckBucket(at.Account, at.Region); err != nil {
			return err
		}
		if s.cfg.VPCID == "" {
			// Workers go to the region's default VPC.
			vpc, err := ec2.LookupVpc(ctx, &ec2.LookupVpcArgs{Default: pulumi.BoolRef(true)})
			if err != nil {
				return err
			}
			s.cfg.VPCID = vpc.Id
		}
		d, err := s.data()
		if err != nil {
			return err
		}
		img, err := s.image()
		if err != nil {
			return err
		}
		w, err := s.workers(d, img)
		if err != nil {
			return err
		}
		a, err := s.api(d, w)
		if err != nil {
			return err
		}
		n, err := s.notifications()
		if err != nil {
			return err
		}
		if err := s.dashboard(n); err != nil {
			return err
		}
		ctx.Export(OutAPIURL, a.url)
		ctx.Export(OutRegion, pulumi.String(at.Region))
		ctx.Export(OutTable, d.table.Name)
		ctx.Export(OutLogGroup, d.jobsLogs.Name)
		ctx.Export(OutBucket, d.bucket.Bucket)
		ctx.Export(OutAMI, img.amiID)
		ctx.Export(OutVersion, pulumi.String(cfg.Version))
		ctx.Export(OutLaunchTemplate, w.launchTemplate.Name)
		ctx.Export(OutSecretsKey, d.key.Arn)
		ctx.Export(OutTopic, n.topic.Arn)
		ctx.Export(OutDashboard, pulumi.String(s.names.Dashboard()))
		return nil
	}
}

func lookupWhere(ctx *pulumi.Context) (where, error) {
	region, err := aws.GetRegion(ctx, nil)
	if err != nil {
		return where{}, err
	}
	caller, err := aws.GetCallerIdentity(ctx, nil)
	if err != nil {
		return where{}, err
	}
	partition, err := aws.GetPartition(ctx, nil)
	if err != nil {
		return where{}, err
	}
	return where{Region: region.Name, Partition: partition.Partition, Account: caller.AccountId}, nil
}

// arn builds an ARN in the stack's partition.
func (w where) arn(service, region, account, resource string) string {
	return "arn:" + w.Partition + ":" + service + ":" + region + ":" + account + ":" + resource
}

func (s *stack) tagsWith(kv ...string) pulumi.StringMap {
	m := pulumi.StringMap{}
	for k, v := range s.tags {
		m[k] = v
	}
	for i := 0; i+1 < len(kv); i += 2 {
		m[kv[i]] = pulumi.String(kv[i+1])
	}
	return m
}
