package cutover

import (
	"context"
	"fmt"

	"github.com/replicatorhq/replicator/internal/replication"
)

// switchOver stops the replication up → down (after setting up the one back
// with Reverse, so that a failure there leaves the cut-over undoable), puts
// the down side's own fence back as it was on a rollback, and lifts the up
// side's with UnfenceSource.
func (r *run) switchOver(ctx context.Context) error {
	for _, d := range r.dbs {
		if err := r.record(ctx, r.up.role, d, phaseSwitching); err != nil {
			return err
		}
	}
	for _, d := range r.dbs {
		if r.o.Reverse {
			if err := r.replicateBack(ctx, d); err != nil {
				return fmt.Errorf("database %s: set up the replication back: %w", d.db, err)
			}
		}
		if err := r.stopReplication(ctx, d); err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if r.o.FailAfter == Switch && !r.res.Finished {
			return fmt.Errorf("database %s: %w", d.db, errInjected)
		}
	}
	if err := r.liftDownFence(ctx); err != nil {
		return err
	}
	r.res.Switched, r.res.Reverse = true, r.o.Reverse
	r.res.NewPrimary = r.down.ep.String()
	if r.o.UnfenceSource {
		if err := r.unfenceAll(ctx, r.up); err != nil {
			return fmt.Errorf("lift the fence on the %s: %w", r.up.role, err)
		}
	}
	for _, d := range r.dbs {
		if d.fenced {
			r.res.StillFenced = append(r.res.StillFenced, d.db)
			r.res.Unfence = append(r.res.Unfence, restoreStatement(d.db, d.prev))
			if err := r.record(ctx, r.up.role, d, phaseSwitched); err != nil {
				return err
			}
		}
	}
	return nil
}

// replicateBack sets up replication from the down side back to the up
// side, starting now: a publication of the same tables and a slot on the
// down side, a subscription on the up side that copies nothing and applies
// only changes made on the down side itself.
func (r *run) replicateBack(ctx context.Context, d *dbRun) error {
	b := r.back(d.db)
	exists, err := replication.SubscriptionExists(ctx, d.up, b.Subscription)
	if err != nil || exists {
		// A run that died in the switch got this far for d already.
		return err
	}
	if d.tables == nil {
		if d.tables, err = publishedTables(ctx, d.up, d.n.Publication); err != nil {
			return err
		}
	}
	if err := replication.EnsurePublication(ctx, d.down, b.Publication, d.keyed()); err != nil {
		return err
	}
	downEp, err := r.down.ep.WithDatabase(d.db)
	if err != nil {
		return err
	}
	slot, err := replication.CreateSlot(ctx, downEp, d.down, b.Slot)
	if err != nil {
		return err
	}
	slot.Close()
	via, err := r.downFromUp.WithDatabase(d.db)
	if err != nil {
		return err
	}
	if err := replication.CreateLocalOnlySubscription(ctx, d.up, b, via); err != nil {
		_ = replication.DropSlot(context.Background(), d.down, b.Slot)
		return err
	}
	r.o.Log(Switch, d.db, fmt.Sprintf("replicating back from the %s's LSN %s: publication %s and slot %s on the %s, subscription %s on the %s",
		r.down.role, slot.LSN, b.Publication, b.Slot, r.down.role, b.Subscription, r.up.role))
	return nil
}

// stopReplication removes the replication up → down: the subscription (and
// on the forward direction the target's schema change queue), the slot, the
// publication (and the source's schema change capture).
func (r *run) stopReplication(ctx context.Context, d *dbRun) error {
	n := d.n
	if _, err := replication.DropSubscription(ctx, d.down, n.Subscription); err != nil {
		return err
	}
	if !n.Reverse {
		if _, err := replication.RemoveApply(ctx, d.down); err != nil {
			return err
		}
	}
	if err := replication.DropSlot(ctx, d.up, n.Slot); err != nil {
		return err
	}
	if err := replication.DropPublication(ctx, d.up, n.Publication); err != nil {
		return err
	}
	if !n.Reverse {
		if _, err := replication.RemoveCapture(ctx, d.up); err != nil {
			return err
		}
	}
	r.o.Log(Switch, d.db, fmt.Sprintf("stopped the replication from the %s: subscription %s, slot %s and publication %s dropped", r.up.role, n.Subscription, n.Slot, n.Publication))
	return nil
}

// liftDownFence: the side taking over may carry the fence an earlier
// cut-over left on it (a rollback's source, or the target of a cut-over
// after a rollback): it goes, back to the setting recorded then. On a
// rollback whose record is not here (another machine ran the cut-over),
// the source's own setting is reset.
func (r *run) liftDownFence(ctx context.Context) error {
	for _, d := range r.dbs {
		cur, err := dbSetting(ctx, d.down)
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if cur == nil || !isOn(*cur) {
			continue
		}
		rec, known := r.recorded(r.down.role, d.db)
		var prev *string
		note := ""
		switch {
		case known && rec.Phase == phaseSwitched:
			prev = rec.Prev
		case !known && r.o.Rollback:
			note = " (the cut-over's record is not here, so the database's own setting is reset)"
		default:
			continue
		}
		if err := unfence(ctx, r.down, d.db, prev); err != nil {
			return fmt.Errorf("database %s: lift the fence on the %s: %w", d.db, r.down.role, err)
		}
		if err := r.record(ctx, r.down.role, &dbRun{db: d.db, prev: prev}, phaseLifted); err != nil {
			return err
		}
		r.o.Log(Switch, d.db, "lifted the fence on the "+r.down.role+": "+restoreStatement(d.db, prev)+note)
	}
	return nil
}

// resume deals with a run that died mid-way: one that began the switch is
// finished; one that fenced and went no further is undone, and this run
// starts over. done says the switch was finished here.
func (r *run) resume(ctx context.Context) (done bool, err error) {
	switching := false
	for _, d := range r.dbs {
		rec, ok := r.recorded(r.up.role, d.db)
		if !ok {
			continue
		}
		d.prev, d.fenced = rec.Prev, rec.Fenced
		switch rec.Phase {
		case phaseSwitching:
			switching = true
			r.res.FenceLSN = rec.LSN
		case phaseFenced:
			// Undone below.
		default:
			d.fenced = false
		}
	}
	if switching {
		r.o.Log(Switch, "", "an earlier run began the switch: finishing it")
		r.res.Finished = true
		if err := r.step(ctx, Switch, r.switchOver); err != nil {
			return true, &StepError{Step: Switch, Err: err}
		}
		return true, nil
	}
	for _, d := range r.dbs {
		if d.fenced {
			r.o.Log(Fence, d.db, "an earlier run stopped after fencing the "+r.up.role+": lifting its fence, then starting over")
		}
	}
	if err := r.unfenceAll(ctx, r.up); err != nil {
		return false, fmt.Errorf("lift the fence an earlier run left: %w", err)
	}
	return false, nil
}
