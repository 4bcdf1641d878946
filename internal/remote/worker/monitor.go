package worker

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/runner"
)

// monitor watches a sync job's replication once it is set up, until ctx
// ends (the time limit, a cancel): every MetricsEvery it reads each
// database's status, publishes the lag, and says when the target falls the
// job's threshold behind and when it catches up. A database is as far
// behind as the slot's replay lag, or, when nothing streams from the slot
// while WAL waits (a subscription that stopped applying), as long as that
// has lasted.
func (w *Worker) monitor(ctx context.Context, job *remote.Job, j runner.Job, s *sink) error {
	dbs, err := replication.Databases(ctx, j.Source, j.Filters.Database)
	if err != nil {
		return fmt.Errorf("monitor: %w", err)
	}
	threshold := job.Options.LagAlert()
	s.event(progress.Event{Kind: progress.Info, Message: fmt.Sprintf("replication is set up; watching its lag (alert at %s) until the time limit or a cancel", threshold)})
	behindSince := map[string]time.Time{}
	warned := map[string]bool{} // each warning once, not every tick
	alerted := false
	t := time.NewTicker(w.MetricsEvery)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return nil
		case <-t.C:
		}
		sts, err := replication.ReadAll(ctx, j.Source, j.Target, dbs)
		if err != nil {
			if ctx.Err() != nil {
				return nil
			}
			s.event(progress.Event{Kind: progress.Warning, Message: "read replication status: " + oneLine(err.Error())})
			continue
		}
		// New tables the source created join here: the subscription's
		// refresh cannot run inside the apply worker. Once the subscription
		// has copied them, they are analyzed (unless the job said not to).
		for _, st := range sts {
			if st.Subscription != nil && !job.Options.SkipAnalyze {
				w.analyzeJoined(ctx, j, st.Database, s, warned)
			}
			if len(st.NewTables) == 0 {
				continue
			}
			joined, err := replication.JoinNewTablesOn(ctx, j.Source, j.Target, st)
			if err != nil {
				s.event(progress.Event{Kind: progress.Warning, Database: st.Database, Message: "join new tables: " + oneLine(err.Error())})
			} else if len(joined) > 0 {
				s.event(progress.Event{Kind: progress.Info, Database: st.Database, Message: "new table(s) " + strings.Join(joined, ", ") + " joined the subscription"})
			}
		}
		worst := worstLag(sts, behindSince, time.Now())
		w.Metrics.Lag(ctx, job.ID, worst.Bytes, worst.Seconds)
		worst.ThresholdSeconds = threshold.Seconds()
		switch over := worst.Seconds >= threshold.Seconds(); {
		case over && !alerted:
			alerted = true
			s.event(progress.Event{Kind: progress.Warning, Database: worst.Database, Message: fmt.Sprintf("replication is %.0f s behind (%d bytes of WAL), over the %s alert", worst.Seconds, worst.Bytes, threshold)})
			w.Events.PublishLag(ctx, events.LagHigh, job, &worst)
		case !over && alerted:
			alerted = false
			s.event(progress.Event{Kind: progress.Info, Database: worst.Database, Message: "replication caught up"})
			w.Events.PublishLag(ctx, events.LagRecovered, job, &worst)
		}
	}
}

// analyzeJoined analyzes the tables of db the subscription copied since
// they joined and that have no statistics yet.
func (w *Worker) analyzeJoined(ctx context.Context, j runner.Job, db string, s *sink, warned map[string]bool) {
	analyzed, warnings, err := replication.AnalyzeJoinedOn(ctx, j.Target, db)
	if err != nil {
		warnings = append(warnings, "analyze joined tables: "+oneLine(err.Error()))
	}
	for _, m := range warnings {
		if !warned[db+"\x00"+m] {
			warned[db+"\x00"+m] = true
			s.event(progress.Event{Kind: progress.Warning, Database: db, Message: m})
		}
	}
	if len(analyzed) > 0 {
		s.event(progress.Event{Kind: progress.Info, Database: db, Message: "analyzed " + strings.Join(analyzed, ", ") + ": the subscription copied their rows since they joined"})
	}
}

// worstLag is the database furthest behind; behindSince remembers since
// when each database has had WAL waiting.
func worstLag(sts []*replication.Status, behindSince map[string]time.Time, now time.Time) events.Lag {
	var worst events.Lag
	for _, st := range sts {
		l := events.Lag{Database: st.Database, State: st.State}
		if st.Slot != nil {
			l.Bytes = st.Slot.LagBytes
			if st.Slot.LagSeconds != nil {
				l.Seconds = *st.Slot.LagSeconds
			}
		}
		// A target that has not applied what the source had written when
		// asked (or a slot nobody streams from while WAL waits) is behind
		// since it was first seen so; the walsender's replay lag reads 0
		// while a large transaction is still on its way.
		behind := st.CaughtUp != nil && !*st.CaughtUp || st.Slot != nil && !st.Slot.Active && l.Bytes > 0
		if behind {
			if _, ok := behindSince[st.Database]; !ok {
				behindSince[st.Database] = now
			}
			l.Seconds = max(l.Seconds, now.Sub(behindSince[st.Database]).Seconds())
		} else {
			delete(behindSince, st.Database)
		}
		if worst.Database == "" || l.Seconds > worst.Seconds || l.Seconds == worst.Seconds && l.Bytes > worst.Bytes {
			worst = l
		}
	}
	return worst
}
