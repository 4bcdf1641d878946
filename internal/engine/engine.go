// Package engine copies PostgreSQL clusters: roles, then each database in one
// exported snapshot through named steps (schema dump, pre-data, copy with index
// builds as each table lands, post-data, sequences, large objects), reporting
// progress as events. The CLI and the remote worker both run it.
//
// Where things are: engine.go runs the steps; database.go is one database's
// copy; preflight.go decides and refuses before anything changes; copy.go the
// rows, indexes.go and restore.go the schema around them; sync.go the
// hand-over to replication. Resume is checkpoints.go: every step, table range
// and index is recorded through a checkpoint.Store (a local file, or DynamoDB
// for a remote job) and skipped when a rerun finds it done.
package engine

import (
	"context"
	"fmt"
	"log/slog"
	"os"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/retry"
)

// Options of one copy.
type Options struct {
	// Source and Target point at the databases used to connect (the database in
	// each URL); the databases copied come from the source cluster and Filters.
	Source, Target *conninfo.Endpoint
	Filters        *filter.Rules
	Tools          *pgtools.Tools

	// Jobs is how many tables are copied at once (default: number of CPUs, at
	// least 2); IndexJobs how many indexes are built at once (default Jobs).
	Jobs, IndexJobs int
	// SplitThreshold: tables larger than this many bytes are copied as several
	// ranges in parallel; 0 means the default, negative never splits.
	SplitThreshold int64
	// MaintenanceWorkMem for index builds on the target (default "512MB").
	MaintenanceWorkMem string

	// DropExisting drops target databases that already exist. It needs Confirm
	// to say yes (the CLI answers from --yes or a prompt).
	DropExisting bool
	Confirm      func(question string) (bool, error)
	// SkipRoles leaves roles alone (--no-roles).
	SkipRoles bool
	// SkipAnalyze leaves the target's tables without planner statistics
	// (--skip-analyze); by default each table is analyzed once its rows and
	// indexes are in, while the rest of the copy goes on.
	SkipAnalyze bool

	// Checkpoints records progress so that an interrupted run resumes; nil keeps
	// nothing. ArchiveDir keeps each database's schema archive across attempts
	// ("" uses a temporary directory).
	Checkpoints checkpoint.Store
	ArchiveDir  string
	// StallTimeout: a COPY with no byte moving for this long (a server gone
	// silent, a half-open connection) is cut and retried (default 1 minute).
	StallTimeout time.Duration
	// Retry bounds the retries of transient failures (default retry.Default).
	Retry retry.Policy

	// Sync hands each database over to logical replication: the slot is created
	// first and its snapshot read by the whole copy, then a subscription picks up
	// exactly where the snapshot ends. Checkpoints do not apply (a resumed copy
	// could not be gap-free).
	Sync *SyncOptions

	// Ready, when set, is asked once preflight has found nothing wrong and
	// before the first change: an error stops the run there, with nothing
	// changed. The runner answers it from validate, run alongside.
	Ready func(ctx context.Context) error

	Progress     progress.Sink
	Logger       *slog.Logger
	TempDir      string
	TickInterval time.Duration
}

// SyncOptions of a copy that continues into replication.
type SyncOptions struct {
	// SourceForTarget is how the target server reaches the source (the
	// subscription connects from there); nil means Source.
	SourceForTarget *conninfo.Endpoint
	// ReplicaIdentityFull sets REPLICA IDENTITY FULL on published tables that
	// have no key, instead of refusing.
	ReplicaIdentityFull bool
	// DDL: whether schema changes on the source are replicated.
	DDL replication.DDLMode
}

// DefaultStallTimeout is how long a COPY may move no byte before it is cut:
// long enough for a source that scans far between the rows a filter keeps,
// short enough that a dead connection costs a minute, not a day.
const DefaultStallTimeout = time.Minute

// DefaultSplitThreshold splits tables above 1 GiB into ranges.
const DefaultSplitThreshold = 1 << 30

func (o *Options) defaults() {
	if o.Jobs <= 0 {
		o.Jobs = catalog.DefaultJobs()
	}
	if o.IndexJobs <= 0 {
		o.IndexJobs = o.Jobs
	}
	if o.SplitThreshold == 0 {
		o.SplitThreshold = DefaultSplitThreshold
	}
	if o.MaintenanceWorkMem == "" {
		o.MaintenanceWorkMem = "512MB"
	}
	if o.Progress == nil {
		o.Progress = progress.Discard
	}
	if o.Logger == nil {
		o.Logger = slog.New(slog.DiscardHandler)
	}
	if o.TempDir == "" {
		o.TempDir = os.TempDir()
	}
	if o.TickInterval == 0 {
		o.TickInterval = time.Second
	}
	if o.Filters == nil {
		o.Filters = &filter.Rules{}
	}
	if o.StallTimeout == 0 {
		o.StallTimeout = DefaultStallTimeout
	}
	if o.Retry.Tries == 0 {
		o.Retry = retry.Default
	}
}

// Result is what a run did, for the summary.
type Result struct {
	// Analyzed: the copied tables were analyzed (planner statistics are in
	// place).
	Analyzed bool          `json:"analyzed"`
	Steps    []StepResult  `json:"steps"`
	Tables   []TableResult `json:"tables"`
	Warnings []string      `json:"warnings,omitempty"`
	// Refused: every statement the target refused without it failing the
	// copy (what a managed target's role may not do), whole; the warnings
	// give the first few of each kind.
	Refused []Refused `json:"refused,omitempty"`
	// RefusedFile is where the CLI wrote them as a script (see
	// WriteRefused).
	RefusedFile string `json:"refused_file,omitempty"`
	// Existing: what the copy found already in target databases it restored
	// into, and kept or left untouched ("db: kept schema bar, ...").
	Existing []string `json:"existing_on_target,omitempty"`
	Seconds  float64  `json:"seconds"`
	Rows     int64    `json:"rows"`
	Bytes    int64    `json:"bytes"`
	// TablesOmitted and StepsOmitted count what Trimmed left out.
	TablesOmitted int `json:"tables_omitted,omitempty"`
	StepsOmitted  int `json:"steps_omitted,omitempty"`
	// RefusedOmitted counts the refused statements Trimmed left out.
	RefusedOmitted int `json:"refused_omitted,omitempty"`
}

// TableCount is the number of tables copied, listed or not.
func (r *Result) TableCount() int { return len(r.Tables) + r.TablesOmitted }

// Trimmed keeps the slowest tables and the first steps, counting the rest:
// a remote worker ships the summary as one log event, which CloudWatch Logs
// caps at 256 KiB.
func (r *Result) Trimmed(tables, steps int) *Result {
	c := *r
	if len(c.Tables) > tables {
		c.Tables = append([]TableResult(nil), c.Tables...)
		sort.SliceStable(c.Tables, func(i, j int) bool {
			return c.Tables[i].CopySeconds+c.Tables[i].IndexSeconds > c.Tables[j].CopySeconds+c.Tables[j].IndexSeconds
		})
		c.TablesOmitted += len(c.Tables) - tables
		c.Tables = c.Tables[:tables]
	}
	// The refused statements go too, but for the first of them: a remote
	// job's summary says how many (RefusedOmitted).
	if len(c.Refused) > 2*tables {
		c.RefusedOmitted += len(c.Refused) - 2*tables
		c.Refused = c.Refused[:2*tables]
	}
	if len(c.Steps) > steps {
		c.StepsOmitted += len(c.Steps) - steps
		c.Steps = c.Steps[:steps]
	}
	return &c
}

// Refused is a statement the target refused, why, and what kind of refusal
// it is.
type Refused struct {
	Database  string `json:"database,omitempty"`
	Kind      string `json:"kind"`
	Statement string `json:"statement"`
	Message   string `json:"message"`
}

// StepResult times one step. Steps that overlap (copy and index builds) report
// their wall-clock span and the sum of their parts.
type StepResult struct {
	Database   string  `json:"database,omitempty"`
	Name       string  `json:"step"`
	Seconds    float64 `json:"seconds"`
	Cumulative float64 `json:"cumulative_seconds,omitempty"`
	Count      int     `json:"count,omitempty"`
	Bytes      int64   `json:"bytes,omitempty"`
}

// TableResult is one table copied.
type TableResult struct {
	Database     string  `json:"database"`
	Table        string  `json:"table"`
	Rows         int64   `json:"rows"`
	Bytes        int64   `json:"bytes"`
	CopySeconds  float64 `json:"copy_seconds"`
	IndexSeconds float64 `json:"index_seconds"`
	Parts        int     `json:"parts"`
	Indexes      int     `json:"indexes"`
	Format       string  `json:"format"`
	// ResumedParts were copied by an interrupted run and skipped.
	ResumedParts int `json:"resumed_parts,omitempty"`
}

// run is the state of one Run.
type run struct {
	opts    Options
	log     *slog.Logger
	tracker *progress.Tracker
	secrets []string
	cp      *checkpoints
	meta    checkpoint.Record // identities of source and target, for resumes
	// maintenance is the target database drops and creates go through.
	maintenance *conninfo.Endpoint
	// waited is the time spent waiting for the user's answers.
	waited time.Duration
	// targetSuper: the target role is a superuser; otherwise it is treated as
	// a managed service's role, whose refusals are warnings.
	targetSuper bool
	// captureDDL: with sync, schema changes on the source are replicated.
	captureDDL bool
	// loRefused: what a managed target refused of large objects' metadata,
	// said once per kind (under mu).
	loRefused              map[string]bool
	srcVersion, dstVersion pgtools.Version
	// srcRTT is a round trip to the source, measured in preflight;
	// srcFree and dstFree the connection slots free on each server then.
	srcRTT time.Duration
	// jobsChosen: --jobs was not given, so the copy may open more
	// connections when the source is far (copyWorkers).
	jobsChosen       bool
	srcFree, dstFree int

	mu     sync.Mutex
	result Result
}

// Run copies the cluster. It checks everything it can before changing the target:
// when it returns an error before the first change, the target is untouched.
func Run(ctx context.Context, opts Options) (*Result, error) {
	jobsChosen := opts.Jobs <= 0
	opts.defaults()
	r := &run{opts: opts, log: opts.Logger, tracker: progress.NewTracker(), jobsChosen: jobsChosen}
	r.result.Analyzed = !opts.SkipAnalyze
	r.secrets = append(opts.Source.Secrets(), opts.Target.Secrets()...)
	start := time.Now()

	ctx, stopTicker := context.WithCancel(ctx)
	defer stopTicker()
	go r.tick(ctx)

	var err error
	if opts.Sync != nil {
		opts.Checkpoints = nil
	}
	if r.cp, err = loadCheckpoints(ctx, opts.Checkpoints); err != nil {
		return nil, err
	}
	var p *plan
	err = r.step(ctx, "", "preflight", func() error {
		var err error
		p, err = r.preflight(ctx)
		return err
	})
	if err != nil {
		return nil, err
	}
	defer p.abandonEarly()
	if !opts.SkipRoles && !r.cp.done(keyRoles) {
		if err := r.step(ctx, "", "roles", func() error { return r.copyRoles(ctx, p) }); err != nil {
			return r.finish(start), err
		}
		if err := r.cp.set(ctx, keyRoles, checkpoint.Done); err != nil {
			return r.finish(start), err
		}
	}
	for _, db := range p.databases {
		if err := r.copyDatabase(ctx, db); err != nil {
			return r.finish(start), fmt.Errorf("database %s: %w", db.name, err)
		}
	}
	if err := r.cp.clear(ctx); err != nil {
		return r.finish(start), fmt.Errorf("clear checkpoints: %w", err)
	}
	res := r.finish(start)
	r.emit(progress.Event{Kind: progress.Tick, Overall: ptr(r.tracker.Snapshot())})
	return res, nil
}

func (r *run) finish(start time.Time) *Result {
	r.mu.Lock()
	defer r.mu.Unlock()
	res := r.result
	res.Seconds = (time.Since(start) - r.waited).Seconds()
	for _, t := range res.Tables {
		res.Rows += t.Rows
		res.Bytes += t.Bytes
	}
	return &res
}

func (r *run) tick(ctx context.Context) {
	t := time.NewTicker(r.opts.TickInterval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			r.emit(progress.Event{Kind: progress.Tick, Overall: ptr(r.tracker.Snapshot())})
		}
	}
}

func (r *run) emit(e progress.Event) {
	if e.Time.IsZero() {
		e.Time = time.Now()
	}
	r.opts.Progress.Emit(e)
}

// step runs fn as a named step, timing it and reporting its start and end.
func (r *run) step(ctx context.Context, db, name string, fn func() error) error {
	start, waited := time.Now(), r.waitedFor()
	r.emit(progress.Event{Kind: progress.StepStarted, Database: db, Step: name})
	r.log.Debug("step started", "database", db, "step", name)
	err := fn()
	d := time.Since(start) - (r.waitedFor() - waited)
	r.record(StepResult{Database: db, Name: name, Seconds: d.Seconds()})
	ev := progress.Event{Kind: progress.StepDone, Database: db, Step: name, Seconds: d.Seconds()}
	if err != nil {
		ev.Message = "failed"
	}
	r.emit(ev)
	r.log.Debug("step done", "database", db, "step", name, "seconds", d.Seconds(), "err", err)
	return err
}

// ask puts a question to the user (Confirm); the time the answer takes is
// kept out of the steps' and the run's durations.
func (r *run) ask(q string) (bool, error) {
	if r.opts.Confirm == nil {
		return false, nil
	}
	start := time.Now()
	ok, err := r.opts.Confirm(q)
	d := time.Since(start)
	r.mu.Lock()
	r.waited += d
	r.mu.Unlock()
	r.tracker.Pause(d)
	return ok, err
}

func (r *run) waitedFor() time.Duration {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.waited
}

func (r *run) record(s StepResult) {
	r.mu.Lock()
	r.result.Steps = append(r.result.Steps, s)
	r.mu.Unlock()
}

func (r *run) warn(db, format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	if db != "" {
		msg = db + ": " + msg
	}
	r.mu.Lock()
	r.result.Warnings = append(r.result.Warnings, msg)
	r.mu.Unlock()
	r.emit(progress.Event{Kind: progress.Warning, Database: db, Message: msg})
}

// retrying warns of a transient failure about to be retried, and counts it.
func (r *run) retrying(db, format string, args ...any) {
	r.tracker.Retried()
	r.warn(db, format, args...)
}

func (r *run) info(db, format string, args ...any) {
	r.emit(progress.Event{Kind: progress.Info, Database: db, Message: fmt.Sprintf(format, args...)})
}

func ptr[T any](v T) *T { return &v }

// WriteRefused writes the refused statements as a psql script, each
// database's after a \connect line, for a role that may run them (the
// target's administrator) to apply by hand: psql -f FILE.
func (res *Result) WriteRefused(file string) error {
	var b strings.Builder
	b.WriteString("-- Statements the target refused during a replicator copy. Run them as a role\n")
	b.WriteString("-- that may (psql -f this-file), or adapt them (ownership: ALTER ... OWNER TO,\n")
	b.WriteString("-- REASSIGN OWNED BY; privileges: GRANT) to what your provider allows.\n")
	db := "\x00"
	for _, x := range res.Refused {
		if x.Database != db {
			db = x.Database
			fmt.Fprintf(&b, "\n\\connect %s\n", pgx.Identifier{db}.Sanitize())
		}
		fmt.Fprintf(&b, "-- %s: %s\n%s\n", x.Kind, strings.ReplaceAll(x.Message, "\n", " "), strings.TrimRight(x.Statement, ";")+";")
	}
	if err := os.WriteFile(file, []byte(b.String()), 0o600); err != nil {
		return fmt.Errorf("write the refused statements: %w", err)
	}
	res.RefusedFile = file
	return nil
}

// refused records statements the target refused, whole, for the summary.
func (r *run) refused(db string, issues []restoreIssue) {
	r.mu.Lock()
	defer r.mu.Unlock()
	for _, is := range issues {
		r.result.Refused = append(r.result.Refused, Refused{Database: db, Kind: refusal(is, r.targetSuper), Statement: strings.TrimSpace(is.Command), Message: is.Message})
	}
}
