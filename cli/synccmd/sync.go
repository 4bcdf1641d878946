// Package synccmd is `replicator sync`: keep a copied target in sync with its
// source through PostgreSQL's logical replication, and stop it at cut-over.
package synccmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/runner"
)

// Options of one sync run: its dependencies, from the factory, and its flags.
type Options struct {
	IO        *iostreams.IOStreams
	JobClient func(context.Context, client.Target) (client.API, error)

	Endpoints           cmdutil.Endpoints
	Filters             cmdutil.Filters
	SourceFromTarget    string
	Stop, Force         bool
	AcceptGap           bool
	StateDir            string
	Sequences           bool
	ReplicaIdentityFull bool
	// ReplicateDDL is "on" or "off" when --replicate-ddl was given, "" for
	// the default (on where the source role may create event triggers).
	ReplicateDDL string
	Remote       remoteui.Flags
}

// NewCmdSync builds the command.
func NewCmdSync(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, JobClient: f.JobClient}
	cmd := &cobra.Command{
		Use:   "sync --source URL --target URL",
		Short: "Replicate changes from the source to an already copied target",
		Long: `Set up native logical replication for every selected database: a publication
(row filters become publication WHERE clauses) and a replication slot on the
source, a subscription on the target that does not copy data again.

sync starts from the source's current position. Changes the source committed
between your copy and now are found first: every selected table is compared
with the source at the new slot's snapshot, and the ones that differ are copied
again in that snapshot, so that nothing is lost (--accept-gap skips this and
starts without them). replicator init --sync copies and replicates in one go,
with nothing to compare.

Re-running sync when replication is already set up does nothing (--force
recreates it). sync --stop abandons the replication: it waits until the target
has applied everything the source committed (refusing after a minute, unless
--force), then removes the subscription, the slot and the publication, leaving
no slot to fill the source's disk. To switch the application to the target,
use replicator cutover, which also stops the writes first. Sequences are not
replicated by PostgreSQL: --sequences copies their current values (with --stop:
after the drain).`,
		Example: `  replicator sync --source $SRC --target $DST --include-databases app
  replicator status --source $SRC --target $DST --watch
  replicator sync --source $SRC --target $DST --stop   # abandon the replication
  replicator cutover --source $SRC --target $DST      # switch to the target`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(cmd); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runSync(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	cmdutil.AddReplicationFlags(cmd, &opts.SourceFromTarget, &opts.ReplicaIdentityFull, &opts.ReplicateDDL)
	cmd.Flags().BoolVar(&opts.Stop, "stop", false, "stop replicating: drop the subscription, the slot and the publication")
	cmd.Flags().BoolVar(&opts.Force, "force", false, "recreate the replication even if it is set up; with --stop, stop without waiting for the target to apply what the source committed")
	cmd.Flags().BoolVar(&opts.Sequences, "sequences", false, "copy the sequences' current values to the target")
	cmd.Flags().BoolVar(&opts.AcceptGap, "accept-gap", false, "start without comparing the target with the source: changes made since the copy are not carried over")
	// init's --state-dir, given to sync by habit: sync keeps nothing on this
	// machine, so the flag is refused with the reason rather than unknown.
	cmd.Flags().StringVar(&opts.StateDir, "state-dir", "", "")
	_ = cmd.Flags().MarkHidden("state-dir")
	remoteui.AddFlags(cmd, &opts.Remote, true)
	return cmd
}

// checkFlags refuses flags that would do nothing.
func checkFlags(cmd *cobra.Command) error {
	if err := remoteui.NeedRemote(cmd); err != nil {
		return err
	}
	if err := cmdutil.Conflicts(cmd, "stop", map[string]string{
		"replica-identity-full": "--stop changes no table", "source-from-target": "--stop creates no subscription",
		"replicate-ddl": "--stop removes the schema change capture whatever its setting", "accept-gap": "--stop starts no replication"}); err != nil {
		return err
	}
	if cmd.Flags().Changed("state-dir") {
		return cmdutil.FlagErrorf("--state-dir has no effect on sync, which keeps no state on this machine (the servers hold it: the slot, the subscription, the queue)")
	}
	if cmd.Flags().Changed("pg-bin") {
		return cmdutil.FlagErrorf("--pg-bin has no effect on sync, which runs no client tools")
	}
	return nil
}

func runSync(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	via, err := cmdutil.ParseSourceFromTarget(opts.SourceFromTarget)
	if err != nil {
		return err
	}
	if opts.Remote.Remote {
		c, err := opts.JobClient(ctx, opts.Remote.Target())
		if err != nil {
			return err
		}
		req, err := opts.Request(src, dst)
		if err != nil {
			return err
		}
		return remoteui.Submit(ctx, opts.IO, c, &opts.Remote, req, false)
	}
	out := opts.IO.Out
	job := runner.Job{Command: "sync", Source: src, Target: dst, SourceForTarget: via, Filters: rules, Options: opts.JobOptions()}
	return runner.Sync(ctx, job, func(db, msg string) { fmt.Fprintf(out, "[%s] %s\n", db, msg) })
}

// JobOptions are the job the flags describe, for a local run and a remote one
// alike.
func (opts *Options) JobOptions() remote.Options {
	return remote.Options{Stop: opts.Stop, Force: opts.Force, AcceptGap: opts.AcceptGap, Sequences: opts.Sequences, ReplicaIdentityFull: opts.ReplicaIdentityFull,
		ReplicateDDL: opts.ReplicateDDL}
}

// Request is the remote job the flags describe, given its endpoints.
func (opts *Options) Request(src, dst *conninfo.Endpoint) (*remote.Request, error) {
	return remoteui.NewRequest("sync", src, dst, opts.SourceFromTarget, opts.Filters.Spec(), opts.JobOptions(), &opts.Remote)
}
