// Package teardowncmd is `replicator teardown`: remove the job platform from the
// user's AWS account, leaving nothing billable behind.
package teardowncmd

import (
	"context"
	"fmt"
	"strings"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/smithy-go/logging"
	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/setupcmd"
	"github.com/replicatorhq/replicator/internal/deploy"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/stackcache"
	"github.com/replicatorhq/replicator/platform"
)

// Options of teardown.
type Options struct {
	IO      *iostreams.IOStreams
	Version string

	Region, Stack, Backend    string
	Yes, Force, Purge, Unlock bool
}

// NewCmdTeardown builds the command.
func NewCmdTeardown(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, Version: f.Build.Version}
	cmd := &cobra.Command{
		Use:   "teardown",
		Short: "Remove the remote job platform from your AWS account",
		Long: `Destroy everything replicator setup deployed, the worker AMIs and snapshots
the image builds left, and any worker instance still running. It refuses while
jobs are queued or running unless --force, which cancels them first. --purge
also deletes the state bucket and schedules the state key's deletion.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.Conflicts(cmd, "backend", map[string]string{
				"purge": "--purge deletes the stack's state from the bucket setup created; the state of --backend is yours to remove"}); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runTeardown(cmd.Context(), opts)
		},
	}
	setupcmd.AddStackFlags(cmd, &opts.Region, &opts.Stack, &opts.Backend, &opts.Unlock, &opts.Yes)
	cmd.Flags().BoolVar(&opts.Force, "force", false, "cancel queued and running jobs instead of refusing")
	cmd.Flags().BoolVar(&opts.Purge, "purge", false, "also delete the stack's state, and the state bucket and key setup created once no other stack uses them")
	return cmd
}

func runTeardown(ctx context.Context, o *Options) error {
	errOut := o.IO.ErrOut
	acct, backend, secrets, err := setupcmd.Target(ctx, o.IO, o.Region, o.Backend)
	if err != nil {
		return err
	}
	pulumi, err := deploy.FindPulumi(ctx, errOut)
	if err != nil {
		return err
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, config.WithRegion(acct.Region), config.WithLogger(logging.Nop{}))
	if err != nil {
		return err
	}
	dopts := deploy.Options{Config: platform.Config{Stack: o.Stack, Version: o.Version, LambdaZip: "-", WorkerBinary: "-"},
		Region: acct.Region, Backend: backend, SecretsProvider: secrets, Pulumi: pulumi, Out: errOut,
		Unlock: setupcmd.UnlockFunc(o.IO, o.Unlock, o.Yes), AWS: awsCfg}
	out, err := deploy.StackOutputs(ctx, dopts)
	if err != nil {
		return fmt.Errorf("stack %s in %s: %w", o.Stack, backend, err)
	}
	stackJobs := deploy.StackJobs(awsCfg, o.Stack, out.Table)
	active, err := stackJobs.Active(ctx)
	if err != nil {
		return fmt.Errorf("check for running jobs: %w", err)
	}
	if len(active) > 0 && !o.Force {
		ids := make([]string, len(active))
		for i, j := range active {
			ids[i] = j.ID + " (" + string(j.Status) + ")"
		}
		return fmt.Errorf("%d job(s) are queued or running: %s; wait for them, cancel them (replicator jobs cancel ID), or pass --force", len(active), strings.Join(ids, ", "))
	}
	if !o.Yes {
		ok, err := o.IO.Confirm(fmt.Sprintf("Destroy the replicator platform %q in account %s, region %s?", o.Stack, acct.ID, acct.Region))
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("teardown not confirmed: nothing was changed (pass --yes to confirm)")
		}
	}
	if err := stackJobs.Cancel(ctx, active, "cancelled by replicator teardown --force", errOut); err != nil {
		return err
	}
	// Workers still up (a job cancelled just now) go first: the launch template
	// and the role they use are about to disappear. Only this stack's.
	if err := stackJobs.StopWorkers(ctx, errOut); err != nil {
		return err
	}
	// Destroying needs the program's shape, not its artifacts.
	dopts.Config.LambdaZip, dopts.Config.WorkerBinary = "unused", "unused"
	if err := deploy.Destroy(ctx, dopts); err != nil {
		return err
	}
	// What the destroy does not know of: AMIs and snapshots of earlier builds,
	// secrets of crashed jobs, log groups services create themselves.
	if _, err := deploy.RemoveImages(ctx, awsCfg, o.Stack, nil, errOut); err != nil {
		return err
	}
	if err := stackJobs.RemoveSecrets(ctx, errOut); err != nil {
		return err
	}
	if err := deploy.RemoveLogGroups(ctx, awsCfg, o.Stack, errOut); err != nil {
		return err
	}
	if err := stackcache.Forget(o.Stack); err != nil {
		return err
	}
	if o.Purge {
		if err := deploy.Purge(ctx, awsCfg, acct, o.Stack, errOut); err != nil {
			return err
		}
	}
	fmt.Fprintf(o.IO.Out, "Removed the replicator platform %q: nothing of it remains billable.\n", o.Stack)
	return nil
}
