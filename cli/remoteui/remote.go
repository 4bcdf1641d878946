// Package remote is the CLI side of remote jobs: the flags, submission, and the
// watch loop that renders a remote job exactly as a local run is rendered, from
// the polled job status and its log of events.
package remoteui

import (
	"context"
	"encoding/json"
	"fmt"
	"strconv"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/cli/verifycmd"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/verify"
)

// Flags are the remote options of init and sync.
type Flags struct {
	Remote       bool
	APIURL       string
	Region       string
	Stack        string
	Detach       bool
	InstanceType string
	TimeLimit    time.Duration
	// Notify and NoNotify choose whether the job's events reach the stack's
	// notification targets (default: they do, when it has any).
	Notify, NoNotify bool
	// MaxCost in USD: refused above the estimate, stopped above it while
	// running (0: no limit).
	MaxCost float64
	// Monitor keeps a sync job's worker watching the lag, alerting past
	// LagAlert.
	Monitor  bool
	LagAlert time.Duration
}

// AddFlags registers them.
func AddFlags(cmd *cobra.Command, f *Flags, submitting bool) {
	fl := cmd.Flags()
	if submitting {
		fl.BoolVar(&f.Remote, "remote", false, "run on a worker in your AWS account (see replicator setup); the CLI only submits and watches")
		fl.BoolVar(&f.Detach, "detach", false, "with --remote: return once the job is submitted")
		fl.StringVar(&f.InstanceType, "instance-type", "", "with --remote: worker instance type (default: sized from the source)")
		fl.DurationVar(&f.TimeLimit, "time-limit", 0, "with --remote: stop the job after this long (default: the platform's, 24h)")
		fl.BoolVar(&f.Notify, "notify", false, "with --remote: send the job's events to the stack's notification targets (the default when it has any; an error when it has none)")
		fl.BoolVar(&f.NoNotify, "no-notify", false, "with --remote: send this job's events to no notification target (they still go on EventBridge)")
		cmd.MarkFlagsMutuallyExclusive("notify", "no-notify")
		fl.Float64Var(&f.MaxCost, "max-cost", 0, "with --remote: refuse the job when its estimate is over this many USD, and stop it when its cost passes it")
		fl.BoolVar(&f.Monitor, "monitor", false, "with --remote, for sync and init --sync: keep the worker watching replication (lag metrics, an event past --lag-alert) until the time limit or jobs cancel; replication goes on either way")
		fl.DurationVar(&f.LagAlert, "lag-alert", 0, "with --monitor: how far behind the target may fall before an event says so (default 5m)")
	}
	AddAPIFlags(cmd, f)
}

// NeedRemote refuses the submission flags without --remote: they would do
// nothing.
func NeedRemote(cmd *cobra.Command) error {
	return cmdutil.NeedsFlag(cmd, "remote", "detach", "instance-type", "time-limit", "notify", "no-notify", "max-cost", "monitor", "lag-alert", "api-url", "region", "stack")
}

// AddAPIFlags registers --api-url and --region.
func AddAPIFlags(cmd *cobra.Command, f *Flags) {
	cmd.Flags().StringVar(&f.APIURL, "api-url", "", "job API URL (default $REPLICATOR_API_URL, or the one replicator setup recorded)")
	cmd.Flags().StringVar(&f.Region, "region", "", "AWS region of the job platform (default: the deployment's, or the AWS configuration's)")
	cmd.Flags().StringVar(&f.Stack, "stack", "replicator", "deployment to use (as named in replicator setup)")
}

// Target is the deployment the flags name.
func (f *Flags) Target() client.Target {
	return client.Target{APIURL: f.APIURL, Region: f.Region, Stack: f.Stack}
}

// Options applies the remote flags to a job's options.
func (f *Flags) Options(o *remote.Options) {
	o.InstanceType = f.InstanceType
	if f.TimeLimit > 0 {
		o.TimeLimitMinutes = max(1, int(f.TimeLimit.Minutes()))
	}
	o.MaxCostUSD = f.MaxCost
	o.Monitor = f.Monitor
	if f.LagAlert > 0 {
		o.LagAlertSeconds = max(1, int(f.LagAlert.Seconds()))
	}
	switch {
	case f.Notify:
		o.Notify = ptr(true)
	case f.NoNotify:
		o.Notify = ptr(false)
	}
}

func ptr[T any](v T) *T { return &v }

// PollEvery is how often a watched job and its log are read.
const PollEvery = 2 * time.Second

// NewRequest is the remote job of a command: its connections as a remote job
// carries them (password resolved here, certificates inline: the job's URLs
// may name no file of this machine), its filters and options, and the
// submission flags' instance type and time limit.
func NewRequest(command string, src, dst *conninfo.Endpoint, via string, spec filter.Spec, o remote.Options, fl *Flags) (*remote.Request, error) {
	source, srcCerts, err := src.ForRemote()
	if err != nil {
		return nil, err
	}
	target, dstCerts, err := dst.ForRemote()
	if err != nil {
		return nil, err
	}
	req := &remote.Request{Command: command, Source: source, Target: target, SourceForTarget: via,
		SourceCerts: srcCerts, TargetCerts: dstCerts, Filters: spec, Options: o}
	fl.Options(&req.Options)
	return req, nil
}

// estimate prints what the job should cost before it is submitted, with the
// price from the Price List API when the caller may read it, and refuses a
// job over its --max-cost (the API refuses it too, at its table's price).
func estimate(ctx context.Context, ios *iostreams.IOStreams, c client.API, req *remote.Request, jsonOut bool) error {
	q, err := c.Quote(ctx, req)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	est := q.Estimate
	if price, source := c.Price(ctx, q.InstanceType); price > 0 {
		est = est.WithPrice(price, source)
	} else {
		est.PriceSource = source
	}
	limit := req.Options.MaxCostUSD
	switch {
	case limit <= 0:
	case !est.PriceKnown:
		return fmt.Errorf("--max-cost $%s cannot be kept: %s", usd(limit), est.PriceSource)
	case est.Hours > 0 && est.TotalUSD > limit:
		return fmt.Errorf("the estimate, $%s (%s for about %.1f h at $%s/h), is over --max-cost $%s: raise it, or choose a smaller --instance-type",
			usd(est.TotalUSD), est.InstanceType, est.Hours, usd(est.HourlyUSD), usd(limit))
	}
	if jsonOut {
		return json.NewEncoder(ios.Out).Encode(map[string]any{"event": "estimate", "estimate": est})
	}
	fmt.Fprintln(ios.ErrOut, "estimate:")
	for _, l := range est.Lines() {
		fmt.Fprintln(ios.ErrOut, "  "+l)
	}
	if limit > 0 && est.Hours == 0 {
		fmt.Fprintf(ios.ErrOut, "the size is unknown from here: --max-cost $%s is kept while the job runs (checked every minute)\n", usd(limit))
	}
	return nil
}

// usd writes an amount without trailing zeros ($0.0001, $12.5).
func usd(v float64) string { return strconv.FormatFloat(v, 'f', -1, 64) }

// Detached is returned when the user leaves a job running (Ctrl-C).
type Detached struct{ ID string }

// Detached marks it for cmdutil.Exit.
func (d *Detached) Detached() {}

func (d *Detached) Error() string {
	return fmt.Sprintf("detached from job %s, which goes on: re-attach with replicator jobs watch %s", d.ID, d.ID)
}

// Submit sends a job and, unless detached, watches it to its end.
func Submit(ctx context.Context, ios *iostreams.IOStreams, c client.API, fl *Flags, req *remote.Request, jsonOut bool) error {
	who, err := c.Identity(ctx)
	if err != nil {
		return err
	}
	if err := CheckPlatform(ctx, ios, c, fl.Where(c), req); err != nil {
		return err
	}
	if err := estimate(ctx, ios, c, req, jsonOut); err != nil {
		return err
	}
	job, err := c.Submit(ctx, req)
	if err != nil {
		return fmt.Errorf("submit: %w", err)
	}
	if jsonOut {
		_ = json.NewEncoder(ios.Out).Encode(map[string]any{"event": "submitted", "job": job})
	} else {
		fmt.Fprintf(ios.ErrOut, "submitted job %s to %s as %s (worker %s)\nre-attach any time with: replicator jobs watch %s\n",
			job.ID, c.Endpoint(), who, job.InstanceType, job.ID)
	}
	if fl.Detach {
		if !jsonOut {
			fmt.Fprintln(ios.Out, job.ID)
		}
		return nil
	}
	return Watch(ctx, ios, c, job.ID, jsonOut)
}

// Watch follows a job to its end: events from its log, progress from its
// record. When the API cannot be reached it keeps trying, for as long as it
// takes: the job goes on regardless. The error reflects the job's outcome.
func Watch(ctx context.Context, ios *iostreams.IOStreams, c client.API, id string, jsonOut bool) error {
	r := progressui.New(ios, jsonOut)
	closed := false
	closeDisplay := func() {
		if !closed {
			r.Close()
			closed = true
		}
	}
	defer closeDisplay()
	var res results
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = time.Second, 30*time.Second
	var outage time.Time
	cursor := ""
	for {
		job, page, err := poll(ctx, c, id, cursor)
		if err != nil {
			if ctx.Err() != nil {
				return &Detached{ID: id}
			}
			if !client.Retryable(err) {
				return err
			}
			if outage.IsZero() {
				outage = time.Now()
				r.Emit(progress.Event{Time: time.Now(), Kind: progress.Warning, Message: fmt.Sprintf("job API unreachable (%v); retrying: the job goes on", err)})
			}
			if !sleep(ctx, bo.NextBackOff()) {
				return &Detached{ID: id}
			}
			continue
		}
		if !outage.IsZero() {
			r.Emit(progress.Event{Time: time.Now(), Kind: progress.Info, Message: fmt.Sprintf("job API reachable again after %s", time.Since(outage).Round(time.Second))})
			outage = time.Time{}
			bo.Reset()
		}
		res.read(page.Lines, r)
		cursor = page.Next
		if job.Progress != nil {
			r.Emit(progress.Event{Time: time.Now(), Kind: progress.Tick, Overall: job.Progress})
		}
		if job.Status.Terminal() && len(page.Lines) == 0 {
			closeDisplay()
			if err := res.print(ios, jsonOut); err != nil {
				return err
			}
			return Outcome(job)
		}
		if !job.Status.Terminal() && !sleep(ctx, PollEvery) {
			return &Detached{ID: id}
		}
	}
}

// results are the worker's, printed once the job is over, as a local run
// prints them.
type results struct {
	copied   *engine.Result
	verified *verify.Result
}

// read renders a page of the job's log: events go to the display, results
// are kept for the end.
func (res *results) read(lines []logs.Line, r progressui.Renderer) {
	for _, l := range lines {
		var ev progress.Event
		if json.Unmarshal([]byte(l.Message), &ev) != nil || ev.Kind == "" {
			ev = progress.Event{Time: l.Time, Kind: progress.Info, Message: l.Message}
		}
		switch ev.Kind {
		case progress.Summary:
			res.copied = &engine.Result{}
			if json.Unmarshal(ev.Data, res.copied) != nil {
				res.copied = nil
			}
		case progress.VerifyResult:
			res.verified = &verify.Result{}
			if json.Unmarshal(ev.Data, res.verified) != nil {
				res.verified = nil
			}
		default:
			r.Emit(ev)
		}
	}
}

func (res *results) print(ios *iostreams.IOStreams, jsonOut bool) error {
	if res.copied != nil {
		if err := progressui.Summary(ios.Out, res.copied, jsonOut); err != nil {
			return err
		}
	}
	if res.verified != nil {
		return verifycmd.Report(ios.Out, res.verified, jsonOut)
	}
	return nil
}

func poll(ctx context.Context, c client.API, id, cursor string) (*remote.Job, *jobsPage, error) {
	job, err := c.Get(ctx, id)
	if err != nil {
		return nil, nil, err
	}
	page, err := c.Logs(ctx, id, cursor)
	if err != nil {
		return nil, nil, err
	}
	return job, (*jobsPage)(page), nil
}

// Outcome is the error a finished job means (nil when it succeeded).
func Outcome(j *remote.Job) error {
	switch j.Status {
	case remote.Succeeded:
		return nil
	case remote.Cancelled:
		return fmt.Errorf("job %s was cancelled", j.ID)
	default:
		return fmt.Errorf("job %s failed: %s", j.ID, j.Error)
	}
}

func sleep(ctx context.Context, d time.Duration) bool {
	select {
	case <-ctx.Done():
		return false
	case <-time.After(d):
		return true
	}
}

type jobsPage = logs.Page
