// Package worker runs one remote job on its EC2 instance: it reads the job
// and its secret, marks it running, runs the engine with checkpoints in DynamoDB
// (a replacement worker resumes), heart-beats with progress, ships its log to
// CloudWatch Logs, watches for cancel and the time limit, and ends the job
// (final status, secret deleted). It then exits; the image's unit powers the
// instance off, which terminates it.
package worker

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/cutover"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/lifecycle"
	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/runner"
)

// Worker runs one job.
type Worker struct {
	// Allow decides the addresses a job may connect to (default
	// conninfo.Allowed; the emulated platform's databases are on loopback).
	Allow             func(netip.Addr) error
	JobID, InstanceID string
	Store             *store.Store
	Secrets           *secrets.Store
	Logs              *logs.Writer
	// Events announces the job's end (nil announces nothing).
	Events *events.Publisher
	// Metrics publishes the job's progress every MetricsEvery (default
	// metrics.Every).
	Metrics      *metrics.Publisher
	MetricsEvery time.Duration
	Tools        *pgtools.Tools
	// Image is the instance's AMI ("" when unknown), said by the checks.
	Image          string
	HeartbeatEvery time.Duration
	TempDir        string
	Log            *slog.Logger
}

var (
	errCancelled = errors.New("cancelled")
	errReplaced  = errors.New("replaced by another worker")
)

// Run runs the job to its end. It returns an error only when the job could not
// be handled at all; the job's own failure is recorded on the job.
func (w *Worker) Run(ctx context.Context) error {
	if w.HeartbeatEvery == 0 {
		w.HeartbeatEvery = remote.HeartbeatEvery
	}
	job, err := w.start(ctx)
	if err != nil || job == nil {
		return err
	}
	logCtx, stopLogs := context.WithCancel(context.Background())
	logsDone := make(chan struct{})
	go func() { w.Logs.Run(logCtx, LogFlushEvery); close(logsDone) }()
	defer func() { stopLogs(); <-logsDone }()

	runCtx, cancel := context.WithCancelCause(ctx)
	defer cancel(nil)
	if d := job.Deadline(); !d.IsZero() {
		var stop context.CancelFunc
		runCtx, stop = context.WithDeadline(runCtx, d)
		defer stop()
	}
	s := &sink{w: w}
	// The heartbeat goes on until the final status is written: the last log
	// flush (bounded, but slow when CloudWatch Logs is down) must not look
	// like a dead worker.
	hbCtx, stopHeartbeat := context.WithCancel(ctx)
	hbDone := make(chan struct{})
	go func() { w.heartbeat(hbCtx, cancel, s); close(hbDone) }()
	defer func() { stopHeartbeat(); <-hbDone }()

	if w.MetricsEvery == 0 {
		w.MetricsEvery = metrics.Every
	}
	metricsCtx, stopMetrics := context.WithCancel(runCtx)
	metricsDone := make(chan struct{})
	go func() { w.Metrics.Job(metricsCtx, job.ID, w.MetricsEvery, s.snapshot); close(metricsDone) }()
	runErr := w.execute(runCtx, job, s)
	stopMetrics()
	<-metricsDone
	cause := context.Cause(runCtx)
	cancel(nil)
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
	status, msg := remote.Succeeded, ""
	monitoring := job.Options.Monitor && runErr == nil
	switch {
	case monitoring && errors.Is(cause, errCancelled):
		status, msg = remote.Cancelled, "monitoring cancelled on request; replication goes on (replicator sync --stop ends it)"
	case monitoring && errors.Is(cause, context.DeadlineExceeded):
		status, msg = remote.Succeeded, "monitoring ended at the time limit; replication goes on"
	case errors.Is(cause, errCancelled):
		status, msg = remote.Cancelled, "cancelled on request"
	case errors.Is(cause, context.DeadlineExceeded):
		status, msg = remote.Failed, fmt.Sprintf("time limit of %d minutes exceeded", job.Options.TimeLimitMinutes)
	case runErr != nil:
		status, msg = remote.Failed, oneLine(redact.Scrub(runErr.Error(), s.secrets))
		if d, ok := awsenv.Describe(runErr); ok {
			// AWS's own text (request ids, ARNs) stays in the worker's log.
			w.Log.Error("job failed on an AWS call", "job", w.JobID, "err", runErr)
			msg = d
		}
	}
	return w.finish(job, s, status, msg)
}

// start waits for the job to name this instance and marks it running.
func (w *Worker) start(ctx context.Context) (*remote.Job, error) {
	job, err := w.awaitJob(ctx)
	if err != nil || job == nil {
		return nil, err
	}
	set := map[string]any{"heartbeat_at": w.Store.Now().UTC(), "message": "worker started on " + w.InstanceID,
		"worker_version": buildinfo.Get().Version}
	if job.StartedAt == nil {
		set["started_at"] = w.Store.Now().UTC()
	}
	job, err = w.Store.Transition(ctx, w.JobID, store.Change{
		From: []remote.Status{remote.Provisioning, remote.Running}, To: remote.Running, IfInstance: w.InstanceID, Set: set,
	})
	if errors.Is(err, store.ErrConflict) {
		return nil, nil
	}
	return job, err
}

// finish ships the rest of the log, then ends the job: final status and
// progress, secret deleted (the instance powers itself off when the worker
// exits). The job's message says when some of its log could not be shipped.
func (w *Worker) finish(job *remote.Job, s *sink, status remote.Status, msg string) error {
	s.event(progress.Event{Kind: progress.Info, Message: "job " + string(status)})
	final := map[string]any{}
	if snap := s.snapshot(); snap != nil {
		final["progress"] = snap
	}
	// The whole log is readable once the status is final; CloudWatch Logs
	// being down delays the status by FinalFlush at most.
	lctx, lcancel := context.WithTimeout(context.Background(), FinalFlush)
	_ = w.Logs.Flush(lctx)
	lcancel()
	message := ""
	if n := w.Logs.Unsent(); n > 0 {
		message = fmt.Sprintf("job %s; %d log line(s) could not be shipped to CloudWatch Logs", status, n)
		if msg != "" {
			message = msg + "; " + message
		}
	}
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	life := &lifecycle.Lifecycle{Store: w.Store, Secrets: w.Secrets, Events: w.Events, Metrics: w.Metrics, Log: w.Log}
	cause := msg
	if status == remote.Succeeded {
		// A success's note (a monitor's end) is a message, not an error.
		cause = ""
		if message == "" {
			message = msg
		}
	}
	if _, err := life.End(ctx, job, lifecycle.End{To: status, Error: cause, Message: message, From: []remote.Status{remote.Running}, IfInstance: w.InstanceID,
		OwnInstance: true, Set: final}); err != nil {
		return fmt.Errorf("record final status: %w", err)
	}
	if status == remote.Succeeded {
		_ = w.Store.Checkpoints(w.JobID).Clear(ctx)
	}
	return nil
}

// LogFlushEvery is how often the worker's log is shipped.
const LogFlushEvery = 2 * time.Second

// FinalFlush bounds the last shipping of the log before the final status.
var FinalFlush = 15 * time.Second

func (w *Worker) allow() func(netip.Addr) error {
	if w.Allow != nil {
		return w.Allow
	}
	return conninfo.Allowed
}

// ClaimWait bounds how long a worker waits for its job to name its instance:
// the instance can boot before the launch is recorded on the job.
var ClaimWait = 2 * time.Minute

// awaitJob reads the job once it names this instance; nil when the job is
// over or belongs to another instance (nothing to do).
func (w *Worker) awaitJob(ctx context.Context) (*remote.Job, error) {
	deadline := time.Now().Add(ClaimWait)
	for {
		job, err := w.Store.Get(ctx, w.JobID)
		if err != nil {
			return nil, err
		}
		mine := job.InstanceID == w.InstanceID
		launching := job.Status == remote.Queued || job.Status == remote.Provisioning
		switch {
		case mine && !job.Status.Terminal():
			return job, nil
		case job.Status.Terminal(), !launching, time.Now().After(deadline):
			w.Log.Info("nothing to do", "job", w.JobID, "status", job.Status, "instance", job.InstanceID)
			return nil, nil
		}
		select {
		case <-ctx.Done():
			return nil, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
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
		case errors.Is(err, store.ErrConflict):
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

// execute runs the job's command with the same runner as a local run.
func (w *Worker) execute(ctx context.Context, job *remote.Job, s *sink) error {
	sec, err := w.Secrets.Get(ctx, job.ID)
	if err != nil {
		return err
	}
	certs, err := os.MkdirTemp(w.TempDir, "replicator-certs-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(certs)
	j, err := runner.Parse(job.Command, *sec, job.Filters, job.Options, certs)
	if err != nil {
		return err
	}
	for _, ep := range []*conninfo.Endpoint{j.Source, j.Target, j.SourceForTarget} {
		if ep != nil {
			s.secrets = append(s.secrets, ep.Secrets()...)
		}
	}
	// The worker connects only where a job may go: never to instance
	// metadata, loopback or link-local addresses, whatever a name resolves to.
	for _, ep := range []*conninfo.Endpoint{j.Source, j.Target} {
		if err := ep.Guard(ctx, w.allow()); err != nil {
			return err
		}
	}
	if job.Command == "cutover" {
		return w.cutover(ctx, job, j, s)
	}
	if job.Command == "sync" {
		if err := runner.Sync(ctx, j, func(db, msg string) { s.event(progress.Event{Kind: progress.Info, Database: db, Message: msg}) }); err != nil {
			return err
		}
		if job.Options.Monitor {
			return w.monitor(ctx, job, j, s)
		}
		return nil
	}
	// --no-resume starts the job over once; a relaunched worker resumes it.
	if job.Attempts > 1 {
		j.Options.NoResume = false
	}
	res, err := runner.Init(ctx, j, runner.Env{
		FindTools:   func(context.Context, string) (*pgtools.Tools, error) { return w.Tools, nil },
		Checkpoints: w.Store.Checkpoints(job.ID), TempDir: w.TempDir, Progress: s, Logger: w.Log, OnWorker: true, Image: w.Image,
		// The CLI asked before submitting (--drop-existing needs --yes or a yes).
		Confirm: func(string) (bool, error) { return true, nil },
	})
	if res != nil && res.Copy != nil {
		s.result(progress.Summary, res.Copy.Trimmed(100, 500))
	}
	if res != nil && res.Verify != nil {
		s.result(progress.VerifyResult, res.Verify)
	}
	if err == nil && job.Options.Monitor {
		return w.monitor(ctx, job, j, s)
	}
	return err
}

// cutover runs a cut-over's steps; their state is checkpointed in the jobs
// table, so that a relaunched worker finishes the switch the dead one began
// or lifts the fence it left, and never leaves the source fenced with
// replication stopped unsaid.
func (w *Worker) cutover(ctx context.Context, job *remote.Job, j runner.Job, s *sink) error {
	co := runner.CutoverOptions(j, w.Store.Checkpoints(job.ID))
	co.Log = func(step cutover.Step, db, msg string) {
		s.event(progress.Event{Kind: progress.Info, Database: db, Message: "[" + string(step) + "] " + msg})
	}
	co.StepDone = func(step cutover.Step, took time.Duration) {
		s.event(progress.Event{Kind: progress.Info, Message: fmt.Sprintf("[%s] done in %s", step, took.Round(time.Millisecond))})
	}
	res, err := runner.Cutover(ctx, co)
	if err != nil {
		return err
	}
	switch {
	case res.Switched:
		msg := "cut-over " + res.Direction + ": switched; new primary " + res.NewPrimary
		if len(res.StillFenced) > 0 {
			msg += "; the old primary stays read-only (" + strings.Join(res.Unfence, "; ") + ")"
		}
		s.event(progress.Event{Kind: progress.Info, Message: msg})
	case co.DryRun:
		s.event(progress.Event{Kind: progress.Info, Message: "cut-over dry run: the guardrails pass; plan: " + strings.Join(res.Plan, "; ")})
	}
	return nil
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
	e.Message = redact.Scrub(e.Message, s.secrets)
	if len(e.Data) > 0 {
		e.Data = json.RawMessage(redact.Scrub(string(e.Data), s.secrets))
	}
	if e.Kind == progress.Warning || e.Kind == progress.Info || e.Kind == progress.StepDone {
		s.mu.Lock()
		s.msg = strings.TrimSpace(e.Database + " " + e.Step + " " + e.Message)
		s.mu.Unlock()
	}
	b, _ := json.Marshal(e)
	s.w.Logs.Write(string(b))
	fmt.Fprintln(os.Stderr, string(b))
}

// result ships a result as one event (the CLI prints it as a local run does).
func (s *sink) result(kind progress.Kind, v any) {
	b, err := json.Marshal(v)
	if err != nil {
		return
	}
	s.event(progress.Event{Kind: kind, Data: b})
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
