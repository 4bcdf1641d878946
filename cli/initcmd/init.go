// Package initcmd is `replicator init`: copy a whole PostgreSQL cluster (roles,
// databases, schema, data, indexes, sequences, large objects) from a source to a
// target.
package initcmd

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/cli/verifycmd"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/runner"
)

// Options of one init run: its dependencies, from the factory, and its
// flags.
type Options struct {
	IO        *iostreams.IOStreams
	FindTools func(ctx context.Context, dir string) (*pgtools.Tools, error)
	Logger    *slog.Logger
	JobClient func(context.Context, client.Target) (client.API, error)

	Endpoints           cmdutil.Endpoints
	Filters             cmdutil.Filters
	Jobs, IndexJobs     int
	SplitLargerThan     string
	MaintenanceWorkMem  string
	StallTimeout        time.Duration
	DropExisting        bool
	Yes                 bool
	NoRoles             bool
	NoResume            bool
	StateDir            string
	Verify              bool
	SkipValidate        bool
	SkipAnalyze         bool
	Sync                bool
	Remote              remoteui.Flags
	SourceFromTarget    string
	ReplicaIdentityFull bool
	ReplicateDDL        string
	JSON                bool
}

// NewCmdInit builds the command. runF replaces the run in tests of flag handling.
func NewCmdInit(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, FindTools: f.FindTools, JobClient: f.JobClient}
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
  replicator init --source $SRC --target $DST --table-filter "app.public.events:created_at > now() - interval '30 days'" --json`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(cmd); err != nil {
				return err
			}
			opts.Logger = f.Logger(f.IOStreams.ErrOut) // after --verbose is read
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runInit(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	cmdutil.AddCopyFilterFlags(cmd, &opts.Filters)
	fl := cmd.Flags()
	fl.IntVarP(&opts.Jobs, "jobs", "j", 0, "tables copied at once (default: number of CPUs, at least 2)")
	fl.IntVar(&opts.IndexJobs, "index-jobs", 0, "indexes built at once (default: --jobs)")
	fl.StringVar(&opts.SplitLargerThan, "split-tables-larger-than", "1GB", "copy tables larger than this in parallel ranges (0 to never split)")
	fl.StringVar(&opts.MaintenanceWorkMem, "maintenance-work-mem", "512MB", "maintenance_work_mem for index builds on the target")
	fl.DurationVar(&opts.StallTimeout, "stall-timeout", 0, "cut and retry a table copy when no byte has moved for this long (default 1m0s)")
	fl.BoolVar(&opts.DropExisting, "drop-existing", false, "drop target databases that already exist (asks first; --yes to confirm)")
	fl.BoolVarP(&opts.Yes, "yes", "y", false, "answer yes to prompts")
	fl.BoolVar(&opts.NoRoles, "no-roles", false, "do not copy roles")
	fl.BoolVar(&opts.NoResume, "no-resume", false, "start over instead of resuming an interrupted run of the same copy")
	fl.StringVar(&opts.StateDir, "state-dir", "", "where checkpoints of interrupted runs are kept (default $XDG_STATE_HOME/replicator or ~/.local/state/replicator)")
	fl.BoolVar(&opts.Sync, "sync", false, "continue into logical replication without a gap: create the slot first, copy in its snapshot, then subscribe (see replicator sync)")
	cmdutil.AddReplicationFlags(cmd, &opts.SourceFromTarget, &opts.ReplicaIdentityFull, &opts.ReplicateDDL)
	remoteui.AddFlags(cmd, &opts.Remote, true)
	fl.BoolVar(&opts.SkipValidate, "skip-validate", false, "do not run the checks of replicator validate first")
	fl.BoolVar(&opts.SkipAnalyze, "skip-analyze", false, "do not ANALYZE each table once it is copied and indexed (the target then has no planner statistics)")
	fl.BoolVar(&opts.Verify, "verify", false, "compare row counts and content hashes of every table once the copy is done (see replicator verify)")
	fl.BoolVar(&opts.JSON, "json", false, "print progress and the summary as JSON lines on stdout")
	return cmd
}

// JobOptions are the job the flags describe, for a local run and a remote one
// alike.
func (opts *Options) JobOptions() (remote.Options, error) {
	split, err := cmdutil.ParseSize(opts.SplitLargerThan)
	if err != nil {
		return remote.Options{}, cmdutil.FlagErrorf("--split-tables-larger-than: %v", err)
	}
	if split == 0 {
		split = -1 // "0": never split
	}
	if opts.StallTimeout < 0 || opts.StallTimeout%time.Second != 0 || opts.StallTimeout > 24*time.Hour {
		return remote.Options{}, cmdutil.FlagErrorf("--stall-timeout: whole seconds, up to 24h (such as 30s or 2m)")
	}
	if opts.Jobs < 0 || opts.IndexJobs < 0 {
		return remote.Options{}, cmdutil.FlagErrorf("--jobs and --index-jobs must be positive")
	}
	return remote.Options{
		DropExisting: opts.DropExisting, NoRoles: opts.NoRoles, NoResume: opts.NoResume,
		Jobs: opts.Jobs, IndexJobs: opts.IndexJobs, SplitLargerThan: split, MaintenanceWorkMem: opts.MaintenanceWorkMem,
		StallTimeoutSeconds: int(opts.StallTimeout / time.Second),
		SkipValidate:        opts.SkipValidate, SkipAnalyze: opts.SkipAnalyze, Verify: opts.Verify, Sync: opts.Sync, ReplicaIdentityFull: opts.ReplicaIdentityFull, ReplicateDDL: opts.ReplicateDDL,
	}, nil
}

// checkFlags refuses flags that would do nothing: remote-only ones without
// --remote, local-only ones with it, sync-only ones without --sync.
func checkFlags(cmd *cobra.Command) error {
	if err := remoteui.NeedRemote(cmd); err != nil {
		return err
	}
	if err := cmdutil.NeedsFlag(cmd, "sync", "source-from-target", "replica-identity-full", "replicate-ddl"); err != nil {
		return err
	}
	return cmdutil.Conflicts(cmd, "remote", map[string]string{
		"pg-bin":    "the worker uses the client tools of its image (the newest its distribution offers)",
		"state-dir": "the worker keeps its checkpoints in the platform's table",
	})
}

func runInit(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	o, err := opts.JobOptions()
	if err != nil {
		return err
	}
	via, err := cmdutil.ParseSourceFromTarget(opts.SourceFromTarget)
	if err != nil {
		return err
	}
	if opts.Remote.Remote {
		return submit(ctx, opts, src, dst, o)
	}
	job := runner.Job{Command: "init", Source: src, Target: dst, SourceForTarget: via, Filters: rules, Options: o}
	store, archiveDir, err := opts.checkpoints(src, dst)
	if err != nil {
		return err
	}
	defer store.Close()
	renderer := progressui.New(opts.IO, opts.JSON)
	res, err := runner.Init(ctx, job, runner.Env{
		FindTools: opts.FindTools, PGBin: opts.Endpoints.PGBin, Checkpoints: store, ArchiveDir: archiveDir,
		Confirm: func(q string) (bool, error) {
			if opts.Yes {
				return true, nil
			}
			return opts.IO.Confirm(q)
		},
		Progress: renderer, Logger: opts.Logger, TempDir: os.TempDir(),
	})
	renderer.Close()
	if res != nil && res.Copy != nil {
		os.RemoveAll(archiveDir)
		if len(res.Copy.Refused) > 0 {
			// Beside the checkpoints, named by the copy: kept after it.
			if werr := res.Copy.WriteRefused(archiveDir + "-refused.sql"); werr != nil {
				fmt.Fprintf(opts.IO.ErrOut, "warning: %v\n", werr)
			}
		}
	}
	if perr := report(opts, res); perr != nil {
		return perr
	}
	return explain(ctx, opts, res, err)
}

// checkpoints opens the local checkpoint store of this copy: same endpoints
// and filters, same run (the id holds no password). This is where a local
// run resumes from; a remote one keeps them in the platform's table.
func (opts *Options) checkpoints(src, dst *conninfo.Endpoint) (*checkpoint.FileStore, string, error) {
	stateDir := opts.StateDir
	if stateDir == "" {
		if stateDir = os.Getenv("REPLICATOR_STATE_DIR"); stateDir == "" {
			var err error
			if stateDir, err = checkpoint.DefaultDir(); err != nil {
				return nil, "", err
			}
		}
	}
	runID := checkpoint.RunID("init", src.Identity(), dst.Identity(), opts.Filters.Spec())
	store, err := checkpoint.NewFileStore(stateDir, runID)
	if err != nil {
		return nil, "", err
	}
	archiveDir := filepath.Join(stateDir, runID)
	if opts.NoResume {
		os.RemoveAll(archiveDir)
	}
	return store, archiveDir, nil
}

// report prints the copy's summary and verify's results.
func report(opts *Options, res *runner.Result) error {
	if res == nil {
		return nil
	}
	if res.Copy != nil {
		if err := progressui.Summary(opts.IO.Out, res.Copy, opts.JSON); err != nil {
			return err
		}
	}
	if res.Verify != nil {
		return verifycmd.Report(opts.IO.Out, res.Verify, opts.JSON)
	}
	return nil
}

// explain adds what to do next to the error of a copy that stopped midway.
func explain(ctx context.Context, opts *Options, res *runner.Result, err error) error {
	if err == nil || res == nil || res.Copy != nil {
		return err // a verify that found differences says so itself
	}
	var fix *problem.Problem
	if errors.As(err, &fix) {
		return err
	}
	if ctx.Err() != nil {
		if opts.Sync {
			return errors.New("interrupted: a copy handing over to replication cannot resume; re-run with --drop-existing")
		}
		return err // "interrupted: run the same command again to resume"
	}
	if opts.Sync {
		return fmt.Errorf("%w (a copy handing over to replication cannot resume: re-run with --drop-existing)", err)
	}
	return fmt.Errorf("%w (re-run the same command to resume; --no-resume starts over)", err)
}

// submit runs the copy remotely: the worker runs the same job.
func submit(ctx context.Context, opts *Options, src, dst *conninfo.Endpoint, o remote.Options) error {
	if opts.DropExisting && !opts.Yes {
		// The worker cannot ask: the answer is given before submitting.
		ok, err := opts.IO.Confirm("Drop and replace target databases that already exist?")
		if err != nil {
			return err
		}
		if !ok {
			return fmt.Errorf("refusing to drop target databases without confirmation: pass --yes to confirm")
		}
	}
	c, err := opts.JobClient(ctx, opts.Remote.Target())
	if err != nil {
		return err
	}
	o.SourceBytes = cmdutil.SourceSize(ctx, src)
	req, err := opts.Request(src, dst, o)
	if err != nil {
		return err
	}
	return remoteui.Submit(ctx, opts.IO, c, &opts.Remote, req, opts.JSON)
}

// Request is the remote job the flags describe, given its endpoints and
// options.
func (opts *Options) Request(src, dst *conninfo.Endpoint, o remote.Options) (*remote.Request, error) {
	return remoteui.NewRequest("init", src, dst, opts.SourceFromTarget, opts.Filters.Spec(), o, &opts.Remote)
}
