// Package setupcmd is `replicator setup`: deploy the remote job platform into
// the user's AWS account.
package setupcmd

import (
	"context"
	"fmt"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/smithy-go/logging"
	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/deploy"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/stackcache"
	"github.com/replicatorhq/replicator/platform"
)

// Options of setup.
type Options struct {
	IO      *iostreams.IOStreams
	Version string

	Region, Stack, Backend      string
	VPCID                       string
	SubnetIDs, SecurityGroupIDs []string
	BuildSubnetID               string
	RebuildImage                bool
	InstanceType                string
	MaxJobs, MaxJobsPerOwner    int
	TimeLimit, MaxTimeLimit     time.Duration
	MaxInstanceSize             string
	EgressPorts                 string
	NotifyEmails, NotifyHooks   []string
	APIRate                     float64
	APIBurst                    int
	SyncLagAlarm                time.Duration
	Unlock, Yes                 bool
}

// NewCmdSetup builds the command.
func NewCmdSetup(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Version: f.Build.Version}
	cmd := &cobra.Command{
		Use:   "setup",
		Short: "Deploy the remote job platform into your AWS account",
		Long: `Deploy what replicator init --remote needs into your own AWS account, with the
Pulumi Automation API (no Pulumi account needed): a DynamoDB table, the job API
(a Lambda behind an API Gateway HTTP API, every route AWS_IAM), the reaper's
schedule, a KMS key for job secrets, an S3 bucket with the worker binary, the
worker AMI (built in your account by EC2 Image Builder: the slow step) and its
launch template, and least-privilege IAM roles.

The deployment state goes to an S3 bucket and KMS key that setup creates in the
account (like CDK's bootstrap), unless --backend names another Pulumi backend.
Running setup again changes only what changed; an interrupted setup can be run
again. The outputs are remembered, so init --remote needs no flags.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.TimeLimit < time.Minute {
				return cmdutil.FlagErrorf("--time-limit must be at least 1m")
			}
			if opts.MaxJobs < 1 {
				return cmdutil.FlagErrorf("--max-jobs must be at least 1")
			}
			if opts.MaxJobsPerOwner < 1 {
				return cmdutil.FlagErrorf("--max-jobs-per-owner must be at least 1")
			}
			if opts.MaxTimeLimit < time.Minute {
				return cmdutil.FlagErrorf("--max-time-limit must be at least 1m")
			}
			if !cmd.Flags().Changed("max-jobs-per-owner") {
				opts.MaxJobsPerOwner = min(opts.MaxJobsPerOwner, opts.MaxJobs)
			}
			if opts.MaxJobsPerOwner > opts.MaxJobs {
				return cmdutil.FlagErrorf("--max-jobs-per-owner %d is over --max-jobs %d: it would have no effect", opts.MaxJobsPerOwner, opts.MaxJobs)
			}
			if cmd.Flags().Changed("egress-ports") && len(opts.SecurityGroupIDs) > 0 {
				return cmdutil.FlagErrorf("--egress-ports shapes the security group setup creates; with --security-group-ids your groups decide what the workers reach")
			}
			cfg, err := opts.config()
			if err != nil {
				return cmdutil.FlagErrorf("%v", err)
			}
			if err := cfg.ValidateOptions(); err != nil {
				return cmdutil.FlagErrorf("%v", err)
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSetup(cmd.Context(), opts)
		},
	}
	AddStackFlags(cmd, &opts.Region, &opts.Stack, &opts.Backend, &opts.Unlock, &opts.Yes)
	fl := cmd.Flags()
	fl.StringSliceVar(&opts.SubnetIDs, "subnet-ids", nil, "subnets of the workers, all of one VPC, tried in order when a zone has no capacity (default: the default VPC)")
	fl.StringVar(&opts.VPCID, "vpc-id", "", "the workers' VPC: checked against the subnets' (default: theirs)")
	fl.StringSliceVar(&opts.SecurityGroupIDs, "security-group-ids", nil, "security groups of the workers (default: one setup creates, outbound only)")
	fl.StringVar(&opts.BuildSubnetID, "build-subnet-id", "", "subnet where the worker AMI is built, with a route to the internet or to SSM and S3 endpoints (default: the default VPC)")
	fl.BoolVar(&opts.RebuildImage, "rebuild-image", false, "build the worker AMI again even if nothing it is made of changed (newest OS packages and PostgreSQL client tools)")
	fl.StringVar(&opts.InstanceType, "instance-type", remote.DefaultInstanceType, "worker instance type of jobs that name none (Graviton, arm64); larger data gets a larger size of its family")
	fl.IntVar(&opts.MaxJobs, "max-jobs", 5, "jobs allowed to run at once")
	fl.IntVar(&opts.MaxJobsPerOwner, "max-jobs-per-owner", 2, "jobs one caller (IAM identity) may have running at once")
	fl.DurationVar(&opts.TimeLimit, "time-limit", 24*time.Hour, "default time limit of a job")
	fl.DurationVar(&opts.MaxTimeLimit, "max-time-limit", 7*24*time.Hour, "longest time limit a job may ask for")
	fl.StringVar(&opts.MaxInstanceSize, "max-instance-size", remote.DefaultMaxInstanceSize, "largest worker size a job may ask for ("+strings.Join(remote.Sizes, ", ")+")")
	fl.StringVar(&opts.EgressPorts, "egress-ports", awsenv.JoinPorts(platform.DefaultEgressPorts), "database ports the workers may connect to (besides 443 for AWS's APIs), or all")
	fl.StringArrayVar(&opts.NotifyEmails, "notify-email", nil, "email address told when a job ends, fails, is relaunched or nears its time limit (repeatable; each address confirms by email first)")
	fl.StringArrayVar(&opts.NotifyHooks, "notify-webhook", nil, "HTTPS URL (a Slack incoming webhook or any endpoint) that receives each job event as JSON (repeatable, up to 4)")
	fl.Float64Var(&opts.APIRate, "api-rate-limit", platform.DefaultThrottleRate, "requests per second the job API takes (API Gateway throttling; callers over it get 429)")
	fl.IntVar(&opts.APIBurst, "api-burst-limit", platform.DefaultThrottleBurst, "requests the job API takes at once above the rate")
	fl.DurationVar(&opts.SyncLagAlarm, "sync-lag-alarm", 15*time.Minute, "the stack's alarm notifies when a monitored sync job's target is this far behind for 3 minutes")
	return cmd
}

// AddStackFlags registers the flags setup and teardown share.
func AddStackFlags(cmd *cobra.Command, region, stack, backend *string, unlock, yes *bool) {
	cmd.Flags().StringVar(region, "region", "", "AWS region (default: the AWS configuration's)")
	cmd.Flags().StringVar(stack, "stack", "replicator", "deployment name: several can live side by side")
	cmd.Flags().StringVar(backend, "backend", "", "Pulumi state backend URL (default: an S3 bucket and KMS key setup creates in the account; e.g. file://~/.replicator-state)")
	cmd.Flags().BoolVar(unlock, "unlock", false, "remove the stack's lock even though its holder may still run (asks first; --yes to confirm)")
	cmd.Flags().BoolVarP(yes, "yes", "y", false, "do not ask for confirmation")
}

// Target resolves the AWS account, region and backend of a setup or teardown:
// the backend given, or the state bucket and key of the account and region
// (which setup bootstraps).
func Target(ctx context.Context, ios *iostreams.IOStreams, region, backend string) (*deploy.Account, string, string, error) {
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, "", "", fmt.Errorf("AWS configuration: %w", err)
	}
	acct, err := deploy.WhoAmI(ctx, cfg)
	if err != nil {
		return nil, "", "", err
	}
	fmt.Fprintf(ios.ErrOut, "AWS account %s, region %s, as %s\n", acct.ID, acct.Region, acct.ARN)
	if backend != "" {
		return acct, backend, "", nil
	}
	return acct, deploy.StateBackend(acct), deploy.StateSecrets(acct), nil
}

// config is the platform the flags describe.
func (o *Options) config() (platform.Config, error) {
	cfg := platform.Config{Stack: o.Stack, Version: o.Version, VPCID: o.VPCID, SubnetIDs: o.SubnetIDs, SecurityGroupIDs: o.SecurityGroupIDs,
		BuildSubnetID: o.BuildSubnetID, DefaultInstanceType: o.InstanceType, MaxConcurrentJobs: o.MaxJobs, DefaultTimeLimitMinutes: int(o.TimeLimit.Minutes()),
		MaxJobsPerOwner: o.MaxJobsPerOwner, MaxInstanceSize: o.MaxInstanceSize, MaxTimeLimitMinutes: int(o.MaxTimeLimit.Minutes()),
		NotifyEmails: o.NotifyEmails, NotifyWebhooks: o.NotifyHooks, ThrottleRate: o.APIRate, ThrottleBurst: o.APIBurst,
		SyncLagAlarmSeconds: int(o.SyncLagAlarm.Seconds())}
	if o.SyncLagAlarm < time.Minute {
		return cfg, fmt.Errorf("--sync-lag-alarm must be at least 1m")
	}
	if o.APIRate <= 0 || o.APIBurst <= 0 {
		return cfg, fmt.Errorf("--api-rate-limit and --api-burst-limit must be positive")
	}
	if o.EgressPorts == "all" {
		cfg.EgressAllPorts = true
	} else {
		ports, err := awsenv.ParsePorts(o.EgressPorts)
		if err != nil {
			return cfg, fmt.Errorf("--egress-ports: %w: give ports such as 5432,6432, or all", err)
		}
		cfg.EgressPorts = ports
	}
	cfg.Defaults()
	return cfg, nil
}

func runSetup(ctx context.Context, o *Options) error {
	cfg, err := o.config()
	if err != nil {
		return err
	}
	dir, err := os.MkdirTemp("", "replicator-setup-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)
	say := func(msg string) { fmt.Fprintln(o.IO.ErrOut, msg) }
	if cfg.LambdaZip, cfg.WorkerBinary, err = platform.WriteArtifacts(ctx, dir, say); err != nil {
		return err
	}
	acct, backend, secrets, err := Target(ctx, o.IO, o.Region, o.Backend)
	if err != nil {
		return err
	}
	errOut := o.IO.ErrOut
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(acct.Region), config.WithLogger(logging.Nop{}))
	if err != nil {
		return err
	}
	// Networks first: a build subnet with no way out would hang the AMI build
	// for 90 minutes.
	netw := deploy.Network{VPCID: cfg.VPCID, SubnetIDs: cfg.SubnetIDs, SecurityGroupIDs: cfg.SecurityGroupIDs, BuildSubnetID: cfg.BuildSubnetID}
	if err := deploy.ResolveNetwork(ctx, ec2.NewFromConfig(awsCfg), acct.Region, &netw, errOut); err != nil {
		return err
	}
	cfg.VPCID, cfg.BuildVPCID, cfg.SubnetIDs, cfg.BuildSubnetID = netw.VPCID, netw.BuildVPCID, netw.SubnetIDs, netw.BuildSubnetID
	// The image follows Amazon Linux's releases: a new one rebuilds it.
	if cfg.ParentImageVersion, err = deploy.ParentImageVersion(ctx, awsCfg, acct); err != nil {
		return err
	}
	fmt.Fprintf(errOut, "Worker image: built on Amazon Linux 2023 (arm64) %s\n", cfg.ParentImageVersion)
	var replace []string
	if o.RebuildImage {
		replace = append(replace, deploy.ImageURN(cfg.Stack))
		fmt.Fprintln(errOut, "--rebuild-image: the worker AMI is built again")
	}
	if err := cfg.Validate(); err != nil {
		return cmdutil.FlagErrorf("%v", err)
	}
	if o.Backend == "" {
		if backend, secrets, err = deploy.Bootstrap(ctx, awsCfg, acct, errOut); err != nil {
			return err
		}
	}
	pulumi, err := deploy.FindPulumi(ctx, errOut)
	if err != nil {
		return err
	}
	out, err := deploy.Up(ctx, deploy.Options{Config: cfg, Region: acct.Region, Backend: backend, SecretsProvider: secrets, Pulumi: pulumi, Out: errOut,
		Unlock: UnlockFunc(o.IO, o.Unlock, o.Yes), AWS: awsCfg, Replace: replace})
	if err != nil {
		return err
	}
	// Old AMIs go, but never one a launch template version or an instance
	// still uses.
	keep, err := deploy.ImagesInUse(ctx, awsCfg, cfg.Stack)
	if err == nil {
		_, err = deploy.RemoveImages(ctx, awsCfg, cfg.Stack, append(keep, out.AMI), errOut)
	}
	if err != nil {
		fmt.Fprintf(errOut, "warning: old worker images were not removed: %v\n", err)
	}
	if err := stackcache.Save(out); err != nil {
		return err
	}
	fmt.Fprintf(o.IO.Out, "API URL:    %s\nregion:     %s\njobs table: %s\nworker AMI: %s\nversion:    %s\n",
		out.APIURL, out.Region, out.Table, out.AMI, out.Version)
	fmt.Fprintf(errOut, "Ready: replicator init --remote uses this deployment (stack %s).\n", cfg.Stack)
	return nil
}

// UnlockFunc decides about a lock that is not provably stale: only with
// --unlock, and only once the user confirms (or passed --yes).
func UnlockFunc(ios *iostreams.IOStreams, unlock, yes bool) func(lock deploy.Lock) (bool, error) {
	return func(lock deploy.Lock) (bool, error) {
		if !unlock {
			return false, nil
		}
		if yes {
			return true, nil
		}
		return ios.Confirm(fmt.Sprintf("Remove the lock of %s? Only do this if that run is dead", lock))
	}
}
