// Package remote is the remote runtime: what runs in the user's AWS account
// and what talks to it. This package is the job model they all share: what a
// job asks for, its lifecycle, and the validation of a submission. Connection
// URLs never live in a job record, only redacted forms; the real ones are in
// the job's secret.
//
// Its subpackages, one concern each:
//
//	store      jobs, checkpoints and the slot counter in DynamoDB (resume lives here remotely)
//	secrets    each job's connection URLs in Secrets Manager
//	logs       a worker's log lines to and from CloudWatch Logs
//	launch     worker instances: RunInstances, lookups by stack
//	lifecycle  starting and ending jobs, for every caller
//	api        the job API (API Gateway → Lambda)
//	reaper     the scheduled janitor
//	lambdafn   the Lambda: API and reaper in one function
//	worker     what a worker instance runs (the runner, with checkpoints in store)
//	client     the CLI's SigV4 client of the API
//	awsenv     the platform's configuration and AWS clients
package remote

import (
	"crypto/rand"
	"encoding/base32"
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/remote/cost"
)

// HeartbeatEvery is how often a worker reports; the reaper waits a few of
// them (awsenv.DefaultHeartbeatTimeout) before it calls a worker dead.
const HeartbeatEvery = 5 * time.Second

// Status of a job. queued → provisioning → running → succeeded | failed |
// cancelled; a finished job never changes again.
type Status string

const (
	Queued       Status = "queued"
	Provisioning Status = "provisioning"
	Running      Status = "running"
	Succeeded    Status = "succeeded"
	Failed       Status = "failed"
	Cancelled    Status = "cancelled"
)

// Terminal reports whether the status is final.
func (s Status) Terminal() bool { return s == Succeeded || s == Failed || s == Cancelled }

// Active are the statuses of a job that holds a slot under the concurrency cap.
var Active = []Status{Queued, Provisioning, Running}

// Options of a job: every flag of init and sync that changes what is done.
// The CLI builds them once from its flags; the local run and the worker turn
// them into engine and replication options the same way (internal/runner).
type Options struct {
	DropExisting bool `json:"drop_existing,omitempty"`
	NoRoles      bool `json:"no_roles,omitempty"`
	// NoResume starts over instead of resuming an interrupted run (a
	// relaunched worker still resumes its own job).
	NoResume  bool `json:"no_resume,omitempty"`
	Jobs      int  `json:"jobs,omitempty"`
	IndexJobs int  `json:"index_jobs,omitempty"`
	// SplitLargerThan is in bytes: 0 for the default (1 GiB), -1 never.
	SplitLargerThan    int64  `json:"split_tables_larger_than,omitempty"`
	MaintenanceWorkMem string `json:"maintenance_work_mem,omitempty"`
	// StallTimeoutSeconds: a COPY with no byte moving for this long is cut
	// and retried (0 for the default, 60).
	StallTimeoutSeconds int  `json:"stall_timeout_seconds,omitempty"`
	SkipValidate        bool `json:"skip_validate,omitempty"`
	// SkipAnalyze: init leaves the target's tables without statistics.
	SkipAnalyze         bool `json:"skip_analyze,omitempty"`
	Verify              bool `json:"verify,omitempty"`
	Sync                bool `json:"sync,omitempty"` // init: continue into replication
	ReplicaIdentityFull bool `json:"replica_identity_full,omitempty"`
	// ReplicateDDL: "on", "off", or "" (on where the source role may create
	// event triggers).
	ReplicateDDL string `json:"replicate_ddl,omitempty"`
	Stop         bool   `json:"stop,omitempty"`  // sync: stop replicating
	Force        bool   `json:"force,omitempty"` // sync: recreate the replication
	// AcceptGap: sync starts replication without checking that the target
	// still holds the source's rows (changes made since the copy are lost).
	AcceptGap        bool   `json:"accept_gap,omitempty"`
	Sequences        bool   `json:"sequences,omitempty"`
	TimeLimitMinutes int    `json:"time_limit_minutes,omitempty"`
	InstanceType     string `json:"instance_type,omitempty"`
	// SourceBytes is the CLI's estimate of the data size, used to size the
	// worker when no instance type is given.
	SourceBytes int64 `json:"source_bytes,omitempty"`
	// Notify: the job's events go to the stack's notification targets
	// (nil: yes when the stack has any; false: --no-notify; true:
	// --notify, refused by a stack with none).
	Notify *bool `json:"notify,omitempty"`
	// MaxCostUSD: a job whose estimate is over it is refused, and a running
	// job is stopped when its cost so far passes it (0: no limit).
	MaxCostUSD float64 `json:"max_cost_usd,omitempty"`
	// Monitor keeps the worker of a sync (or init --sync) job watching
	// replication once it is set up: lag metrics, and an event when the
	// target is LagAlertSeconds or more behind (default 300), until the
	// time limit or a cancel. Replication goes on without it.
	Monitor         bool `json:"monitor,omitempty"`
	LagAlertSeconds int  `json:"lag_alert_seconds,omitempty"`
	Cutover
}

// Cutover are cutover's options (Verify, above, is shared with init).
type Cutover struct {
	Rollback bool `json:"rollback,omitempty"`
	Reverse  bool `json:"reverse,omitempty"`
	// PlanOnly: cutover --dry-run, the guardrails and the plan.
	PlanOnly bool `json:"plan_only,omitempty"`
	// Seconds; nil for the defaults (10, 5 and 60).
	MaxLagSeconds        *float64 `json:"max_lag_seconds,omitempty"`
	DrainTimeoutSeconds  *float64 `json:"drain_timeout_seconds,omitempty"`
	SwitchTimeoutSeconds *float64 `json:"switch_timeout_seconds,omitempty"`
	// Fence is "" (read-only, the default) or "none".
	Fence          string `json:"fence,omitempty"`
	SequenceMargin int64  `json:"sequence_margin,omitempty"`
	UnfenceSource  bool   `json:"unfence_source,omitempty"`
}

// Cutover defaults.
const (
	DefaultMaxLag        = 10 * time.Second
	DefaultDrainTimeout  = 5 * time.Second
	DefaultSwitchTimeout = 60 * time.Second
)

// Seconds is a duration option, or def when not given.
func Seconds(v *float64, def time.Duration) time.Duration {
	if v == nil {
		return def
	}
	return time.Duration(*v * float64(time.Second))
}

// DefaultLagAlertSeconds is how far behind the target may fall before a
// monitored sync job says so.
const DefaultLagAlertSeconds = 300

// LagAlert is the job's lag threshold.
func (o Options) LagAlert() time.Duration {
	if o.LagAlertSeconds > 0 {
		return time.Duration(o.LagAlertSeconds) * time.Second
	}
	return DefaultLagAlertSeconds * time.Second
}

// Notifies reports whether the job's events go to the stack's notification
// targets.
func (o Options) Notifies() bool { return o.Notify == nil || *o.Notify }

// Request is the body of POST /jobs.
type Request struct {
	Command string `json:"command"`
	Source  string `json:"source"`
	Target  string `json:"target"`
	// SourceForTarget is the source as the target server reaches it
	// (--source-from-target); kept in the secret like the other URLs.
	SourceForTarget string `json:"source_from_target,omitempty"`
	// SourceCerts and TargetCerts are the TLS files of the connections,
	// inline (PEM): a remote job's URLs may name no local file.
	SourceCerts conninfo.Certificates `json:"source_certificates,omitempty"`
	TargetCerts conninfo.Certificates `json:"target_certificates,omitempty"`
	Filters     filter.Spec           `json:"filters"`
	Options     Options               `json:"options"`
}

// Quote is the answer of POST /jobs?dry_run=true: what the job would run
// on, and what it would cost, without creating it.
type Quote struct {
	InstanceType     string        `json:"instance_type"`
	TimeLimitMinutes int           `json:"time_limit_minutes"`
	Estimate         cost.Estimate `json:"estimate"`
}

// Job is the record of one remote job.
type Job struct {
	ID           string      `json:"id"`
	Owner        string      `json:"owner"`
	Command      string      `json:"command"`
	Status       Status      `json:"status"`
	Source       string      `json:"source"` // redacted
	Target       string      `json:"target"` // redacted
	Filters      filter.Spec `json:"filters"`
	Options      Options     `json:"options"`
	SecretARN    string      `json:"secret_arn,omitempty"`
	InstanceID   string      `json:"instance_id,omitempty"`
	InstanceType string      `json:"instance_type,omitempty"`
	Attempts     int         `json:"attempts"`
	CreatedAt    time.Time   `json:"created_at"`
	UpdatedAt    time.Time   `json:"updated_at"`
	StartedAt    *time.Time  `json:"started_at,omitempty"`
	FinishedAt   *time.Time  `json:"finished_at,omitempty"`
	HeartbeatAt  *time.Time  `json:"heartbeat_at,omitempty"`
	CancelAsked  bool        `json:"cancel_requested,omitempty"`
	// LimitWarned: the "time limit near" event went out.
	LimitWarned bool `json:"limit_warned,omitempty"`
	// HourlyUSD is the worker's price the API used (its built-in table),
	// for the cost limit and what the job cost; LaunchedAt is when its
	// first worker was launched.
	HourlyUSD  float64    `json:"hourly_usd,omitempty"`
	LaunchedAt *time.Time `json:"launched_at,omitempty"`
	// Versions of the CLI that submitted the job, of the platform's API
	// that took it, and of the worker that ran it.
	CLIVersion      string             `json:"cli_version,omitempty"`
	PlatformVersion string             `json:"platform_version,omitempty"`
	WorkerVersion   string             `json:"worker_version,omitempty"`
	Error           string             `json:"error,omitempty"`
	Progress        *progress.Snapshot `json:"progress,omitempty"`
	Message         string             `json:"message,omitempty"` // the last step or warning, for people
}

// Usage is what the job used until it finished (or now): nil before its
// first worker was launched, or without a price.
func (j *Job) Usage(now time.Time) *cost.Used {
	if j.LaunchedAt == nil || j.HourlyUSD <= 0 {
		return nil
	}
	end := now
	if j.FinishedAt != nil {
		end = *j.FinishedAt
	}
	var running time.Duration
	if j.StartedAt != nil {
		running = end.Sub(*j.StartedAt)
	}
	var bytes int64
	if j.Progress != nil {
		bytes = j.Progress.Bytes
	}
	u := cost.Actual(j.HourlyUSD, *j.LaunchedAt, end, running, bytes)
	return &u
}

// LimitWarning is how long before its time limit a job's "time limit near"
// event goes out: 15 minutes, or a fifth of a shorter limit.
func (j *Job) LimitWarning() time.Duration {
	return min(15*time.Minute, time.Duration(j.Options.TimeLimitMinutes)*time.Minute/5)
}

// Deadline is when the job's time limit runs out (zero without a start).
func (j *Job) Deadline() time.Time {
	if j.StartedAt == nil || j.Options.TimeLimitMinutes <= 0 {
		return time.Time{}
	}
	return j.StartedAt.Add(time.Duration(j.Options.TimeLimitMinutes) * time.Minute)
}

var idRE = regexp.MustCompile(`^j-[a-z2-7]{16}$`)

// NewID makes a job id: "j-" and 16 base32 characters (80 random bits).
func NewID() string {
	b := make([]byte, 10)
	if _, err := rand.Read(b); err != nil {
		panic(err)
	}
	return "j-" + strings.ToLower(base32.StdEncoding.EncodeToString(b))
}

// ValidID checks the shape of a job id before it reaches a query.
func ValidID(id string) bool { return idRE.MatchString(id) }

// FieldErrors maps a request field to what is wrong with it: every invalid
// field is reported, a field's problems are joined, and the order is stable
// (sorted by field; JSON sorts map keys too).
type FieldErrors map[string]string

func (f FieldErrors) add(field, problem string) {
	if prev, ok := f[field]; ok {
		problem = prev + "; " + problem
	}
	f[field] = problem
}

func (f FieldErrors) Error() string {
	keys := make([]string, 0, len(f))
	for k := range f {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	parts := make([]string, len(keys))
	for i, k := range keys {
		parts[i] = k + ": " + f[k]
	}
	return "invalid job: " + strings.Join(parts, "; ")
}

// Hard limits of a submission, whatever the platform's settings.
const (
	MaxTimeLimitMinutes = 7 * 24 * 60
	MaxJobs             = 64
)

// Limits are a platform's bounds on what a submission may ask for (setup's
// --max-instance-size, --max-time-limit and --egress-ports).
type Limits struct {
	MaxInstanceSize     string
	MaxTimeLimitMinutes int
	// EgressPorts are the ports the workers' security group lets them reach
	// (nil: any, the user's own security groups decide).
	EgressPorts []int
}

// DefaultLimits are a platform's limits when setup sets none.
func DefaultLimits() Limits {
	return Limits{MaxInstanceSize: DefaultMaxInstanceSize, MaxTimeLimitMinutes: MaxTimeLimitMinutes}
}

// Validate checks a submission field by field against the platform's limits.
// It returns the parsed endpoints.
func (r *Request) Validate(lim Limits) (src, dst *conninfo.Endpoint, err error) {
	fe := FieldErrors{}
	switch r.Command {
	case "init", "sync", "cutover":
	case "":
		fe.add("command", "required: init, sync or cutover")
	default:
		fe.add("command", fmt.Sprintf("unknown command %q: init, sync or cutover", redact.Truncate(r.Command, MaxOptionBytes)))
	}
	before := len(fe)
	r.validateBounds(fe)
	if len(fe) > before {
		// Parsing what is over its bound would only echo it.
		return nil, nil, fe
	}
	src, dst = r.validateConnections(lim, fe)
	if _, perr := r.Filters.Compile(); perr != nil {
		fe.add("filters", perr.Error())
	}
	r.validateOptions(lim, fe)
	r.validateFit(fe)
	if len(fe) > 0 {
		return nil, nil, fe
	}
	return src, dst, nil
}

// validateConnections checks the URLs (what a remote job may name and the
// ports it may reach), the certificates and what the secret can hold.
func (r *Request) validateConnections(lim Limits, fe FieldErrors) (src, dst *conninfo.Endpoint) {
	var perr error
	if src, perr = conninfo.ParseRemote("source", r.Source); perr != nil {
		fe.add("source", perr.Error())
	}
	if dst, perr = conninfo.ParseRemote("target", r.Target); perr != nil {
		fe.add("target", perr.Error())
	}
	for field, ep := range map[string]*conninfo.Endpoint{"source": src, "target": dst} {
		if ep == nil || lim.EgressPorts == nil {
			continue
		}
		for _, port := range ep.Ports() {
			if !slices.Contains(lim.EgressPorts, int(port)) {
				fe.add(field, fmt.Sprintf("port %d is not one the workers may reach (%s): run replicator setup again with --egress-ports including it", port, joinInts(lim.EgressPorts)))
			}
		}
	}
	if r.SourceForTarget != "" {
		if _, perr := conninfo.ParseOpaque("source_from_target", r.SourceForTarget); perr != nil {
			fe.add("source_from_target", perr.Error())
		}
	}
	for side, certs := range map[string]conninfo.Certificates{"source_certificates": r.SourceCerts, "target_certificates": r.TargetCerts} {
		for k, pem := range certs {
			if err := conninfo.CheckCertificate(k, pem); err != nil {
				fe.add(side, err.Error())
			}
		}
	}
	if b, _ := json.Marshal(r.Secret()); len(b) > MaxSecretBytes {
		fe.add("certificates", fmt.Sprintf("the connections and certificates take %d bytes, over the %d a job's secret holds: give only the CA bundle of your region (for RDS, <region>-bundle.pem rather than global-bundle.pem)", len(b), MaxSecretBytes))
	}
	return src, dst
}

var workMemRE = regexp.MustCompile(`^[0-9]+\s*(kB|MB|GB|TB)?$`)

// validateOptions checks the options' values against the hard limits and
// the platform's.
func (r *Request) validateOptions(lim Limits, fe FieldErrors) {
	o := r.Options
	if o.Jobs < 0 || o.Jobs > MaxJobs {
		fe.add("options.jobs", fmt.Sprintf("must be between 1 and %d", MaxJobs))
	}
	if o.IndexJobs < 0 || o.IndexJobs > MaxJobs {
		fe.add("options.index_jobs", fmt.Sprintf("must be between 1 and %d", MaxJobs))
	}
	if o.Monitor && !(r.Command == "sync" && !o.Stop || r.Command == "init" && o.Sync) {
		fe.add("options.monitor", "watches replication: only for sync (not --stop) and init --sync")
	}
	if o.LagAlertSeconds < 0 || o.LagAlertSeconds > 0 && !o.Monitor {
		fe.add("options.lag_alert_seconds", "a positive number of seconds, with monitor")
	}
	if o.MaxCostUSD < 0 || o.MaxCostUSD > 1e6 {
		fe.add("options.max_cost_usd", "must be between 0 (no limit) and 1000000")
	}
	if maxMinutes := min(lim.MaxTimeLimitMinutes, MaxTimeLimitMinutes); o.TimeLimitMinutes < 0 || o.TimeLimitMinutes > maxMinutes {
		fe.add("options.time_limit_minutes", fmt.Sprintf("must be between 1 and %d, this platform's limit (replicator setup --max-time-limit)", maxMinutes))
	}
	if o.InstanceType != "" {
		if err := CheckInstanceType(o.InstanceType, lim.MaxInstanceSize); err != nil {
			fe.add("options.instance_type", err.Error())
		}
	}
	if o.MaintenanceWorkMem != "" && !workMemRE.MatchString(o.MaintenanceWorkMem) {
		fe.add("options.maintenance_work_mem", "a size such as 512MB")
	}
	if o.StallTimeoutSeconds < 0 || o.StallTimeoutSeconds > 86400 {
		fe.add("options.stall_timeout_seconds", "seconds, from 1 to 86400 (0 for the default)")
	}
	if o.SplitLargerThan < -1 {
		fe.add("options.split_tables_larger_than", "a size in bytes, 0 for the default or -1 never to split")
	}
	if o.SourceBytes < 0 {
		fe.add("options.source_bytes", "must not be negative")
	}
}

// validateFit refuses options of the other command: init's on sync, sync's
// on init.
func (r *Request) validateFit(fe FieldErrors) {
	o := r.Options
	if r.SourceForTarget != "" && r.Command == "init" && !o.Sync {
		fe.add("source_from_target", "applies to sync and init with sync")
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"drop_existing", o.DropExisting}, {"verify", o.Verify}, {"sync", o.Sync}, {"no_roles", o.NoRoles}, {"no_resume", o.NoResume},
		{"skip_validate", o.SkipValidate}, {"skip_analyze", o.SkipAnalyze}, {"jobs", o.Jobs != 0}, {"index_jobs", o.IndexJobs != 0}, {"split_tables_larger_than", o.SplitLargerThan != 0},
		{"maintenance_work_mem", o.MaintenanceWorkMem != ""}, {"stall_timeout_seconds", o.StallTimeoutSeconds != 0}} {
		if r.Command == "sync" && f.set || r.Command == "cutover" && f.set && f.name != "verify" {
			fe.add("options."+f.name, "applies to init, not "+r.Command)
		}
	}
	for _, f := range []struct {
		name string
		set  bool
	}{{"stop", o.Stop}, {"force", o.Force}, {"sequences", o.Sequences}, {"accept_gap", o.AcceptGap}} {
		if r.Command != "sync" && f.set {
			fe.add("options."+f.name, "applies to sync, not "+r.Command)
		}
	}
	r.validateCutover(fe)
	if o.Stop && o.AcceptGap {
		fe.add("options.accept_gap", "--stop starts no replication")
	}
	if r.Command == "init" && o.ReplicaIdentityFull && !o.Sync {
		fe.add("options.replica_identity_full", "applies to sync and init with sync")
	}
	switch {
	case o.ReplicateDDL != "" && o.ReplicateDDL != "on" && o.ReplicateDDL != "off":
		fe.add("options.replicate_ddl", `must be "on" or "off"`)
	case r.Command == "init" && o.ReplicateDDL != "" && !o.Sync:
		fe.add("options.replicate_ddl", "applies to sync and init with sync")
	case o.Stop && o.ReplicateDDL != "":
		fe.add("options.replicate_ddl", "--stop removes the schema change capture whatever its setting")
	}
}

// validateCutover checks cutover's options, and refuses them elsewhere.
func (r *Request) validateCutover(fe FieldErrors) {
	c := r.Options.Cutover
	if r.Command != "cutover" {
		if c != (Cutover{}) {
			fe.add("options", "rollback, reverse, plan_only, max_lag_seconds, drain_timeout_seconds, switch_timeout_seconds, fence, sequence_margin and unfence_source apply to cutover only")
		}
		return
	}
	for name, v := range map[string]*float64{"max_lag_seconds": c.MaxLagSeconds, "drain_timeout_seconds": c.DrainTimeoutSeconds, "switch_timeout_seconds": c.SwitchTimeoutSeconds} {
		if v != nil && (*v < 0 || *v > 3600 || *v != *v) {
			fe.add("options."+name, "seconds, from 0 to 3600")
		}
	}
	if c.MaxLagSeconds != nil && *c.MaxLagSeconds == 0 || c.SwitchTimeoutSeconds != nil && *c.SwitchTimeoutSeconds == 0 {
		fe.add("options", "max_lag_seconds and switch_timeout_seconds must be above 0")
	}
	if c.Fence != "" && c.Fence != "none" {
		fe.add("options.fence", `must be "none", or absent for the read-only fence`)
	}
	if c.Fence == "none" && c.DrainTimeoutSeconds != nil {
		fe.add("options.drain_timeout_seconds", "fence none ends no session")
	}
	if c.SequenceMargin < 0 || c.SequenceMargin > 1<<40 {
		fe.add("options.sequence_margin", "from 0 to 2^40")
	}
}

func joinInts(ns []int) string {
	s := make([]string, len(ns))
	for i, n := range ns {
		s[i] = strconv.Itoa(n)
	}
	return strings.Join(s, ", ")
}

// MaxSecretBytes is the most a job's secret may hold: Secrets Manager's
// SecretString is at most 65,536 bytes (SecretStringType, max 65536, in the
// service model). moto does not enforce it; Validate does.
const MaxSecretBytes = 65536

// Secret is what the job's secret keeps of the request: its connections.
func (r *Request) Secret() Secret {
	return Secret{Source: r.Source, Target: r.Target, SourceForTarget: r.SourceForTarget, SourceCerts: r.SourceCerts, TargetCerts: r.TargetCerts}
}

// Secret is what a job's secret holds: the real connection URLs.
type Secret struct {
	Source          string                `json:"source"`
	Target          string                `json:"target"`
	SourceForTarget string                `json:"source_from_target,omitempty"`
	SourceCerts     conninfo.Certificates `json:"source_certificates,omitempty"`
	TargetCerts     conninfo.Certificates `json:"target_certificates,omitempty"`
}
