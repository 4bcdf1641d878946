// Package initcmd is `replicator init`: copy a whole PostgreSQL cluster (roles,
// databases, schema, data, indexes, sequences, large objects) from a source to a
// target.
package initcmd

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/cli/remote"
	"github.com/replicatorhq/replicator/cli/synccmd"
	"github.com/replicatorhq/replicator/cli/validatecmd"
	"github.com/replicatorhq/replicator/cli/verifycmd"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/jobs"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/validate"
	"github.com/replicatorhq/replicator/internal/verify"
)

// Options of one init run, filled from flags.
type Options struct {
	Endpoints          cmdutil.Endpoints
	Filters            cmdutil.Filters
	Jobs, IndexJobs    int
	SplitLargerThan    string
	MaintenanceWorkMem string
	DropExisting       bool
	Yes                bool
	NoRoles            bool
	NoResume           bool
	StateDir           string
	Verify             bool
	SkipValidate       bool
	Sync               bool
	Remote             remote.Flags
	SourceFromTarget   string
	FixIdentity        bool
	JSON               bool
}

// NewCmdInit builds the command. runF replaces the run in tests of flag handling.
func NewCmdInit(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{}
	cmd := &cobra.Command{
		Use:   "init --source URL --target URL",
		Short: "Copy a PostgreSQL cluster from a source to a target",
		Long: `Copy a whole PostgreSQL cluster: roles, then every database except postgres
(name it in --include-databases to copy it), each in one consistent snapshot:
schema, rows streamed with COPY, indexes and constraints built as each table
lands, sequences, large objects and materialized views.

A target database that already holds tables stops the run before anything
changes, unless --drop-existing replaces it.`,
		Example: `  replicator init --source postgres://postgres@old-host/postgres --target postgres://admin@new-host/postgres
  replicator init --source $SRC --target $DST --include-databases app --exclude-tables 'app.public.audit_*'
  replicator init --source $SRC --target $DST --table-filter 'app.public.events:created_at > now() - interval ''30 days''' --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return run(cmd.Context(), f, opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	fl := cmd.Flags()
	fl.IntVarP(&opts.Jobs, "jobs", "j", 0, "tables copied at once (default: number of CPUs, at least 2)")
	fl.IntVar(&opts.IndexJobs, "index-jobs", 0, "indexes built at once (default: --jobs)")
	fl.StringVar(&opts.SplitLargerThan, "split-tables-larger-than", "1GB", "copy tables larger than this in parallel ranges (0 to never split)")
	fl.StringVar(&opts.MaintenanceWorkMem, "maintenance-work-mem", "512MB", "maintenance_work_mem for index builds on the target")
	fl.BoolVar(&opts.DropExisting, "drop-existing", false, "drop target databases that already exist (asks first; --yes to confirm)")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "answer yes to prompts")
	fl.BoolVar(&opts.NoRoles, "no-roles", false, "do not copy roles")
	fl.BoolVar(&opts.NoResume, "no-resume", false, "start over instead of resuming an interrupted run of the same copy")
	fl.StringVar(&opts.StateDir, "state-dir", "", "where checkpoints of interrupted runs are kept (default $XDG_STATE_HOME/replicator or ~/.local/state/replicator)")
	fl.BoolVar(&opts.Sync, "sync", false, "continue into logical replication without a gap: create the slot first, copy in its snapshot, then subscribe (see replicator sync)")
	synccmd.AddFlags(cmd, &opts.SourceFromTarget, &opts.FixIdentity)
	remote.AddFlags(cmd, &opts.Remote, true)
	fl.BoolVar(&opts.SkipValidate, "skip-validate", false, "do not run the checks of replicator validate first")
	fl.BoolVar(&opts.Verify, "verify", false, "compare row counts and content hashes of every table once the copy is done (see replicator verify)")
	fl.BoolVar(&opts.JSON, "json", false, "print progress and the summary as JSON lines on stdout")
	return cmd
}

func run(ctx context.Context, f *factory.Factory, opts *Options) error {
	ios := f.IOStreams
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	split, err := cmdutil.ParseSize(opts.SplitLargerThan)
	if err != nil {
		return cmdutil.FlagErrorf("--split-tables-larger-than: %v", err)
	}
	if split == 0 {
		split = -1
	}
	if opts.Jobs < 0 || opts.IndexJobs < 0 {
		return cmdutil.FlagErrorf("--jobs and --index-jobs must be positive")
	}
	if opts.Remote.Remote {
		return submit(ctx, f, opts, src, split)
	}
	tools, err := f.FindTools(ctx, opts.Endpoints.PGBin)
	if err != nil {
		return err
	}

	stateDir := opts.StateDir
	if stateDir == "" {
		if stateDir = os.Getenv("REPLICATOR_STATE_DIR"); stateDir == "" {
			if stateDir, err = checkpoint.DefaultDir(); err != nil {
				return err
			}
		}
	}
	// Same endpoints and filters: same run. The id holds no password.
	runID := checkpoint.RunID("init", src.Identity(), dst.Identity(), opts.Filters.Spec())
	store, err := checkpoint.NewFileStore(stateDir, runID)
	if err != nil {
		return err
	}
	defer store.Close()
	archiveDir := filepath.Join(stateDir, runID)
	if opts.NoResume {
		if err := store.Clear(ctx); err != nil {
			return err
		}
		os.RemoveAll(archiveDir)
	}

	renderer := progressui.New(ios, opts.JSON)
	if !opts.SkipValidate {
		// Before anything changes: a failed check is the error, warnings show.
		_, err := validatecmd.Run(ctx, f, validate.Options{Source: src, Target: dst, Filters: rules, FindTools: f.FindTools,
			PGBin: opts.Endpoints.PGBin, Jobs: max(opts.Jobs, 2), Sync: opts.Sync}, func(m string) {
			renderer.Emit(progress.Event{Time: time.Now(), Kind: progress.Warning, Message: m})
		})
		if err != nil {
			renderer.Close()
			return err
		}
	}
	confirm := func(q string) (bool, error) {
		if opts.Yes {
			return true, nil
		}
		return ios.Confirm(q)
	}
	var syncOpts *engine.SyncOptions
	if opts.Sync {
		via, err := synccmd.ParseSourceFromTarget(opts.SourceFromTarget)
		if err != nil {
			renderer.Close()
			return err
		}
		syncOpts = &engine.SyncOptions{SourceForTarget: via, FixReplicaIdentity: opts.FixIdentity}
	}
	res, err := engine.Run(ctx, engine.Options{
		Sync:   syncOpts,
		Source: src, Target: dst, Filters: rules, Tools: tools,
		Jobs: opts.Jobs, IndexJobs: opts.IndexJobs, SplitThreshold: split,
		MaintenanceWorkMem: opts.MaintenanceWorkMem,
		DropExisting:       opts.DropExisting, Confirm: confirm, SkipRoles: opts.NoRoles,
		Progress: renderer, Logger: f.Logger(ios.ErrOut), TempDir: os.TempDir(),
		Checkpoints: store, ArchiveDir: archiveDir,
	})
	renderer.Close()
	if err != nil {
		var ue *engine.UserError
		if errors.As(err, &ue) || ctx.Err() != nil {
			return err
		}
		if opts.Sync {
			return fmt.Errorf("%w (a copy handing over to replication cannot resume: re-run with --drop-existing)", err)
		}
		return fmt.Errorf("%w (re-run the same command to resume; --no-resume starts over)", err)
	}
	os.RemoveAll(archiveDir)
	if opts.JSON {
		if err := progressui.PrintSummaryJSON(ios.Out, res); err != nil {
			return err
		}
		return verifyAfter(ctx, f, opts, src, dst, rules)
	}
	fmt.Fprintln(ios.Out)
	progressui.PrintSummary(ios.Out, res)
	if len(res.Tables) > 0 {
		fmt.Fprintln(ios.Out, strings.TrimSpace(`
Planner statistics are not copied: run ANALYZE (or vacuumdb --all --analyze-in-stages) on the target before heavy queries.`))
	}
	return verifyAfter(ctx, f, opts, src, dst, rules)
}

func verifyAfter(ctx context.Context, f *factory.Factory, opts *Options, src, dst *conninfo.Endpoint, rules *filter.Rules) error {
	if !opts.Verify {
		return nil
	}
	if !opts.JSON {
		fmt.Fprintln(f.IOStreams.Out, "\nVerifying ...")
	}
	return verifycmd.Run(ctx, f, verify.Options{Source: src, Target: dst, Filters: rules, Jobs: max(4, opts.Jobs)}, opts.JSON)
}

// submit runs the copy remotely: the worker gets the same options.
func submit(ctx context.Context, f *factory.Factory, opts *Options, src *conninfo.Endpoint, split int64) error {
	source, target := opts.Endpoints.Raw()
	req := &jobs.Request{Command: "init", Source: source, Target: target, Filters: opts.Filters.Spec(), Options: jobs.Options{
		DropExisting: opts.DropExisting, NoRoles: opts.NoRoles, Jobs: opts.Jobs, IndexJobs: opts.IndexJobs,
		SplitLargerThan: max(split, 0), MaintenanceWorkMem: opts.MaintenanceWorkMem, Verify: opts.Verify,
		Sync: opts.Sync, ReplicaIdentityFull: opts.FixIdentity, SourceBytes: cmdutil.SourceSize(ctx, src),
	}}
	if opts.DropExisting && !opts.Yes {
		ok, err := f.IOStreams.Confirm("Drop and replace target databases that already exist?")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("refusing to drop target databases without confirmation: pass --yes to confirm")
		}
	}
	opts.Remote.Options(&req.Options)
	return remote.Submit(ctx, f, &opts.Remote, req, opts.JSON)
}
