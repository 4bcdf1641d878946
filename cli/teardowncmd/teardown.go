// Package teardowncmd is `replicator teardown`: remove the job platform from the
// user's AWS account, leaving nothing billable behind.
package teardowncmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	"github.com/aws/smithy-go/logging"
	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/setupcmd"
	"github.com/replicatorhq/replicator/internal/deploy"
	"github.com/replicatorhq/replicator/internal/jobs"
	"github.com/replicatorhq/replicator/internal/jobsecrets"
	"github.com/replicatorhq/replicator/internal/jobstore"
	"github.com/replicatorhq/replicator/internal/launch"
	"github.com/replicatorhq/replicator/platform"
)

// Options of teardown.
type Options struct {
	Region, Stack, Backend string
	Yes, Force, Purge      bool
}

// NewCmdTeardown builds the command.
func NewCmdTeardown(f *factory.Factory) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove the remote job platform from your AWS account",
		Long: `Destroy everything replicator setup deployed, the worker AMIs and snapshots
the image builds left, and any worker instance still running. It refuses while
jobs are queued or running unless --force, which cancels them first. --purge
also deletes the state bucket and schedules the state key's deletion.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error { return run(cmd.Context(), f, opts) },
	}
	setupcmd.AddStackFlags(cmd, &opts.Region, &opts.Stack, &opts.Backend)
	cmd.Flags().BoolVarP(&opts.Yes, "yes", "y", false, "do not ask for confirmation")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "cancel queued and running jobs instead of refusing")
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also delete the state bucket and key setup created")
	return cmd
}

func run(ctx context.Context, f *factory.Factory, o *Options) error {
	errOut := f.IOStreams.ErrOut
	acct, backend, secrets, err := setupcmd.Target(ctx, f, o.Region, o.Backend, false)
	if err != nil {
		return err
	}
	pulumi, err := deploy.FindPulumi(ctx, errOut)
	if err != nil {
		return err
	}
	dopts := deploy.Options{Config: platform.Config{Stack: o.Stack, Version: f.Version, LambdaZip: "-", WorkerBinary: "-"},
		Region: acct.Region, Backend: backend, SecretsProvider: secrets, Pulumi: pulumi, Out: errOut}
	out, err := deploy.StackOutputs(ctx, dopts)
	if err != nil {
		return fmt.Errorf("stack %s in %s: %w", o.Stack, backend, err)
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(acct.Region), config.WithLogger(logging.Nop{}))
	if err != nil {
		return err
	}
	var store *jobstore.Store
	var active []*jobs.Job
	if out.Table != "" {
		store = jobstore.New(dynamodb.NewFromConfig(awsCfg), out.Table)
		if active, err = store.ListActive(ctx); err != nil {
			return fmt.Errorf("check for running jobs: %w", err)
		}
		if len(active) > 0 && !o.Force {
			ids := make([]string, len(active))
			for i, j := range active {
				ids[i] = j.ID + " (" + string(j.Status) + ")"
			}
			return fmt.Errorf("%d job(s) are queued or running: %s; wait for them, cancel them (replicator jobs cancel ID), or pass --force", len(active), strings.Join(ids, ", "))
		}
	}
	if !o.Yes {
		ok, err := f.IOStreams.Confirm(fmt.Sprintf("Destroy the replicator platform %q in account %s, region %s?", o.Stack, acct.ID, acct.Region))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("teardown not confirmed: nothing was changed (pass --yes to confirm)")
		}
	}
	if err := cancelJobs(ctx, f, awsCfg, store, out, active); err != nil {
		return err
	}
	// Workers still up (a job cancelled just now) go first: the launch template
	// and the role they use are about to disappear.
	ec2c := ec2.NewFromConfig(awsCfg)
	if ws, err := launch.Workers(ctx, ec2c); err == nil && len(ws) > 0 {
		var ids []string
		for _, w := range ws {
			ids = append(ids, w.ID)
		}
		_ = launch.Terminate(ctx, ec2c, ids...)
		fmt.Fprintf(errOut, "Terminated %d worker instance(s)\n", len(ids))
	}
	// Destroying needs the program's shape, not its artifacts.
	dopts.Config.LambdaZip, dopts.Config.WorkerBinary = "unused", "unused"
	if err := deploy.Destroy(ctx, dopts); err != nil {
		return err
	}
	if _, err := deploy.RemoveImages(ctx, awsCfg, o.Stack, "", errOut); err != nil {
		return err
	}
	if err := deploy.ForgetOutputs(o.Stack); err != nil {
		return err
	}
	if o.Purge && o.Backend == "" {
		if err := deploy.Purge(ctx, awsCfg, acct, errOut); err != nil {
			return err
		}
	}
	fmt.Fprintf(f.IOStreams.Out, "Removed the replicator platform %q: nothing of it remains billable.\n", o.Stack)
	return nil
}

// cancelJobs ends jobs that teardown --force stops: status, instance, secret.
func cancelJobs(ctx context.Context, f *factory.Factory, cfg aws.Config, store *jobstore.Store, out *deploy.Outputs, active []*jobs.Job) error {
	if len(active) == 0 {
		return nil
	}
	secrets := &jobsecrets.Secrets{SM: secretsmanager.NewFromConfig(cfg), Prefix: (&platform.Config{Stack: out.Stack}).SecretPrefix()}
	ec2c := ec2.NewFromConfig(cfg)
	for _, j := range active {
		if _, err := store.Transition(ctx, j.ID, jobstore.Change{From: jobs.Active, To: jobs.Cancelled,
			Set: map[string]any{"error": "cancelled by replicator teardown --force", "message": "cancelled by teardown"}}); err != nil {
			return fmt.Errorf("cancel %s: %w", j.ID, err)
		}
		if j.InstanceID != "" {
			_ = launch.Terminate(ctx, ec2c, j.InstanceID)
		}
		_ = secrets.Delete(ctx, j.ID)
		fmt.Fprintf(f.IOStreams.ErrOut, "Cancelled job %s\n", j.ID)
	}
	return nil
}
