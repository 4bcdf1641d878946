// Package jobworker runs one remote job on its EC2 instance: it reads the job
// and its secret, marks it running, runs the engine with checkpoints in DynamoDB
// (a replacement worker resumes), heart-beats with progress, ships its log to
// CloudWatch Logs, watches for cancel and the time limit, writes the final
// status, deletes the secret and terminates its instance.
package jobworker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/joblogs"
	"github.com/replicatorhq/replicator/internal/jobs"
	"github.com/replicatorhq/replicator/internal/jobsecrets"
	"github.com/replicatorhq/replicator/internal/jobstore"
	"github.com/replicatorhq/replicator/internal/launch"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/validate"
	"github.com/replicatorhq/replicator/internal/verify"
)

// Worker runs one job.
type Worker struct {
	JobID, InstanceID string
	Store             *jobstore.Store
	Secrets           *jobsecrets.Secrets
	EC2               *ec2.Client
	Logs              *joblogs.Writer
	Tools             *pgtools.Tools
	HeartbeatEvery    time.Duration
	TempDir           string
	// NoShutdown keeps the instance when the job ends (debugging).
	NoShutdown bool
	Log        *slog.Logger
}

var (
	errCancelled = errors.New("cancelled")
	errReplaced  = errors.New("replaced by another worker")
)

// Run runs the job to its end. It returns an error only when the job could not
// be handled at all; the job's own failure is recorded on the job.
func (w *Worker) Run(ctx context.Context) error {
	if w.HeartbeatEvery == 0 {
		w.HeartbeatEvery = 5 * time.Second
	}
	defer w.shutdown()
	job, err := w.Store.Get(ctx, w.JobID)
	if err != nil {
		return err
	}
	if job.Status.Terminal() || job.InstanceID != w.InstanceID {
		w.Log.Info("nothing to do", "job", w.JobID, "status", job.Status, "instance", job.InstanceID)
		return nil
	}
	set := map[string]any{"heartbeat_at": w.Store.Now().UTC(), "message": "worker started on " + w.InstanceID}
	if job.StartedAt == nil {
		set["started_at"] = w.Store.Now().UTC()
	}
	job, err = w.Store.Transition(ctx, w.JobID, jobstore.Change{
		From: []jobs.Status{jobs.Provisioning, jobs.Running}, To: jobs.Running, IfInstance: w.InstanceID, Set: set,
	})
	if errors.Is(err, jobstore.ErrConflict) {
		return nil
	}
	if err != nil {
		return err
	}
	logCtx, stopLogs := context.WithCancel(context.Background())
	logsDone := make(chan struct{})
	go func() { w.Logs.Run(logCtx, 2*time.Second); close(logsDone) }()
	defer func() { stopLogs(); <-logsDone }()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if d := job.Deadline(); !d.IsZero() {
		var stop context.CancelFunc
		runCtx, stop = context.WithDeadline(runCtx, d)
		defer stop()
	}
	s := &sink{w: w}
	hbDone := make(chan struct{})
	go func() { w.heartbeat(runCtx, cancel, s); close(hbDone) }()

	runErr := w.execute(runCtx, job, s)
	cause := context.Cause(runCtx)
	cancel(nil)
	<-hbDone

	if errors.Is(cause, errReplaced) {
		w.Log.Warn("another worker owns the job now; leaving", "job", w.JobID)
		return nil
	}
	if ctx.Err() != nil {
		// The instance is going down: leave the job running; the reaper sees the
		// heartbeat stop and relaunches, and the next worker resumes.
		w.Log.Warn("interrupted; leaving the job to be resumed", "job", w.JobID)
		return ctx.Err()
	}
	status, msg := jobs.Succeeded, ""
	switch {
	case errors.Is(cause, errCancelled):
		status, msg = jobs.Cancelled, "cancelled on request"
	case errors.Is(cause, context.DeadlineExceeded):
		status, msg = jobs.Failed, fmt.Sprintf("time limit of %d minutes exceeded", job.Options.TimeLimitMinutes)
	case runErr != nil:
		status, msg = jobs.Failed, pgtools.Scrub(oneLine(runErr.Error()), s.secrets)
	}
	s.event(progress.Event{Kind: progress.Info, Message: "job " + string(status)})
	final := map[string]any{"message": "job " + string(status)}
	if msg != "" {
		final["error"] = msg
	}
	if snap := s.snapshot(); snap != nil {
		final["progress"] = snap
	}
	fctx, fcancel := context.WithTimeout(context.Background(), time.Minute)
	defer fcancel()
	_ = w.Logs.Flush(fctx) // the whole log is readable once the status is final
	if _, err := w.Store.Transition(fctx, w.JobID, jobstore.Change{From: []jobs.Status{jobs.Running}, To: status, IfInstance: w.InstanceID, Set: final}); err != nil {
		return fmt.Errorf("record final status: %w", err)
	}
	if status == jobs.Succeeded {
		_ = w.Store.Checkpoints(w.JobID).Clear(fctx)
	}
	return w.Secrets.Delete(fctx, w.JobID)
}

// heartbeat reports progress every few seconds and hears about cancels and
// replacement.
func (w *Worker) heartbeat(ctx context.Context, cancel context.CancelCauseFunc, s *sink) {
	t := time.NewTicker(w.HeartbeatEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		}
		cancelAsked, err := w.Store.Heartbeat(ctx, w.JobID, w.InstanceID, s.snapshot(), s.lastMessage())
		switch {
		case errors.Is(err, jobstore.ErrConflict):
			cancel(errReplaced)
			return
		case err != nil:
			w.Log.Warn("heartbeat", "err", err) // transient: the reaper tolerates a few misses
		case cancelAsked:
			s.event(progress.Event{Kind: progress.Info, Message: "cancel requested: stopping"})
			cancel(errCancelled)
			return
		}
	}
}

// execute runs the job's command.
func (w *Worker) execute(ctx context.Context, job *jobs.Job, s *sink) error {
	sec, err := w.Secrets.Get(ctx, job.ID)
	if err != nil {
		return err
	}
	src, err := conninfo.Parse("source", sec.Source)
	if err != nil {
		return err
	}
	dst, err := conninfo.Parse("target", sec.Target)
	if err != nil {
		return err
	}
	s.secrets = append(src.Secrets(), dst.Secrets()...)
	rules, err := job.Filters.Compile()
	if err != nil {
		return err
	}
	o := job.Options
	if job.Command == "sync" {
		ro := replication.Options{Source: src, Target: dst, Filters: rules, FixReplicaIdentity: o.ReplicaIdentityFull,
			Sequences: o.Sequences, CopySequences: engine.CopySequences,
			Log: func(db, msg string) { s.event(progress.Event{Kind: progress.Info, Database: db, Message: msg}) }}
		if o.Stop {
			return problem(replication.Stop(ctx, ro))
		}
		return problem(replication.Setup(ctx, ro))
	}
	rep, err := validate.Run(ctx, validate.Options{Source: src, Target: dst, Filters: rules, Jobs: max(o.Jobs, 2), Sync: o.Sync,
		FindTools: func(context.Context, string) (*pgtools.Tools, error) { return w.Tools, nil }})
	if err != nil {
		return err
	}
	for _, f := range rep.Findings {
		if f.Severity == validate.Fail {
			return fmt.Errorf("validate: %s: %s", f.Message, f.Fix)
		}
		if f.Severity == validate.Warn {
			s.event(progress.Event{Kind: progress.Warning, Message: f.Check + ": " + f.Message})
		}
	}
	opts := engine.Options{
		Source: src, Target: dst, Filters: rules, Tools: w.Tools,
		Jobs: o.Jobs, IndexJobs: o.IndexJobs, SplitThreshold: o.SplitLargerThan, MaintenanceWorkMem: o.MaintenanceWorkMem,
		DropExisting: o.DropExisting, Confirm: func(string) (bool, error) { return true, nil }, SkipRoles: o.NoRoles,
		Checkpoints: w.Store.Checkpoints(job.ID), TempDir: w.TempDir, Progress: s, Logger: w.Log,
	}
	if o.Sync {
		opts.Sync = &engine.SyncOptions{FixReplicaIdentity: o.ReplicaIdentityFull}
	}
	res, err := engine.Run(ctx, opts)
	if err != nil {
		return err
	}
	s.event(progress.Event{Kind: progress.Info, Message: fmt.Sprintf("copied %d tables, %d rows, %d bytes in %.1fs", len(res.Tables), res.Rows, res.Bytes, res.Seconds)})
	if !o.Verify {
		return nil
	}
	vres, err := verify.Run(ctx, verify.Options{Source: src, Target: dst, Filters: rules, Jobs: max(4, o.Jobs), Progress: s})
	if vres != nil {
		for _, t := range vres.Tables {
			if !t.Match {
				s.event(progress.Event{Kind: progress.Warning, Database: t.Database, Message: fmt.Sprintf("verify: %s differs (source %d rows, target %d rows)", t.Table, t.SourceRows, t.TargetRows)})
			}
		}
	}
	return err
}

func problem(err error) error {
	var p *replication.Problem
	if errors.As(err, &p) {
		return errors.New(p.Error())
	}
	return err
}

// shutdown terminates the worker's own instance: a finished worker costs nothing.
func (w *Worker) shutdown() {
	if w.NoShutdown || w.InstanceID == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	if err := launch.Terminate(ctx, w.EC2, w.InstanceID); err != nil {
		w.Log.Error("terminate own instance", "err", err)
	}
}

// sink receives the engine's events: progress snapshots for the heartbeat, every
// other event as a JSON line in CloudWatch Logs (the CLI renders them as a local
// run would).
type sink struct {
	w       *Worker
	secrets []string

	mu   sync.Mutex
	snap *progress.Snapshot
	msg  string
}

func (s *sink) Emit(e progress.Event) {
	if e.Kind == progress.Tick {
		s.mu.Lock()
		s.snap = e.Overall
		s.mu.Unlock()
		return
	}
	s.event(e)
}

func (s *sink) event(e progress.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	e.Message = pgtools.Scrub(e.Message, s.secrets)
	if e.Kind == progress.Warning || e.Kind == progress.Info || e.Kind == progress.StepDone {
		s.mu.Lock()
		s.msg = strings.TrimSpace(e.Database + " " + e.Step + " " + e.Message)
		s.mu.Unlock()
	}
	b, _ := json.Marshal(e)
	s.w.Logs.Write(string(b))
	fmt.Fprintln(os.Stderr, string(b))
}

func (s *sink) snapshot() *progress.Snapshot {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.snap
}

func (s *sink) lastMessage() string {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.msg
}

func oneLine(s string) string { return strings.Join(strings.Fields(s), " ") }
