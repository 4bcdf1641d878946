// Command pulumi runs the platform program with the plain pulumi CLI (see
// Pulumi.yaml at the repository root), for those who manage stacks themselves:
//
//	pulumi config set aws:region eu-west-1                    # or AWS_REGION
//	pulumi config set replicator:lambdaZip ./lambda.zip        # zip holding bootstrap (linux/arm64)
//	pulumi config set replicator:workerBinary ./bin/worker-linux-arm64
//	pulumi config set replicator:buildSubnetId subnet-...     # where the AMI builds (a route out)
//	pulumi config set replicator:buildVpcId vpc-...            # its VPC
//	pulumi up
//
// Optional: replicator:vpcId with replicator:subnetIds (comma-separated) and
// replicator:securityGroupIds, replicator:parentImageVersion (Amazon Linux
// 2023's, default the newest at build time), replicator:instanceType, replicator:maxJobs,
// replicator:maxJobsPerOwner, replicator:timeLimitMinutes,
// replicator:maxTimeLimitMinutes, replicator:maxInstanceSize,
// replicator:egressPorts (comma-separated, or all). The region and partition come from the AWS
// provider. replicator setup checks the networks before deploying; this path
// does not.
//
// replicator setup runs the same program through the Automation API.
package main

import (
	"fmt"
	"strings"

	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi/config"

	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/platform"
)

func main() {
	pulumi.Run(func(ctx *pulumi.Context) error {
		c := config.New(ctx, "replicator")
		split := func(s string) []string {
			if s == "" {
				return nil
			}
			return strings.Split(s, ",")
		}
		version := c.Get("version")
		if version == "" {
			version = "dev"
		}
		cfg := platform.Config{
			Stack: ctx.Stack(), Version: version,
			LambdaZip: c.Require("lambdaZip"), WorkerBinary: c.Require("workerBinary"),
			VPCID: c.Get("vpcId"), SubnetIDs: split(c.Get("subnetIds")), SecurityGroupIDs: split(c.Get("securityGroupIds")),
			BuildSubnetID: c.Get("buildSubnetId"), BuildVPCID: c.Get("buildVpcId"), ParentImageVersion: c.Get("parentImageVersion"),
			DefaultInstanceType: c.Get("instanceType"), MaxConcurrentJobs: c.GetInt("maxJobs"), DefaultTimeLimitMinutes: c.GetInt("timeLimitMinutes"),
			MaxJobsPerOwner: c.GetInt("maxJobsPerOwner"), MaxInstanceSize: c.Get("maxInstanceSize"), MaxTimeLimitMinutes: c.GetInt("maxTimeLimitMinutes"),
		}
		switch ports := c.Get("egressPorts"); ports {
		case "":
		case "all":
			cfg.EgressAllPorts = true
		default:
			var err error
			if cfg.EgressPorts, err = awsenv.ParsePorts(ports); err != nil {
				return fmt.Errorf("replicator:egressPorts: %w", err)
			}
		}
		return platform.Program(cfg)(ctx)
	})
}
