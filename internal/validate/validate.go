// Package validate checks, before anything is copied, that a copy can work:
// connections, versions, client tools, privileges on both sides, extensions,
// space, and (for sync) logical replication settings. Each finding is ok, warn or
// fail, with the fix in one line.
package validate

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/existing"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/replication"
)

// Severity of a finding.
type Severity string

const (
	OK   Severity = "ok"
	Warn Severity = "warn"
	Fail Severity = "fail"
)

// Finding is the outcome of one check.
type Finding struct {
	Check    string   `json:"check"`
	Severity Severity `json:"severity"`
	Message  string   `json:"message"`
	Fix      string   `json:"fix,omitempty"`
}

// Report is every finding, with the size of what would be copied.
type Report struct {
	Findings        []Finding `json:"findings"`
	SourceBytes     int64     `json:"source_bytes"`
	Tables          int       `json:"tables"`
	EstimateSeconds float64   `json:"estimate_seconds"`
}

// Failed reports whether any check failed.
func (r *Report) Failed() bool {
	for _, f := range r.Findings {
		if f.Severity == Fail {
			return true
		}
	}
	return false
}

// Err is nil unless a check failed; then one line naming the first failure
// and its fix.
func (r *Report) Err() error {
	var failed []Finding
	for _, f := range r.Findings {
		if f.Severity == Fail {
			failed = append(failed, f)
		}
	}
	if len(failed) == 0 {
		return nil
	}
	msg := failed[0].Message
	if failed[0].Fix != "" {
		msg += ": " + failed[0].Fix
	}
	if len(failed) > 1 {
		msg += fmt.Sprintf(" (and %d more failed check(s): see replicator validate)", len(failed)-1)
	}
	return &problem.Problem{Msg: msg}
}

// Warnings are the warnings of the report, one line each with their fix.
func (r *Report) Warnings(except ...string) []string {
	var out []string
	for _, f := range r.Findings {
		if f.Severity == Warn && !slices.Contains(except, f.Check) {
			m := f.Check + ": " + f.Message
			if f.Fix != "" {
				m += "; fix: " + f.Fix
			}
			out = append(out, m)
		}
	}
	return out
}

// Options of a validation.
type Options struct {
	Source, Target *conninfo.Endpoint
	Filters        *filter.Rules
	// FindTools locates pg_dump (dir from --pg-bin).
	FindTools func(ctx context.Context, dir string) (*pgtools.Tools, error)
	PGBin     string
	// Sync adds the checks logical replication needs.
	Sync bool
	// Jobs and IndexJobs are the copy's planned concurrency (connections
	// needed on each side); IndexJobs defaults to Jobs, as init's does.
	Jobs, IndexJobs int
	// OnWorker: the checks run on a remote worker, whose client tools come
	// with its image (the fixes say so); Image is that AMI ("" unknown).
	OnWorker bool
	Image    string
	// CopyChecksTargets: the copy that runs alongside judges the existing
	// target databases itself (it knows which ones an interrupted run made
	// its own, and --drop-existing): the check is left to it.
	CopyChecksTargets bool
}

// ThroughputBytesPerSecond is the rate behind the time estimate: what one copy
// job sustained end to end on the 2-core reference machine, both servers local.
const ThroughputBytesPerSecond = 50 << 20

type checker struct {
	opts Options
	rep  *Report
	// found are the client tools, once the tools check found them.
	found *pgtools.Tools
}

func (c *checker) add(check string, sev Severity, msg, fix string) {
	c.rep.Findings = append(c.rep.Findings, Finding{Check: check, Severity: sev, Message: msg, Fix: fix})
}

// Run performs every check it can; a failed connection skips what depends on it.
func Run(ctx context.Context, opts Options) (*Report, error) {
	if opts.Filters == nil {
		opts.Filters = &filter.Rules{}
	}
	if opts.Jobs <= 0 {
		opts.Jobs = catalog.DefaultJobs()
	}
	if opts.IndexJobs <= 0 {
		opts.IndexJobs = opts.Jobs
	}
	c := &checker{opts: opts, rep: &Report{}}
	src, si := c.connect(ctx, "source connection", opts.Source)
	if src != nil {
		defer src.Close(context.Background())
	}
	dst, di := c.connect(ctx, "target connection", opts.Target)
	if dst != nil {
		defer dst.Close(context.Background())
	}
	if si != nil && di != nil {
		c.servers(si, di)
	}
	if si != nil {
		c.tools(ctx, si)
		if opts.Sync {
			c.replication(si)
		}
	}
	var selected []string
	if si != nil {
		selected = c.databases(ctx, si, dst)
		c.connections("source", si, catalog.SourceSessions(opts.Jobs), selected)
	}
	if di != nil && opts.Sync {
		c.subscriptions(ctx, dst, di)
	}
	if di != nil {
		c.writable(di)
		c.createdb(di, selected)
		if !c.opts.CopyChecksTargets && si != nil {
			c.existingTargets(ctx, di, selected)
		}
	}
	if si != nil && di != nil {
		c.placement(ctx, selected, src, dst, di)
	}
	if di != nil {
		c.connections("target", di, catalog.TargetSessions(opts.Jobs, opts.IndexJobs), selected)
		c.disk(ctx, dst, di)
	}
	if si != nil {
		c.estimate()
		c.latency(ctx, src)
	}
	return c.rep, nil
}

func (c *checker) connect(ctx context.Context, check string, ep *conninfo.Endpoint) (*pgx.Conn, *catalog.Server) {
	conn, err := ep.Connect(ctx)
	if err != nil {
		c.add(check, Fail, err.Error(), "")
		return nil, nil
	}
	s, err := catalog.ReadServer(ctx, conn)
	if err != nil {
		c.add(check, Fail, fmt.Sprintf("%s: %v", ep.Side, err), "")
		conn.Close(context.Background())
		return nil, nil
	}
	role := "role " + s.User
	if s.Superuser {
		role += " (superuser)"
	}
	c.add(check, OK, fmt.Sprintf("%s: PostgreSQL %s as %s", ep.Address(), s.Version, role), "")
	return conn, s
}

func (c *checker) servers(si, di *catalog.Server) {
	if catalog.SameServer(si, di) {
		c.add("distinct servers", Fail, "source and target are the same server", "point --target at another cluster")
		return
	}
	switch {
	case si.Version.Major < 12:
		c.add("server versions", Fail, fmt.Sprintf("source is PostgreSQL %s", si.Version), "replicator copies from PostgreSQL 12 or newer")
	case di.Version.Major < si.Version.Major:
		c.add("server versions", Fail, fmt.Sprintf("target %d is older than source %d", di.Version.Major, si.Version.Major),
			fmt.Sprintf("use a target running PostgreSQL %d or newer", si.Version.Major))
	default:
		c.add("server versions", OK, fmt.Sprintf("source %s, target %s", si.Version, di.Version), "")
	}
}

// WorkerImageCheck names the finding that says, on a remote worker, which
// image it runs and which client tools that image has.
const WorkerImageCheck = "worker image"

func (c *checker) tools(ctx context.Context, si *catalog.Server) {
	find := c.opts.FindTools
	if find == nil {
		find = pgtools.Find
	}
	t, err := find(ctx, c.opts.PGBin)
	if err == nil {
		c.found = t
	}
	if c.opts.OnWorker {
		// Which image, with which tools: what `setup --rebuild-image` (or a
		// setup after Amazon's next release) would change.
		image := cmp.Or(c.opts.Image, "unknown (no instance metadata)")
		tools := "no client tools found"
		if err == nil {
			tools = fmt.Sprintf("pg_dump %s in %s", t.Version, t.Dir)
		}
		c.add(WorkerImageCheck, OK, fmt.Sprintf("AMI %s, with %s", image, tools), "")
	}
	switch {
	case err != nil:
		c.add("pg_dump", Fail, err.Error(), fmt.Sprintf("install the PostgreSQL %d client tools", si.Version.Major))
	case t.Version.Major < si.Version.Major && c.opts.OnWorker:
		c.add("pg_dump", Fail, fmt.Sprintf("the worker's pg_dump %s is older than the source server %d", t.Version, si.Version.Major),
			fmt.Sprintf("run replicator setup --rebuild-image to rebuild the worker image with the newest client tools, or copy locally with the PostgreSQL %d client tools", si.Version.Major))
	case t.Version.Major < si.Version.Major:
		c.add("pg_dump", Fail, fmt.Sprintf("pg_dump %s in %s is older than the source server %d", t.Version, t.Dir, si.Version.Major),
			fmt.Sprintf("install the PostgreSQL %d client tools or pass --pg-bin", si.Version.Major))
	default:
		c.add("pg_dump", OK, fmt.Sprintf("pg_dump %s in %s", t.Version, t.Dir), "")
	}
}

func (c *checker) replication(si *catalog.Server) {
	if si.WALLevel != "logical" {
		c.add("wal_level", Fail, fmt.Sprintf("source wal_level is %s, logical replication needs logical", si.WALLevel),
			"ALTER SYSTEM SET wal_level = logical, then restart the source (on RDS/Aurora: rds.logical_replication = 1 in the parameter group)")
	} else {
		c.add("wal_level", OK, "source wal_level is logical", "")
	}
	if si.SlotWALUnlimited() {
		c.add("max_slot_wal_keep_size", Warn, "the source lets a replication slot keep WAL without limit (max_slot_wal_keep_size = -1): if replication stops, its disk fills",
			"ALTER SYSTEM SET max_slot_wal_keep_size = '50GB' (a size its disk can spare), then SELECT pg_reload_conf() (on RDS: the parameter group); PostgreSQL 12 has no such limit: watch replicator status")
	} else {
		c.add("max_slot_wal_keep_size", OK, "a replication slot may keep at most "+si.MaxSlotWALKeepSize+" of WAL on the source", "")
	}
	if !si.Replication {
		c.add("replication privilege", Fail, fmt.Sprintf("source role %s lacks REPLICATION", si.User),
			fmt.Sprintf("ALTER ROLE %s REPLICATION (on RDS: GRANT rds_replication TO %s)", pgx.Identifier{si.User}.Sanitize(), pgx.Identifier{si.User}.Sanitize()))
	} else {
		c.add("replication privilege", OK, fmt.Sprintf("source role %s may replicate", si.User), "")
	}
}

func (c *checker) createdb(di *catalog.Server, selected []string) {
	if di.Superuser || di.CreateDB {
		c.add("target CREATEDB", OK, fmt.Sprintf("target role %s may create databases", di.User), "")
		return
	}
	existing := map[string]bool{}
	for _, d := range di.Databases {
		existing[d] = true
	}
	need := false
	for _, d := range selected {
		need = need || !existing[d]
	}
	if !need {
		c.add("target CREATEDB", OK, "every selected database already exists on the target", "")
		return
	}
	c.add("target CREATEDB", Fail, fmt.Sprintf("target role %s lacks CREATEDB", di.User),
		fmt.Sprintf("ALTER ROLE %s CREATEDB (as an administrator), or connect as another role", pgx.Identifier{di.User}.Sanitize()))
}

func (c *checker) connections(side string, s *catalog.Server, need int, selected []string) {
	free, limit, where := s.MaxConnections-s.Connections, "", ""
	for _, db := range selected {
		// On the target, a database's own limit binds only one that is
		// already there (the copy gives a new one its limit at the end).
		withDB := side == "source" || slices.Contains(s.Databases, db)
		if room, l := s.Room(db, withDB); room < free {
			free, limit, where = room, l, db
		}
	}
	switch {
	case free < 4:
		c.add(side+" connections", Fail, fmt.Sprintf("role %s may open %d more session(s) in database %s (%s), and the copy needs at least 4", s.User, free, where, cmp.Or(limit, "max_connections")),
			"raise the limit, or end idle sessions")
	case free < need && limit != "":
		c.add(side+" connections", Warn, fmt.Sprintf("role %s may open %d more sessions in database %s (%s), the copy opens up to %d: it will copy with fewer jobs", s.User, free, where, limit, need),
			"raise the limit, or lower --jobs")
	case free < need:
		c.add(side+" connections", Warn, fmt.Sprintf("%d of max_connections=%d free, the copy opens up to %d: it will copy with fewer jobs", free, s.MaxConnections, need),
			"lower --jobs, or raise max_connections")
	default:
		c.add(side+" connections", OK, fmt.Sprintf("%d free connections, %d needed", free, need), "")
	}
}

func (c *checker) estimate() {
	secs := float64(c.rep.SourceBytes) / float64(ThroughputBytesPerSecond*max(1, c.opts.Jobs))
	c.rep.EstimateSeconds = secs
	c.add("size and time", OK, fmt.Sprintf("%s in %d tables to copy; about %s at local-network speed (slower over the internet)",
		bytes(c.rep.SourceBytes), c.rep.Tables, (time.Duration(secs)*time.Second).Round(time.Second)), "")
}

// LatencyCheck names the finding on what the distance to the source costs
// the client tools' schema dump.
const LatencyCheck = "source round trip"

// latency measures a round trip to the source and says, where pg_dump locks
// table by table (before 16), what that will cost the schema dump.
func (c *checker) latency(ctx context.Context, src *pgx.Conn) {
	rtt, err := catalog.RoundTrip(ctx, src)
	if err != nil {
		c.add(LatencyCheck, Warn, "could not time a round trip to the source: "+err.Error(), "")
		return
	}
	if c.found != nil {
		if msg, fix := c.found.LatencyHint(c.rep.Tables, rtt, c.opts.OnWorker); msg != "" {
			c.add(LatencyCheck, Warn, msg, fix)
			return
		}
	}
	c.add(LatencyCheck, OK, fmt.Sprintf("%s to the source", rtt.Round(100*time.Microsecond)), "")
}

func bytes(n int64) string {
	switch {
	case n >= 1<<30:
		return fmt.Sprintf("%.1f GiB", float64(n)/(1<<30))
	case n >= 1<<20:
		return fmt.Sprintf("%.1f MiB", float64(n)/(1<<20))
	default:
		return fmt.Sprintf("%.1f KiB", float64(n)/(1<<10))
	}
}

var listSome = problem.ListSome

// existingTargets judges each selected database the target already has, as
// the copy will (package existing): a conflict fails, with the fixes.
func (c *checker) existingTargets(ctx context.Context, di *catalog.Server, selected []string) {
	var refusals, notes []string
	for _, db := range selected {
		if !slices.Contains(di.Databases, db) {
			continue
		}
		in, err := existing.Inspect(ctx, c.opts.Source, c.opts.Target, db, func(s string) bool {
			return s != replication.DDLSchema && c.opts.Filters.Schema(db, s)
		})
		if err != nil {
			c.add("existing target databases", Fail, fmt.Sprintf("database %s: %v", db, err), "")
			return
		}
		if len(in.Conflicts) > 0 {
			refusals = append(refusals, existing.Conflicting(db, in.Verdict))
			continue
		}
		for _, n := range in.Notes() {
			notes = append(notes, db+": "+n)
		}
	}
	switch {
	case len(refusals) > 0:
		c.add("existing target databases", Fail, strings.Join(refusals, "; "), existing.Fix)
	case len(notes) > 0:
		c.add("existing target databases", OK, "restored into as they are: "+strings.Join(notes, "; "), "")
	}
}

// subscriptions runs init --sync's and sync's own check of the target role:
// it must be allowed to create subscriptions.
func (c *checker) subscriptions(ctx context.Context, dst *pgx.Conn, di *catalog.Server) {
	err := replication.CheckTarget(ctx, dst, di)
	var p *problem.Problem
	switch {
	case err == nil:
		c.add("subscription privilege", OK, fmt.Sprintf("target role %s may create subscriptions", di.User), "")
	case errors.As(err, &p):
		c.add("subscription privilege", Fail, p.Msg, p.Fix)
	default:
		c.add("subscription privilege", Fail, err.Error(), "")
	}
}
