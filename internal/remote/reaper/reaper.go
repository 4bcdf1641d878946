// Package reaper is the platform's scheduled janitor (EventBridge, every
// minute): it relaunches jobs whose worker stopped heart-beating (the new worker
// resumes from the checkpoints) or fails them after too many attempts, stops
// jobs past their time limit, finishes cancellations a worker did not, fails
// submissions that stopped before their secret was stored, terminates worker
// instances whose job is over, and recomputes the slot counters from the
// active jobs.
package reaper

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"time"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/cost"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/lifecycle"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/remote/store"
)

// OrphanGrace is how long a worker just launched may run before its job
// records it (the launch and the record are two writes).
const OrphanGrace = 2 * time.Minute

// Reaper holds what it needs.
type Reaper struct {
	Config awsenv.Config
	Store  *store.Store
	Life   *lifecycle.Lifecycle
	EC2    *ec2.Client
	// Events announces relaunches and time limits about to run out;
	// Metrics records the number of active jobs.
	Events  *events.Publisher
	Metrics *metrics.Publisher
	Log     *slog.Logger
}

// Report counts what one pass did.
type Report struct {
	Relaunched, Failed, Cancelled, TimedOut, Terminated int
	// Incomplete: submissions failed for want of their secret. Corrected:
	// slot counters moved to the count of active jobs.
	Incomplete, Corrected int
	// LimitNear: jobs told their time limit runs out soon. OverBudget: jobs
	// stopped at their cost limit.
	LimitNear, OverBudget int
}

// overBudget: the job's worker has cost more than its --max-cost so far.
func overBudget(j *remote.Job, now time.Time) bool {
	return j.Options.MaxCostUSD > 0 && j.HourlyUSD > 0 && j.LaunchedAt != nil &&
		cost.SoFar(j.HourlyUSD, *j.LaunchedAt, now) > j.Options.MaxCostUSD
}

// Run makes one pass.
func (r *Reaper) Run(ctx context.Context) (*Report, error) {
	rep := &Report{}
	if n, err := r.Store.MigrateOwners(ctx); err != nil {
		r.Log.Error("migrate job owners", "err", err)
	} else if n > 0 {
		r.Log.Info("job owners are now principals, not sessions", "jobs", n)
	}
	active, err := r.Store.ListActive(ctx)
	if err != nil {
		return nil, err
	}
	r.Metrics.Active(ctx, len(active))
	now := r.Store.Now()
	for _, j := range active {
		if err := r.check(ctx, j, now, rep); err != nil && !errors.Is(err, store.ErrConflict) {
			r.Log.Error("reap job", "job", j.ID, "err", err)
		}
	}
	if err := r.orphans(ctx, rep); err != nil {
		return rep, err
	}
	if err := r.counters(ctx, active, rep); err != nil {
		return rep, err
	}
	return rep, nil
}

// counters recomputes every slot counter from the active jobs (listed at
// the start of the pass, so a job this pass finished still counts: the
// counter's two-pass rule waits for agreement).
func (r *Reaper) counters(ctx context.Context, active []*remote.Job, rep *Report) error {
	want := map[string]int{"": len(active)}
	for _, j := range active {
		want[j.Owner]++
	}
	have, err := r.Store.Counters(ctx)
	if err != nil {
		return err
	}
	for owner := range have {
		if _, ok := want[owner]; !ok {
			want[owner] = 0
		}
	}
	for owner, n := range want {
		corrected, err := r.Store.Reconcile(ctx, owner, n)
		if err != nil {
			return err
		}
		if corrected {
			rep.Corrected++
			r.Log.Warn("slot counter corrected", "owner", owner, "from", have[owner], "to", n)
		}
	}
	return nil
}

func (r *Reaper) check(ctx context.Context, j *remote.Job, now time.Time, rep *Report) error {
	last := j.UpdatedAt
	if j.HeartbeatAt != nil {
		last = *j.HeartbeatAt
	}
	if dl := j.Deadline(); j.Status == remote.Running && !j.LimitWarned && !dl.IsZero() && now.After(dl.Add(-j.LimitWarning())) && now.Before(dl) {
		r.warnLimit(ctx, j, rep)
	}
	switch {
	case j.Status == remote.Queued && j.SecretARN == "" && now.Sub(j.CreatedAt) > r.Config.SubmitTimeout:
		// The API stopped between storing the job and its secret: nothing can
		// run it, and it holds slots.
		rep.Incomplete++
		return r.finish(ctx, j, remote.Failed, "the submission did not complete (the job's connection URLs were never stored): submit the job again")
	case overBudget(j, now):
		rep.OverBudget++
		return r.finish(ctx, j, remote.Failed, fmt.Sprintf("cost limit of $%.2f reached ($%.2f so far at $%.4f/h): stopped; raise --max-cost to let such a job finish",
			j.Options.MaxCostUSD, cost.SoFar(j.HourlyUSD, *j.LaunchedAt, now), j.HourlyUSD))
	case !j.Deadline().IsZero() && now.After(j.Deadline().Add(r.Config.CancelGrace)):
		rep.TimedOut++
		return r.finish(ctx, j, remote.Failed, fmt.Sprintf("time limit of %d minutes exceeded", j.Options.TimeLimitMinutes))
	case j.CancelAsked && j.Status == remote.Running && now.Sub(last) > r.Config.CancelGrace:
		rep.Cancelled++
		return r.finish(ctx, j, remote.Cancelled, "cancelled; the worker did not stop by itself and was terminated")
	case j.Status == remote.Running && now.Sub(last) > r.Config.HeartbeatTimeout,
		j.Status == remote.Provisioning && now.Sub(j.UpdatedAt) > r.Config.ProvisionTimeout,
		j.Status == remote.Queued && now.Sub(j.UpdatedAt) > r.Config.ProvisionTimeout:
		if j.Attempts >= r.Config.MaxAttempts {
			rep.Failed++
			if j.Status != remote.Running {
				return r.finish(ctx, j, remote.Failed, fmt.Sprintf("the worker did not start within %s (%d attempts): its instance never reported; see replicator jobs logs %s, and check that the workers' subnets reach the AWS APIs (a NAT gateway or VPC endpoints)",
					r.Config.ProvisionTimeout, j.Attempts, j.ID))
			}
			return r.finish(ctx, j, remote.Failed, fmt.Sprintf("the worker stopped heart-beating (%d attempts); see replicator jobs logs %s", j.Attempts, j.ID))
		}
		return r.relaunch(ctx, j, rep)
	}
	return nil
}

// relaunch replaces a silent worker: the old instance goes, a new one resumes.
func (r *Reaper) relaunch(ctx context.Context, j *remote.Job, rep *Report) error {
	if j.InstanceID != "" {
		if err := launch.Terminate(ctx, r.EC2, j.InstanceID); err != nil {
			r.Log.Warn("terminate silent worker", "job", j.ID, "err", err)
		}
	}
	silent := fmt.Sprintf("worker %s stopped heart-beating", j.InstanceID)
	switch {
	case j.Status == remote.Running:
	case j.InstanceID != "":
		silent = fmt.Sprintf("worker %s did not start within %s", j.InstanceID, r.Config.ProvisionTimeout)
	default:
		silent = fmt.Sprintf("no worker was launched within %s", r.Config.ProvisionTimeout)
	}
	started, err := r.Life.Launch(ctx, j, func(instance string) string {
		return fmt.Sprintf("%s; relaunched on %s (attempt %d), resuming from the checkpoints", silent, instance, j.Attempts+1)
	})
	if errors.Is(err, store.ErrConflict) {
		return err
	}
	if err != nil {
		r.Log.Error("relaunch", "job", j.ID, "err", err)
		rep.Failed++
		return r.finish(ctx, j, remote.Failed, launch.Cause(err, j.InstanceType))
	}
	rep.Relaunched++
	r.Log.Info("relaunched", "job", j.ID, "old", j.InstanceID, "new", started.InstanceID)
	r.Events.Publish(ctx, events.Relaunched, started)
	return nil
}

// warnLimit announces, once, that a running job's time limit runs out soon.
func (r *Reaper) warnLimit(ctx context.Context, j *remote.Job, rep *Report) {
	warned, err := r.Store.Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, IfInstance: j.InstanceID,
		Set: map[string]any{"limit_warned": true}})
	if err != nil {
		if !errors.Is(err, store.ErrConflict) {
			r.Log.Warn("mark the time limit warned", "job", j.ID, "err", err)
		}
		return
	}
	rep.LimitNear++
	r.Events.Publish(ctx, events.LimitNear, warned)
}

// finish ends a job the reaper gave up on: status, instance, secret.
func (r *Reaper) finish(ctx context.Context, j *remote.Job, to remote.Status, msg string) error {
	_, err := r.Life.End(ctx, j, lifecycle.End{To: to, Error: msg})
	return err
}

// orphans terminates worker instances whose job is over or unknown, or which
// are no longer the job's current instance.
func (r *Reaper) orphans(ctx context.Context, rep *Report) error {
	workers, err := launch.Workers(ctx, r.EC2, r.Config.Stack)
	if err != nil {
		return err
	}
	var stale []string
	for _, w := range workers {
		j, err := r.Store.Get(ctx, w.JobID)
		if err != nil && !errors.Is(err, store.ErrNotFound) {
			return err
		}
		// A worker just launched may not be recorded on its job yet.
		replaced := j != nil && j.InstanceID != w.ID && time.Since(w.Launched) > OrphanGrace
		if j == nil || j.Status.Terminal() || replaced {
			stale = append(stale, w.ID)
		}
	}
	if len(stale) > 0 {
		if err := launch.Terminate(ctx, r.EC2, stale...); err != nil {
			return err
		}
		rep.Terminated += len(stale)
		r.Log.Info("terminated orphaned workers", "instances", stale)
	}
	return nil
}
