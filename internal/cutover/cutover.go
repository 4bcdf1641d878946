// Package cutover switches an application from a replicated source to its
// target in named steps: guardrails (no change), fence the source's writes,
// drain what the target has not applied, copy the sequences, a final check,
// and the switch itself (replication stopped, optionally set up in reverse).
// Any failure before the switch lifts the fence exactly as it was and leaves
// replication running; the steps' state is checkpointed, so a run that died
// mid-way is finished or undone by the next one.
//
// A cut-over runs in a direction: from the primary being left ("up", fenced)
// to the one taking over ("down"). cutover goes source → target over the
// forward replication; cutover --rollback goes target → source over the
// reverse one that cutover --reverse set up.
package cutover

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/replication"
)

// Step is one named step of a cut-over.
type Step string

const (
	Guardrails Step = "guardrails"
	Fence      Step = "fence"
	Drain      Step = "drain"
	Sequences  Step = "sequences"
	Check      Step = "final check"
	Switch     Step = "switch"
)

// Steps in order.
var Steps = []Step{Guardrails, Fence, Drain, Sequences, Check, Switch}

// ParseStep reads a step's name ("final-check" and "check" name the check).
func ParseStep(s string) (Step, bool) {
	s = strings.ReplaceAll(strings.ToLower(s), "-", " ")
	if s == "check" {
		s = string(Check)
	}
	for _, st := range Steps {
		if string(st) == s {
			return st, true
		}
	}
	return "", false
}

// Options of one cut-over.
type Options struct {
	Source, Target *conninfo.Endpoint
	// SourceForTarget is how the target reaches the source, TargetForSource
	// how the source reaches the target (nil: as given).
	SourceForTarget, TargetForSource *conninfo.Endpoint
	Filters                          *filter.Rules
	// Rollback switches back from the target to the source, over the
	// reverse replication. Reverse sets up replication from the new primary
	// back to the old one at the switch.
	Rollback, Reverse bool
	DryRun            bool
	// MaxLag bounds each of the guardrails' catch-up readings.
	MaxLag time.Duration
	// DrainTimeout lets open transactions finish before sessions are ended;
	// SwitchTimeout bounds the wait for the target to apply the fenced
	// position.
	DrainTimeout, SwitchTimeout time.Duration
	// FenceNone: the application is already stopped; nothing is fenced, and
	// writes that still arrive stop the cut-over.
	FenceNone bool
	// SequenceMargin moves every sequence on by this many steps.
	SequenceMargin int64
	// Verify adds a content hash of every table to the final check.
	Verify bool
	// UnfenceSource lifts the fence on the primary left, after the switch.
	UnfenceSource bool
	// Store keeps the steps' state (a file locally, the jobs table on a
	// worker); records hold settings and positions, never credentials.
	Store checkpoint.Store
	// Log reports what happens.
	Log func(step Step, db, msg string)
	// StepDone is told each step's time.
	StepDone func(step Step, took time.Duration)
	// FailAfter injects a failure once that step is done (tests); for the
	// switch, half-way through it, after the first database. AfterStep is
	// called once each step is done (tests end the process there).
	FailAfter Step
	AfterStep func(Step)
}

// Result of a cut-over.
type Result struct {
	Direction string   `json:"direction"` // "source → target" or back
	Databases []string `json:"databases"`
	// Plan is what the steps will do (every run; all of a dry run).
	Plan []string `json:"plan"`
	// FenceLSN is the up side's WAL position after the fence.
	FenceLSN string   `json:"fence_lsn,omitempty"`
	Steps    []Timing `json:"steps"`
	// Switched: replication stopped and the new primary is in use.
	Switched bool `json:"switched"`
	// NewPrimary is the URL the application now uses (no password).
	NewPrimary string `json:"new_primary,omitempty"`
	// StillFenced are the databases left read-only on the old primary, and
	// Unfence the statements that lift it.
	StillFenced []string `json:"still_fenced,omitempty"`
	Unfence     []string `json:"unfence,omitempty"`
	// Reverse: replication back to the old primary runs.
	Reverse bool `json:"reverse"`
	// Finished: this run finished a switch that an earlier run began.
	Finished bool `json:"finished_earlier_switch,omitempty"`
}

// Timing is one step's time.
type Timing struct {
	Step    Step    `json:"step"`
	Seconds float64 `json:"seconds"`
}

// StepError is a failure at a step.
type StepError struct {
	Step Step
	Err  error
	// Undone says what was put back before the switch ("" when the
	// failure left nothing to undo, or came at the switch).
	Undone string
}

func (e *StepError) Error() string {
	msg := fmt.Sprintf("cut-over stopped at the %s step: %v", e.Step, e.Err)
	if e.Undone != "" {
		msg += " (" + e.Undone + ")"
	}
	return msg
}

func (e *StepError) Unwrap() error { return e.Err }

// side is one server of the cut-over.
type side struct {
	role string // "source" or "target", as the user named them
	ep   *conninfo.Endpoint
	srv  *catalog.Server
}

// run is one cut-over in progress.
type run struct {
	o          Options
	up, down   side
	names      func(db string) replication.Names // up → down
	back       func(db string) replication.Names // down → up (reverse)
	downFromUp *conninfo.Endpoint                // how up reaches down
	dbs        []*dbRun
	res        *Result
	records    map[string]checkpoint.Record
}

// Run performs the cut-over.
func Run(ctx context.Context, o Options) (*Result, error) {
	r := &run{o: o, res: &Result{}}
	if o.Log == nil {
		r.o.Log = func(Step, string, string) {}
	}
	if err := r.open(ctx); err != nil {
		return nil, err
	}
	defer r.close()
	var err error
	if r.records, err = o.Store.Load(ctx); err != nil {
		return nil, fmt.Errorf("read the cut-over's state: %w", err)
	}
	if done, err := r.resume(ctx); done || err != nil {
		return r.res, err
	}
	if err := r.step(ctx, Guardrails, r.guardrails); err != nil {
		return r.res, &StepError{Step: Guardrails, Err: err}
	}
	if o.DryRun {
		return r.res, nil
	}
	// Before the fence, so that it costs no downtime: tables that joined
	// the subscription after the copy get the statistics the copy's have.
	for _, d := range r.dbs {
		analyzed, warnings, err := replication.AnalyzeJoined(ctx, d.down, d.n.Subscription)
		if err != nil {
			return r.res, &StepError{Step: Guardrails, Err: err}
		}
		for _, w := range warnings {
			r.o.Log(Guardrails, d.db, "warning: "+w)
		}
		if len(analyzed) > 0 {
			r.o.Log(Guardrails, d.db, "analyzed "+strings.Join(analyzed, ", ")+": the subscription copied their rows since they joined")
		}
	}
	for _, st := range []struct {
		step Step
		fn   func(context.Context) error
	}{{Fence, r.fence}, {Drain, r.drain}, {Sequences, r.sequences}, {Check, r.check}} {
		if err := r.step(ctx, st.step, st.fn); err != nil {
			return r.res, r.abort(st.step, err)
		}
	}
	if err := r.step(ctx, Switch, r.switchOver); err != nil {
		return r.res, &StepError{Step: Switch, Err: err}
	}
	return r.res, nil
}

// step runs one step and times it.
func (r *run) step(ctx context.Context, s Step, fn func(context.Context) error) error {
	start := time.Now()
	err := fn(ctx)
	took := time.Since(start)
	r.res.Steps = append(r.res.Steps, Timing{Step: s, Seconds: took.Seconds()})
	if r.o.StepDone != nil {
		r.o.StepDone(s, took)
	}
	if err == nil && r.o.FailAfter == s && s != Switch {
		err = errInjected
	}
	if err == nil && r.o.AfterStep != nil {
		r.o.AfterStep(s)
	}
	return err
}

var errInjected = errors.New("failure injected after this step (test)")

// abort undoes the fence after a failure before the switch.
func (r *run) abort(s Step, err error) error {
	bg := context.Background()
	if uerr := r.unfenceAll(bg, r.up); uerr != nil {
		return &StepError{Step: s, Err: fmt.Errorf("%w; and lifting the fence failed too: %v (run the same command again: it restores the settings first)", err, uerr)}
	}
	undone := "nothing was switched: replication goes on; run the same command again to start over"
	if !r.o.FenceNone {
		undone = "nothing was switched: the " + r.up.role + "'s settings are restored and replication goes on; run the same command again to start over"
	}
	return &StepError{Step: s, Err: err, Undone: undone}
}

// open connects to both servers and to each selected database.
func (r *run) open(ctx context.Context) error {
	src, dst := side{role: "source", ep: r.o.Source}, side{role: "target", ep: r.o.Target}
	for _, s := range []*side{&src, &dst} {
		conn, err := s.ep.Connect(ctx)
		if err != nil {
			return err
		}
		s.srv, err = catalog.ReadServer(ctx, conn)
		conn.Close(ctx)
		if err != nil {
			return fmt.Errorf("%s: %w", s.role, err)
		}
	}
	if catalog.SameServer(src.srv, dst.srv) {
		return &problem.Problem{Msg: "source and target are the same server", Fix: "point --target at another cluster"}
	}
	sourceForTarget, targetForSource := r.o.SourceForTarget, r.o.TargetForSource
	if sourceForTarget == nil {
		sourceForTarget = r.o.Source
	}
	if targetForSource == nil {
		targetForSource = r.o.Target
	}
	if r.o.Rollback {
		r.up, r.down, r.names, r.back, r.downFromUp = dst, src, replication.ReverseNamesFor, replication.NamesFor, sourceForTarget
		r.res.Direction = "target → source (rollback)"
	} else {
		r.up, r.down, r.names, r.back, r.downFromUp = src, dst, replication.NamesFor, replication.ReverseNamesFor, targetForSource
		r.res.Direction = "source → target"
	}
	dbs, err := r.databases()
	if err != nil {
		return err
	}
	for _, db := range dbs {
		d, err := r.openDB(ctx, db)
		if err != nil {
			return fmt.Errorf("database %s: %w", db, err)
		}
		r.dbs = append(r.dbs, d)
	}
	r.res.Databases = dbs
	return nil
}

func (r *run) close() {
	for _, d := range r.dbs {
		d.close()
	}
}

// databases selected on the source, each required on the target.
func (r *run) databases() ([]string, error) {
	src, dst := r.up.srv, r.down.srv
	if r.o.Rollback {
		src, dst = dst, src
	}
	if _, err := r.o.Filters.CheckDatabases(src.Databases); err != nil {
		return nil, err
	}
	onTarget := map[string]bool{}
	for _, d := range dst.Databases {
		onTarget[d] = true
	}
	var out []string
	for _, d := range src.Databases {
		if !r.o.Filters.Database(d) {
			continue
		}
		if !onTarget[d] {
			return nil, &problem.Problem{Msg: fmt.Sprintf("database %s is not on the target", d), Fix: "copy and replicate it first (replicator init --sync), or leave it out with --exclude-databases"}
		}
		out = append(out, d)
	}
	if len(out) == 0 {
		return nil, &problem.Problem{Msg: "no database selected", Fix: "every database except postgres is selected by default; name postgres in --include-databases to use it"}
	}
	return out, nil
}

// dbRun is one database's part: a read-write session on each side.
type dbRun struct {
	db       string
	n        replication.Names
	up, down *pgx.Conn
	// tables are the replicated tables.
	tables []catalog.Name
	// prev is the database's own default_transaction_read_only before the
	// fence (nil: not set); fenced once this run set it.
	prev   *string
	fenced bool
	// applied is the target's replication origin after the drain ("" when
	// the role may not read it).
	applied string
	// sessions are the other clients' sessions the fence will end.
	sessions []session
}

// appName marks replicator's own sessions, which the fence leaves alone.
const appName = "replicator cutover"

func (r *run) openDB(ctx context.Context, db string) (*dbRun, error) {
	d := &dbRun{db: db, n: r.names(db)}
	var err error
	if d.up, err = connectRW(ctx, r.up.ep, db); err != nil {
		return nil, err
	}
	if d.down, err = connectRW(ctx, r.down.ep, db); err != nil {
		d.up.Close(ctx)
		return nil, err
	}
	return d, nil
}

func (d *dbRun) close() {
	d.up.Close(context.Background())
	d.down.Close(context.Background())
}

// connectRW opens a session in db that writes even in a fenced database
// (the fence is a default; our own sessions set it off).
func connectRW(ctx context.Context, ep *conninfo.Endpoint, db string) (*pgx.Conn, error) {
	e, err := ep.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	conn, err := e.Connect(ctx)
	if err != nil {
		return nil, err
	}
	if _, err := conn.Exec(ctx, "SET default_transaction_read_only = off; SET application_name = '"+appName+"'"); err != nil {
		conn.Close(ctx)
		return nil, err
	}
	return conn, nil
}
