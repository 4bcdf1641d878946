// Package cutovercmd is `replicator cutover`: switch the application from a
// replicated source to its target in seconds of write downtime, checked at
// every step, and back again with --rollback.
package cutovercmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/cutover"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/runner"
)

// Options of one cutover run: its dependencies, from the factory, and its
// flags.
type Options struct {
	IO        *iostreams.IOStreams
	JobClient func(context.Context, client.Target) (client.API, error)

	Endpoints                        cmdutil.Endpoints
	Filters                          cmdutil.Filters
	SourceFromTarget, TargetFromSrc  string
	Rollback, Reverse, DryRun        bool
	MaxLag, DrainTimeout, SwitchTime time.Duration
	Fence                            string
	SequenceMargin                   int64
	Verify, UnfenceSource            bool
	Then                             string
	StateDir                         string
	JSON                             bool
	Remote                           remoteui.Flags
}

// FailAfterEnv names a step after which the cut-over fails on purpose: the
// tests inject a failure at each step through it.
const FailAfterEnv = "REPLICATOR_TEST_CUTOVER_FAIL_AFTER"

// CrashAfterEnv names a step after which the process exits at once, as a
// killed run would: the next run must undo or finish what it left.
const CrashAfterEnv = "REPLICATOR_TEST_CUTOVER_CRASH_AFTER"

// NewCmdCutover builds the command.
func NewCmdCutover(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, JobClient: f.JobClient}
	cmd := &cobra.Command{
		Use:   "cutover --source URL --target URL",
		Short: "Switch from the source to the replicated target, in seconds of write downtime",
		Long: `Finish a migration: switch the application from the source to the target that
replicator sync keeps current, without losing a committed transaction.

Steps, each timed:
  guardrails   no change: every database streams, no drift, no schema change
               left, lag under --max-lag for 3 readings, sequences readable,
               the roles whose sessions the fence ends are known
  fence        ALTER DATABASE ... SET default_transaction_read_only = on on the
               source, open transactions get --drain-timeout, then every other
               session is ended (--fence=none: the application is stopped
               already; writes that still arrive stop the cut-over)
  drain        wait until the target applied everything up to the fence
  sequences    copy every sequence's value (--sequence-margin adds a gap)
  final check  row counts of every table on both sides (--verify: content too),
               and no write since the fence
  switch       stop replication; with --reverse, replicate from the target
               back to the source from here on; run --then

A failure before the switch lifts the fence exactly as it was and leaves
replication running: run the same command again to start over. A run that
died half-way is undone (or its switch finished) by the next one.

The source stays read-only after the switch unless --unfence-source, so that
nothing writes to the old primary by mistake. With --reverse (PostgreSQL 16
or later on both sides), replicator cutover --rollback switches back the same
way, losing nothing.`,
		Example: `  replicator cutover --source $SRC --target $DST --dry-run
  replicator cutover --source $SRC --target $DST --reverse --then './repoint-pgbouncer.sh'
  replicator cutover --source $SRC --target $DST --rollback`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := checkFlags(cmd, opts); err != nil {
				return err
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runCutover(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	fl := cmd.Flags()
	fl.StringVar(&opts.SourceFromTarget, "source-from-target", "", "source URL as the target server reaches it, when it differs from --source (--rollback --reverse subscribes the target again)")
	fl.StringVar(&opts.TargetFromSrc, "target-from-source", "", "target URL as the source server reaches it, when it differs from --target (--reverse subscribes the source)")
	fl.BoolVar(&opts.Rollback, "rollback", false, "switch back from the target to the source, over the replication --reverse set up")
	fl.BoolVar(&opts.Reverse, "reverse", false, "at the switch, replicate from the new primary back to the old one, so that --rollback loses nothing (PostgreSQL 16+ on both sides)")
	fl.BoolVar(&opts.DryRun, "dry-run", false, "run the guardrails and print the plan; change nothing")
	fl.DurationVar(&opts.MaxLag, "max-lag", remote.DefaultMaxLag, "the most each guardrail reading may take the target to apply the source's current position")
	fl.DurationVar(&opts.DrainTimeout, "drain-timeout", remote.DefaultDrainTimeout, "how long open transactions may run on after the fence before their sessions are ended")
	fl.DurationVar(&opts.SwitchTime, "switch-timeout", remote.DefaultSwitchTimeout, "how long the target may take to apply everything up to the fence")
	fl.StringVar(&opts.Fence, "fence", "read-only", "how writes are stopped: read-only, or none when the application is stopped already")
	fl.Int64Var(&opts.SequenceMargin, "sequence-margin", 0, "move every sequence this many steps past the source's value")
	fl.BoolVar(&opts.Verify, "verify", false, "add a content hash of every table to the final check")
	fl.BoolVar(&opts.UnfenceSource, "unfence-source", false, "lift the fence on the old primary after the switch (by default it stays read-only)")
	fl.StringVar(&opts.Then, "then", "", "shell command to run after the switch (repoint a pooler or DNS); it gets the new primary in REPLICATOR_TARGET_URL and PG* variables")
	fl.StringVar(&opts.StateDir, "state-dir", "", "where the steps' state is kept, so that an interrupted cut-over is undone or finished (default $XDG_STATE_HOME/replicator or ~/.local/state/replicator)")
	fl.BoolVar(&opts.JSON, "json", false, "print the result as JSON on stdout")
	remoteui.AddFlags(cmd, &opts.Remote, true)
	return cmd
}

// checkFlags refuses flags that would do nothing, before anything runs.
func checkFlags(cmd *cobra.Command, opts *Options) error {
	if err := remoteui.NeedRemote(cmd); err != nil {
		return err
	}
	if opts.Fence != "read-only" && opts.Fence != "none" {
		return cmdutil.FlagErrorf("--fence must be read-only or none, not %q", opts.Fence)
	}
	if opts.Fence == "none" && cmd.Flags().Changed("drain-timeout") {
		return cmdutil.FlagErrorf("--drain-timeout has no effect with --fence=none, which ends no session")
	}
	if opts.MaxLag <= 0 || opts.SwitchTime <= 0 || opts.DrainTimeout < 0 {
		return cmdutil.FlagErrorf("--max-lag and --switch-timeout must be above 0, --drain-timeout 0 or more")
	}
	if opts.SequenceMargin < 0 {
		return cmdutil.FlagErrorf("--sequence-margin must be 0 or more")
	}
	if opts.DryRun {
		for _, f := range []string{"then", "unfence-source"} {
			if cmd.Flags().Changed(f) {
				return cmdutil.FlagErrorf("--%s has no effect with --dry-run, which switches nothing", f)
			}
		}
	}
	if cmd.Flags().Changed("source-from-target") && !(opts.Rollback && opts.Reverse) {
		return cmdutil.FlagErrorf("--source-from-target is used only by --rollback --reverse, which subscribes the target to the source again")
	}
	if cmd.Flags().Changed("target-from-source") && !(opts.Reverse && !opts.Rollback) {
		return cmdutil.FlagErrorf("--target-from-source is used only by --reverse, which subscribes the source to the target")
	}
	if opts.Remote.Remote {
		for f, why := range map[string]string{
			"then":               "runs on this machine, and the worker switches: run it once jobs watch says the job succeeded",
			"state-dir":          "the worker keeps the steps' state in the platform's table",
			"target-from-source": "a remote job carries only --source-from-target",
			"monitor":            "there is no replication left to watch after a cut-over",
		} {
			if cmd.Flags().Changed(f) {
				return cmdutil.FlagErrorf("--%s cannot be used with --remote: %s", f, why)
			}
		}
	}
	if cmd.Flags().Changed("pg-bin") {
		return cmdutil.FlagErrorf("--pg-bin has no effect on cutover, which runs no client tools")
	}
	return nil
}

// JobOptions are the job the flags describe, for a local run and a remote
// one alike.
func (opts *Options) JobOptions() remote.Options {
	o := remote.Options{Verify: opts.Verify}
	c := &o.Cutover
	c.Rollback, c.Reverse, c.PlanOnly, c.SequenceMargin, c.UnfenceSource = opts.Rollback, opts.Reverse, opts.DryRun, opts.SequenceMargin, opts.UnfenceSource
	secs := func(d time.Duration) *float64 { v := d.Seconds(); return &v }
	c.MaxLagSeconds, c.DrainTimeoutSeconds, c.SwitchTimeoutSeconds = secs(opts.MaxLag), secs(opts.DrainTimeout), secs(opts.SwitchTime)
	if opts.Fence == "none" {
		c.Fence, c.DrainTimeoutSeconds = "none", nil
	}
	return o
}

// Request is the remote job the flags describe, given its endpoints.
func (opts *Options) Request(src, dst *conninfo.Endpoint) (*remote.Request, error) {
	return remoteui.NewRequest("cutover", src, dst, opts.SourceFromTarget, opts.Filters.Spec(), opts.JobOptions(), &opts.Remote)
}

func runCutover(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	via, err := cmdutil.ParseSourceFromTarget(opts.SourceFromTarget)
	if err != nil {
		return err
	}
	if opts.Remote.Remote {
		c, err := opts.JobClient(ctx, opts.Remote.Target())
		if err != nil {
			return err
		}
		req, err := opts.Request(src, dst)
		if err != nil {
			return err
		}
		return remoteui.Submit(ctx, opts.IO, c, &opts.Remote, req, opts.JSON)
	}
	var back *conninfo.Endpoint
	if opts.TargetFromSrc != "" {
		// The source server reads this connection string.
		if back, err = conninfo.ParseOpaque("target (from the source)", opts.TargetFromSrc); err != nil {
			return err
		}
	}
	store, err := opts.store(src, dst)
	if err != nil {
		return err
	}
	job := runner.Job{Command: "cutover", Source: src, Target: dst, SourceForTarget: via, Filters: rules, Options: opts.JobOptions()}
	co := runner.CutoverOptions(job, store)
	co.TargetForSource = back
	// Progress goes to stdout as lines (not with --json), so that stderr
	// holds the error alone.
	errOut := opts.IO.Out
	if opts.JSON {
		errOut = io.Discard
	}
	co.Log = func(step cutover.Step, db, msg string) {
		if db != "" {
			msg = db + ": " + msg
		}
		fmt.Fprintf(errOut, "[%s] %s\n", step, msg)
	}
	co.StepDone = func(step cutover.Step, took time.Duration) {
		fmt.Fprintf(errOut, "[%s] done in %s\n", step, took.Round(time.Millisecond))
	}
	if v := os.Getenv(FailAfterEnv); v != "" {
		if co.FailAfter, _ = cutover.ParseStep(v); co.FailAfter == "" {
			return fmt.Errorf("%s=%q names no step", FailAfterEnv, v)
		}
	}
	if v := os.Getenv(CrashAfterEnv); v != "" {
		crash, _ := cutover.ParseStep(v)
		co.AfterStep = func(s cutover.Step) {
			if s == crash {
				fmt.Fprintf(errOut, "[%s] crashing on purpose (%s)\n", s, CrashAfterEnv)
				os.Exit(3)
			}
		}
	}
	res, err := runner.Cutover(ctx, co)
	thenErr := error(nil)
	if err == nil && res.Switched && opts.Then != "" {
		newPrimary := dst
		if opts.Rollback {
			newPrimary = src
		}
		thenErr = runThen(ctx, opts, errOut, newPrimary)
	}
	if perr := report(opts, res); perr != nil {
		return perr
	}
	var se *cutover.StepError
	if errors.As(err, &se) {
		// Said as it is, an interruption included: what was undone matters
		// more than that it was interrupted.
		return errors.New(se.Error())
	}
	if err != nil {
		return err
	}
	return thenErr
}

// store keeps the steps' state locally: one file for both directions of a
// source and target, so that a rollback finds what the cut-over recorded.
func (opts *Options) store(src, dst *conninfo.Endpoint) (checkpoint.Store, error) {
	dir := opts.StateDir
	if dir == "" {
		if dir = os.Getenv("REPLICATOR_STATE_DIR"); dir == "" {
			var err error
			if dir, err = checkpoint.DefaultDir(); err != nil {
				return nil, err
			}
		}
	}
	return checkpoint.NewFileStore(dir, checkpoint.RunID("cutover", src.Identity(), dst.Identity()))
}

// runThen runs --then with the new primary in its environment: the URL
// without the password, which travels in PGPASSWORD only.
func runThen(ctx context.Context, opts *Options, out io.Writer, ep *conninfo.Endpoint) error {
	c := exec.CommandContext(ctx, "/bin/sh", "-c", opts.Then)
	c.Stdout, c.Stderr = out, opts.IO.ErrOut
	c.Env = append(append(os.Environ(), "REPLICATOR_TARGET_URL="+ep.String(), fmt.Sprintf("PGHOST=%s", ep.Host()), fmt.Sprintf("PGPORT=%d", ep.Port()),
		"PGUSER="+ep.User()), ep.ToolEnv()...)
	start := time.Now()
	err := c.Run()
	var exit *exec.ExitError
	switch {
	case errors.As(err, &exit):
		fmt.Fprintf(out, "[switch] --then exited with status %d after %s\n", exit.ExitCode(), time.Since(start).Round(time.Millisecond))
		return fmt.Errorf("the switch is done, but the --then command exited with status %d: run it again by hand", exit.ExitCode())
	case err != nil:
		return fmt.Errorf("the switch is done, but the --then command did not run: %w", err)
	}
	fmt.Fprintf(out, "[switch] --then exited with status 0 after %s\n", time.Since(start).Round(time.Millisecond))
	return nil
}

// report prints the result: the steps' times, then what changed.
func report(opts *Options, res *cutover.Result) error {
	if res == nil {
		return nil
	}
	if opts.JSON {
		return json.NewEncoder(opts.IO.Out).Encode(res)
	}
	w := opts.IO.Out
	state := "not switched"
	switch {
	case res.Switched:
		state = "switched"
	case opts.DryRun && len(res.Plan) > 0:
		state = "dry run: the guardrails pass; nothing was changed"
	}
	fmt.Fprintf(w, "cut-over %s: %s\n", res.Direction, state)
	if opts.DryRun {
		for _, p := range res.Plan {
			fmt.Fprintln(w, "  "+p)
		}
	}
	var total float64
	for _, s := range res.Steps {
		fmt.Fprintf(w, "  %-12s %8.2f s\n", s.Step, s.Seconds)
		total += s.Seconds
	}
	if len(res.Steps) > 0 {
		fmt.Fprintf(w, "  %-12s %8.2f s\n", "total", total)
	}
	if !res.Switched {
		return nil
	}
	fmt.Fprintf(w, "new primary: %s\n", res.NewPrimary)
	if res.Reverse {
		fmt.Fprintln(w, "replicating back to the old primary: replicator cutover --rollback switches back without loss")
	}
	if len(res.StillFenced) > 0 {
		fmt.Fprintf(w, "the old primary stays read-only (%s); to lift it: %s\n", strings.Join(res.StillFenced, ", "), strings.Join(res.Unfence, "; "))
	}
	return nil
}
