package cutover

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/replication"
)

// The fence is PostgreSQL's own: a database whose sessions default to
// read-only transactions, and the sessions that were open before ended. Its
// record (the database's previous setting, and how far the cut-over got)
// is written durably before the change, so that a run that dies with the
// source fenced is undone, or finished, by the next one.

// Phases of a fence record.
const (
	phaseFenced    = "fenced"    // fenced; the switch has not begun
	phaseSwitching = "switching" // the switch began: finish it
	phaseSwitched  = "switched"  // done; the old primary may still be fenced
	phaseLifted    = "lifted"    // the previous setting is back
)

type fenceRecord struct {
	// Prev is the database's own default_transaction_read_only before the
	// fence (nil: not set); Fenced whether this cut-over set it.
	Prev   *string `json:"prev"`
	Fenced bool    `json:"fenced"`
	Phase  string  `json:"phase"`
	LSN    string  `json:"lsn,omitempty"`
}

func fenceKey(role, db string) string { return "fence/" + role + "/" + db }

// record writes database d's fence record on side role, durably.
func (r *run) record(ctx context.Context, role string, d *dbRun, phase string) error {
	data, err := json.Marshal(fenceRecord{Prev: d.prev, Fenced: d.fenced, Phase: phase, LSN: r.res.FenceLSN})
	if err != nil {
		return err
	}
	status := checkpoint.Running
	if phase == phaseLifted {
		status = checkpoint.Done
	}
	rec := checkpoint.Record{Key: fenceKey(role, d.db), Status: status, Data: string(data), Updated: time.Now()}
	if err := r.o.Store.Put(ctx, rec, true); err != nil {
		return fmt.Errorf("record the fence of %s: %w", d.db, err)
	}
	r.records[rec.Key] = rec
	return nil
}

// recorded is side role's record of database db (ok false when none).
func (r *run) recorded(role, db string) (fenceRecord, bool) {
	rec, ok := r.records[fenceKey(role, db)]
	if !ok {
		return fenceRecord{}, false
	}
	var f fenceRecord
	if json.Unmarshal([]byte(rec.Data), &f) != nil {
		return fenceRecord{}, false
	}
	return f, true
}

// dbSetting is the database's own default_transaction_read_only (nil: not
// set), the one the fence replaces.
func dbSetting(ctx context.Context, conn *pgx.Conn) (*string, error) {
	var v *string
	err := conn.QueryRow(ctx, `SELECT (SELECT substr(c, length('default_transaction_read_only=') + 1)
	  FROM pg_catalog.pg_db_role_setting s, unnest(s.setconfig) c
	  WHERE s.setdatabase = d.oid AND s.setrole = 0 AND c LIKE 'default\_transaction\_read\_only=%')
	FROM pg_catalog.pg_database d WHERE d.datname = pg_catalog.current_database()`).Scan(&v)
	return v, err
}

func isOn(v string) bool {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "on", "true", "yes", "1", "t", "y":
		return true
	}
	return false
}

// fence makes every selected database read-only by default on the up side,
// lets open transactions finish for up to DrainTimeout, ends the sessions
// still there, and records the WAL position after it.
func (r *run) fence(ctx context.Context) error {
	for _, d := range r.dbs {
		var err error
		if d.prev, err = dbSetting(ctx, d.up); err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if r.o.FenceNone {
			continue
		}
		// Recorded before the change: the record may say "fenced" of a
		// database that is not, never the other way round.
		d.fenced = true
		if err := r.record(ctx, r.up.role, d, phaseFenced); err != nil {
			return err
		}
		if _, err := d.up.Exec(ctx, "ALTER DATABASE "+pgx.Identifier{d.db}.Sanitize()+" SET default_transaction_read_only = on"); err != nil {
			return fmt.Errorf("fence database %s: %w", d.db, err)
		}
		r.o.Log(Fence, d.db, "new sessions are read-only")
	}
	if !r.o.FenceNone {
		if err := r.endSessions(ctx); err != nil {
			return err
		}
	}
	lsn, err := replication.CommittedLSN(ctx, r.dbs[0].up)
	if err != nil {
		return err
	}
	r.res.FenceLSN = lsn
	r.o.Log(Fence, "", "the "+r.up.role+"'s WAL position after the fence: "+lsn)
	return nil
}

// endSessions waits up to DrainTimeout for the sessions in a transaction to
// finish it, then ends every other client session in the fenced databases
// (an idle session keeps the read-write default it started with).
func (r *run) endSessions(ctx context.Context) error {
	deadline := time.Now().Add(r.o.DrainTimeout)
	for {
		busy := 0
		for _, d := range r.dbs {
			ss, err := otherSessions(ctx, d.up)
			if err != nil {
				return err
			}
			for _, s := range ss {
				if s.inXact {
					busy++
				}
			}
		}
		if busy == 0 || time.Now().After(deadline) {
			if busy > 0 {
				r.o.Log(Fence, "", fmt.Sprintf("%d session(s) still in a transaction after --drain-timeout %s: ending them rolls their transactions back", busy, r.o.DrainTimeout))
			}
			break
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(50 * time.Millisecond):
		}
	}
	for _, d := range r.dbs {
		var ended int
		if err := d.up.QueryRow(ctx, `SELECT count(*) FILTER (WHERE pg_catalog.pg_terminate_backend(a.pid))
		  FROM pg_catalog.pg_stat_activity a WHERE `+otherClients, appName).Scan(&ended); err != nil {
			return fmt.Errorf("end the sessions in %s: %w", d.db, err)
		}
		// A terminated backend ends a moment later; until then it may still
		// commit what it was committing.
		for wait := time.Now().Add(10 * time.Second); ; {
			ss, err := otherSessions(ctx, d.up)
			if err != nil {
				return err
			}
			old := 0
			for _, s := range ss {
				if s.inXact {
					old++
				}
			}
			if old == 0 || time.Now().After(wait) {
				break
			}
			time.Sleep(20 * time.Millisecond)
		}
		if ended > 0 {
			r.o.Log(Fence, d.db, fmt.Sprintf("ended %d session(s)", ended))
		}
	}
	return nil
}

// unfenceAll puts every fenced database of side s back as it was.
func (r *run) unfenceAll(ctx context.Context, s side) error {
	var errs []string
	for _, d := range r.dbs {
		if !d.fenced {
			continue
		}
		if err := unfence(ctx, s, d.db, d.prev); err != nil {
			errs = append(errs, fmt.Sprintf("%s: %v", d.db, err))
			continue
		}
		d.fenced = false
		if err := r.record(ctx, s.role, d, phaseLifted); err != nil {
			errs = append(errs, err.Error())
		}
		r.o.Log(Fence, d.db, "lifted the fence: "+restoreStatement(d.db, d.prev))
	}
	if len(errs) > 0 {
		return fmt.Errorf("%s", strings.Join(errs, "; "))
	}
	return nil
}

// unfence restores database db's own setting on side s, in a session of
// its own (the run's may have died with the failure being handled).
func unfence(ctx context.Context, s side, db string, prev *string) error {
	conn, err := connectRW(ctx, s.ep, db)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	_, err = conn.Exec(ctx, restoreStatement(db, prev))
	return err
}

// restoreStatement puts database db's setting back to prev.
func restoreStatement(db string, prev *string) string {
	id := pgx.Identifier{db}.Sanitize()
	if prev == nil {
		return "ALTER DATABASE " + id + " RESET default_transaction_read_only"
	}
	return "ALTER DATABASE " + id + " SET default_transaction_read_only = '" + strings.ReplaceAll(*prev, "'", "''") + "'"
}

// drain waits until the down side has applied everything up to the fence.
func (r *run) drain(ctx context.Context) error {
	deadline := time.Now().Add(r.o.SwitchTimeout)
	for _, d := range r.dbs {
		ok, took, err := replication.Applied(ctx, d.up, d.down, d.n, r.res.FenceLSN, time.Until(deadline))
		if err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if !ok {
			return fmt.Errorf("database %s: the %s had not applied up to the fence's position %s after --switch-timeout %s; fix: see replicator status for why it lags, or raise --switch-timeout",
				d.db, r.down.role, r.res.FenceLSN, r.o.SwitchTimeout)
		}
		// Applied may not yet be flushed on the down side (subscriptions
		// commit asynchronously): a commit of our own flushes the WAL up to
		// it, so that the slot can go at the switch.
		if _, err := d.down.Exec(ctx, "SET synchronous_commit = on; SELECT pg_catalog.txid_current()"); err != nil {
			return fmt.Errorf("database %s: flush the %s's WAL: %w", d.db, r.down.role, err)
		}
		if d.applied, _, err = replication.AppliedLSN(ctx, d.down, d.n.Subscription); err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		r.o.Log(Drain, d.db, fmt.Sprintf("applied up to the fence in %s", took.Round(time.Millisecond)))
	}
	return nil
}
