// Package lifecycle starts and ends remote jobs, in one place for every caller:
// the API (submit, cancel), the reaper (relaunch, time limits, silent
// workers), teardown --force and the worker itself. Starting a worker launches
// its instance, hands it the job's secret and records it on the job; ending a
// job writes its final status (a conditional write: a finished job never
// changes again), then terminates its instance and deletes its secret.
package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/service/ec2"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
)

// Lifecycle holds what starting and ending jobs needs.
type Lifecycle struct {
	Store   *store.Store
	Secrets *secrets.Store
	// Launcher starts workers (nil where nothing is launched: the worker).
	Launcher *launch.Launcher
	// EC2 terminates instances (nil for the worker, which has no EC2 rights
	// and ends its own instance by powering off).
	EC2 *ec2.Client
	// InstanceARN names an instance for the secret's tag.
	InstanceARN func(id string) string
	// Events announces jobs that end and Metrics counts them (nil: nothing).
	Events  *events.Publisher
	Metrics *metrics.Publisher
	Log     *slog.Logger
}

// Launch starts a worker for j, which must still be in j.Status on
// j.InstanceID (a relaunch replaces that instance; a first launch has none).
// The job is claimed for the new instance, then its secret is tagged with
// it, which alone may read it.
// message says what happened, given the new instance (nil for the default).
func (l *Lifecycle) Launch(ctx context.Context, j *remote.Job, message func(instance string) string) (*remote.Job, error) {
	instance, err := l.Launcher.Launch(ctx, j.ID, j.InstanceType)
	if err != nil {
		return nil, err
	}
	msg := "worker " + instance + " launched"
	if message != nil {
		msg = message(instance)
	}
	set := map[string]any{"instance_id": instance, "attempts": j.Attempts + 1, "message": msg}
	if j.LaunchedAt == nil {
		// The job's cost runs from its first worker's launch.
		set["launched_at"] = l.Store.Now().UTC()
	}
	// The claim comes first, the tag after: of two launches racing for one
	// job (two reaper passes), the loser's claim fails and it never tags,
	// so the secret cannot end up handed to the instance that lost.
	started, err := l.Store.Transition(ctx, j.ID, store.Change{
		From: []remote.Status{j.Status}, To: remote.Provisioning, IfInstance: j.InstanceID, Set: set,
	})
	if err != nil {
		l.terminate(ctx, j.ID, instance)
		return nil, err
	}
	if err := l.Secrets.TagInstance(ctx, j.ID, l.InstanceARN(instance)); err != nil {
		// The job names an instance that cannot read its secret: it never
		// heart-beats, and the reaper launches another.
		l.terminate(ctx, j.ID, instance)
		return nil, err
	}
	return started, nil
}

// End says how a job ends.
type End struct {
	To remote.Status // Succeeded, Failed or Cancelled
	// Error is the cause, for people (never raw AWS error text).
	Error, Message string
	// From are the statuses it may end from (default: any active one).
	From []remote.Status
	// IfInstance requires the job to be on that instance (a worker ends only
	// the job it runs).
	IfInstance string
	// OwnInstance: the caller is the worker on the job's instance, which
	// powers itself off; nothing terminates it from here.
	OwnInstance bool
	Set         map[string]any
}

// End finishes j. It returns store.ErrConflict, and changes nothing, when
// the job already ended or moved to another instance.
func (l *Lifecycle) End(ctx context.Context, j *remote.Job, e End) (*remote.Job, error) {
	if !e.To.Terminal() {
		return nil, fmt.Errorf("end job %s: %q is not a final status", j.ID, e.To)
	}
	from := e.From
	if len(from) == 0 {
		from = remote.Active
	}
	set := map[string]any{}
	for k, v := range e.Set {
		set[k] = v
	}
	if e.Error != "" {
		set["error"] = e.Error
	}
	msg := e.Message
	if msg == "" {
		msg = "job " + string(e.To)
		if e.Error != "" {
			msg = e.Error
		}
	}
	set["message"] = msg
	ended, err := l.Store.Transition(ctx, j.ID, store.Change{From: from, To: e.To, IfInstance: e.IfInstance, Set: set})
	if err != nil {
		return nil, err
	}
	if !e.OwnInstance && ended.InstanceID != "" {
		l.terminate(ctx, j.ID, ended.InstanceID)
	}
	if err := l.Secrets.Delete(ctx, j.ID); err != nil {
		l.log().Warn("delete the secret of an ended job", "job", j.ID, "err", err)
	}
	l.log().Info("job ended", "job", j.ID, "status", e.To, "reason", msg)
	l.Events.Publish(ctx, events.Ended(e.To), ended)
	l.Metrics.Ended(ctx, string(e.To))
	return ended, nil
}

// IsConflict says the job was not in a state the change allowed.
func IsConflict(err error) bool { return errors.Is(err, store.ErrConflict) }

func (l *Lifecycle) terminate(ctx context.Context, jobID, instance string) {
	if l.EC2 == nil || instance == "" {
		return
	}
	if err := launch.Terminate(ctx, l.EC2, instance); err != nil {
		l.log().Warn("terminate worker", "job", jobID, "instance", instance, "err", err)
	}
}

func (l *Lifecycle) log() *slog.Logger {
	if l.Log == nil {
		return slog.New(slog.DiscardHandler)
	}
	return l.Log
}
