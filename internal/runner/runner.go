// Package runner runs a job's command the same way on a laptop and on a
// remote worker. init is validate → copy (handing over to replication with
// sync) → verify; sync sets replication up or stops it. A job is its
// remote.Options, built once from the flags; EngineOptions and SyncOptions turn
// them into the engine's and replication's options, in this one place. What
// differs between the laptop and the worker is only their Env: where
// checkpoints are kept, how questions are answered, where events go.
package runner

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"sync"
	"time"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/cutover"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/validate"
	"github.com/replicatorhq/replicator/internal/verify"
)

// Job is what to run.
type Job struct {
	Command string // "init" or "sync"
	Source  *conninfo.Endpoint
	Target  *conninfo.Endpoint
	// SourceForTarget is how the target reaches the source (nil: Source).
	SourceForTarget *conninfo.Endpoint
	Filters         *filter.Rules
	Options         remote.Options
}

// Env is where the job runs.
type Env struct {
	// FindTools locates pg_dump and friends in PGBin ("" to search).
	FindTools func(ctx context.Context, dir string) (*pgtools.Tools, error)
	PGBin     string
	// Checkpoints and ArchiveDir make an interrupted copy resumable.
	Checkpoints checkpoint.Store
	ArchiveDir  string
	// Confirm answers the copy's questions (dropping existing databases).
	Confirm  func(question string) (bool, error)
	Progress progress.Sink
	Logger   *slog.Logger
	TempDir  string
	// OnWorker: a remote worker, whose client tools came with its image
	// (Image, its AMI, "" when unknown).
	OnWorker bool
	Image    string
}

// Result is what an init did.
type Result struct {
	Validate *validate.Report
	Copy     *engine.Result
	Verify   *verify.Result
}

// Init runs validate (unless skipped), the copy, and verify (when asked). A
// failed check stops it before anything changes; the error of a verify that
// found differences is *verify.ErrDifferent, with the result.
func Init(ctx context.Context, j Job, env Env) (*Result, error) {
	res := &Result{}
	o := j.Options
	if env.Progress == nil {
		env.Progress = progress.Discard
	}
	tools, err := env.FindTools(ctx, env.PGBin)
	// validate runs alongside the copy's preflight, which waits for it before
	// the first change: both only read, and against a far server each is a
	// string of round trips. A run that must start from a clean slate (tools
	// missing, --no-resume clearing checkpoints) validates first.
	check := startValidate(ctx, j, env, res)
	if err != nil || o.NoResume {
		if verr := check(ctx); verr != nil {
			return res, verr
		}
		check = nil
	}
	if err != nil {
		return res, err
	}
	if o.NoResume && env.Checkpoints != nil {
		if err := env.Checkpoints.Clear(ctx); err != nil {
			return res, err
		}
	}
	eo := EngineOptions(j)
	eo.Tools, eo.Checkpoints, eo.ArchiveDir, eo.Confirm = tools, env.Checkpoints, env.ArchiveDir, env.Confirm
	eo.Progress, eo.Logger, eo.TempDir = env.Progress, env.Logger, env.TempDir
	eo.Ready = check
	if res.Copy, err = engine.Run(ctx, eo); err != nil {
		if check != nil && res.Copy == nil {
			// Preflight stopped before asking: validate's report, when it
			// failed too, says more (every problem, each with its fix).
			if verr := check(ctx); verr != nil {
				return res, verr
			}
		}
		return res, err
	}
	if !o.Verify {
		return res, nil
	}
	env.Progress.Emit(progress.Event{Kind: progress.Info, Message: "verifying"})
	res.Verify, err = verify.Run(ctx, VerifyOptions(j))
	return res, err
}

// startValidate starts validate (unless the job skips it) and returns what
// waits for its outcome: the first call waits and keeps the report in res;
// it fails when validate could not run or found a problem. Later calls
// return the same.
func startValidate(ctx context.Context, j Job, env Env, res *Result) func(context.Context) error {
	o := j.Options
	if o.SkipValidate {
		return nil
	}
	type outcome struct {
		rep *validate.Report
		err error
	}
	ch := make(chan outcome, 1)
	go func() {
		rep, err := validate.Run(ctx, validate.Options{Source: j.Source, Target: j.Target, Filters: j.Filters, FindTools: env.FindTools,
			PGBin: env.PGBin, Jobs: o.Jobs, IndexJobs: o.IndexJobs, Sync: o.Sync, OnWorker: env.OnWorker, Image: env.Image, CopyChecksTargets: true})
		ch <- outcome{rep, err}
	}()
	var once sync.Once
	var err error
	return func(wctx context.Context) error {
		once.Do(func() {
			var out outcome
			select {
			case out = <-ch:
			case <-wctx.Done():
				err = wctx.Err()
				return
			}
			if out.err != nil {
				err = out.err
				return
			}
			res.Validate = out.rep
			// The worker says what it runs on, failed checks or not.
			for _, f := range out.rep.Findings {
				if f.Check == validate.WorkerImageCheck {
					env.Progress.Emit(progress.Event{Kind: progress.Info, Message: f.Check + ": " + f.Message})
				}
			}
			if err = out.rep.Err(); err != nil {
				return
			}
			// The copy's preflight repeats the filter warnings, also when
			// validation is skipped; say them once.
			for _, w := range out.rep.Warnings(validate.FiltersCheck) {
				env.Progress.Emit(progress.Event{Kind: progress.Warning, Message: w})
			}
		})
		return err
	}
}

// EngineOptions are the copy's options of a job: the one place where job
// options become engine options (the environment's parts are left unset).
func EngineOptions(j Job) engine.Options {
	o := j.Options
	eo := engine.Options{
		Source: j.Source, Target: j.Target, Filters: j.Filters,
		Jobs: o.Jobs, IndexJobs: o.IndexJobs, SplitThreshold: o.SplitLargerThan, MaintenanceWorkMem: o.MaintenanceWorkMem,
		DropExisting: o.DropExisting, SkipRoles: o.NoRoles, SkipAnalyze: o.SkipAnalyze, StallTimeout: time.Duration(o.StallTimeoutSeconds) * time.Second,
	}
	if o.Sync {
		eo.Sync = &engine.SyncOptions{SourceForTarget: j.SourceForTarget, ReplicaIdentityFull: o.ReplicaIdentityFull, DDL: replication.DDLMode(o.ReplicateDDL)}
	}
	return eo
}

// VerifyOptions are verify's options of a job.
func VerifyOptions(j Job) verify.Options {
	return verify.Options{Source: j.Source, Target: j.Target, Filters: j.Filters, Jobs: max(4, j.Options.Jobs)}
}

// SyncOptions are replication's options of a sync job; log reports what
// happens, database by database.
func SyncOptions(j Job, log func(db, msg string)) replication.Options {
	o := j.Options
	return replication.Options{Source: j.Source, Target: j.Target, SourceForTarget: j.SourceForTarget, Filters: j.Filters,
		Force: o.Force, AcceptGap: o.AcceptGap, ReplicaIdentityFull: o.ReplicaIdentityFull, DDL: replication.DDLMode(o.ReplicateDDL), Sequences: o.Sequences, CopySequences: engine.CopySequences, Log: log}
}

// Sync sets up replication, or stops it with Options.Stop.
func Sync(ctx context.Context, j Job, log func(db, msg string)) error {
	ro := SyncOptions(j, log)
	var err error
	if j.Options.Stop {
		err = replication.Stop(ctx, ro)
	} else {
		err = replication.Setup(ctx, ro)
	}
	// As it is: a refusal keeps the "database <db>:" it was wrapped in.
	return err
}

// CutoverOptions are cutover's options of a job; store keeps its steps'
// state.
func CutoverOptions(j Job, store checkpoint.Store) cutover.Options {
	c := j.Options.Cutover
	return cutover.Options{Source: j.Source, Target: j.Target, SourceForTarget: j.SourceForTarget, Filters: j.Filters,
		Rollback: c.Rollback, Reverse: c.Reverse, DryRun: c.PlanOnly,
		MaxLag:        remote.Seconds(c.MaxLagSeconds, remote.DefaultMaxLag),
		DrainTimeout:  remote.Seconds(c.DrainTimeoutSeconds, remote.DefaultDrainTimeout),
		SwitchTimeout: remote.Seconds(c.SwitchTimeoutSeconds, remote.DefaultSwitchTimeout),
		FenceNone:     c.Fence == "none", SequenceMargin: c.SequenceMargin, Verify: j.Options.Verify, UnfenceSource: c.UnfenceSource,
		Store: store}
}

// Cutover runs a cut-over; a failure the user can fix comes back as one
// line.
func Cutover(ctx context.Context, o cutover.Options) (*cutover.Result, error) {
	res, err := cutover.Run(ctx, o)
	var p *problem.Problem
	if errors.As(err, &p) {
		var se *cutover.StepError
		if errors.As(err, &se) {
			return res, err
		}
		return res, errors.New(p.Error())
	}
	return res, err
}

// Parse reads a job from its request and secret (the worker's side); the
// connections' certificates are written to files in dir.
func Parse(command string, sec remote.Secret, spec filter.Spec, o remote.Options, dir string) (Job, error) {
	j := Job{Command: command, Options: o}
	var err error
	if j.Source, err = conninfo.WithCertificates("source", sec.Source, sec.SourceCerts, dir); err != nil {
		return j, err
	}
	if j.Target, err = conninfo.WithCertificates("target", sec.Target, sec.TargetCerts, dir); err != nil {
		return j, err
	}
	if sec.SourceForTarget != "" {
		if j.SourceForTarget, err = conninfo.ParseOpaque("source (from the target)", sec.SourceForTarget); err != nil {
			return j, err
		}
	}
	if j.Filters, err = spec.Compile(); err != nil {
		return j, fmt.Errorf("filters: %w", err)
	}
	return j, nil
}
