// Package statuscmd is `replicator status`: where replication stands, database
// by database.
package statuscmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/replication"
)

// Options of one status run.
type Options struct {
	IO        *iostreams.IOStreams
	Endpoints cmdutil.Endpoints
	Filters   cmdutil.Filters
	Watch     bool
	Interval  time.Duration
	JSON      bool
	// Check exits non-zero, with a line per problem, when replication
	// needs a person (for cron and CI); MaxRetained is the WAL the source
	// may keep for it before that counts.
	Check       bool
	MaxRetained string
	maxRetained int64
}

// ErrProblems is status --check's failure (its lines are printed).
var ErrProblems = errors.New("replication needs attention")

// NewCmdStatus builds the command. runF replaces the run in tests.
func NewCmdStatus(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "status --source URL --target URL",
		Short: "Show replication state and lag for every database",
		Long: `For every selected database: the subscription's state, each table's sync
state, the slot's lag in bytes and seconds, and when a change was last applied.
--watch refreshes until Ctrl-C.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := cmdutil.NeedsFlag(cmd, "watch", "interval"); err != nil {
				return err
			}
			if opts.Interval < 100*time.Millisecond {
				return cmdutil.FlagErrorf("--interval must be at least 100ms")
			}
			if opts.Check && opts.Watch {
				return cmdutil.FlagErrorf("--check looks once and exits: drop --watch")
			}
			n, err := cmdutil.ParseSize(opts.MaxRetained)
			if err != nil || n <= 0 {
				return cmdutil.FlagErrorf("--max-retained %q: give a size such as 1GB", opts.MaxRetained)
			}
			opts.maxRetained = n
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runStatus(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddDatabaseFilterFlags(cmd, &opts.Filters)
	cmd.Flags().BoolVarP(&opts.Watch, "watch", "w", false, "refresh until interrupted")
	cmd.Flags().DurationVar(&opts.Interval, "interval", 2*time.Second, "refresh interval with --watch")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print JSON (one line per refresh)")
	cmd.Flags().BoolVar(&opts.Check, "check", false, "exit 1, with a line per problem, when replication is broken, the tables differ, or the source keeps more than --max-retained of WAL for it")
	cmd.Flags().StringVar(&opts.MaxRetained, "max-retained", "1GB", "WAL the source may keep for replication before status warns")
	return cmd
}

func runStatus(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	dbs, err := replication.Databases(ctx, src, rules.Database)
	if err != nil {
		return err
	}
	ios := opts.IO
	for {
		sts, err := replication.ReadAll(ctx, src, dst, dbs)
		if err != nil {
			if opts.Watch && ctx.Err() != nil {
				return nil // interrupted while reading: --watch ends as asked
			}
			return err
		}
		switch {
		case opts.JSON:
			if err := json.NewEncoder(ios.Out).Encode(struct {
				Event     string                `json:"event"`
				Time      time.Time             `json:"time"`
				Databases []*replication.Status `json:"databases"`
			}{"status", time.Now(), sts}); err != nil {
				return err
			}
		default:
			if opts.Watch && ios.IsStdoutTTY() {
				fmt.Fprint(ios.Out, "\033[H\033[2J")
			}
			if opts.Watch {
				fmt.Fprintln(ios.Out, time.Now().Format("15:04:05"))
			}
			Print(ios.Out, sts)
		}
		var problems []string
		for _, st := range sts {
			problems = append(problems, st.Problems(opts.maxRetained)...)
		}
		if !opts.JSON && !opts.Check {
			for _, p := range problems {
				fmt.Fprintln(ios.ErrOut, "warning: "+p)
			}
		}
		if opts.Check {
			for _, p := range problems {
				fmt.Fprintln(ios.ErrOut, p)
			}
			if len(problems) > 0 {
				return ErrProblems
			}
		}
		if !opts.Watch {
			return nil
		}
		select {
		case <-ctx.Done():
			return nil
		case <-time.After(opts.Interval):
		}
	}
}

// Print writes one line per database, then the tables not yet ready.
func Print(w io.Writer, sts []*replication.Status) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "DATABASE\tSTATE\tCAUGHT UP\tLAG\tLAG TIME\tLAST APPLIED\tTABLES\tERRORS")
	for _, s := range sts {
		caught, lag, lagTime, applied, tables, errs := "-", "-", "-", "-", "-", "-"
		if s.CaughtUp != nil {
			caught = map[bool]string{true: "yes", false: "no"}[*s.CaughtUp]
		}
		if s.Slot != nil {
			lag = progressui.Bytes(s.Slot.LagBytes)
			if s.Slot.LagSeconds != nil {
				lagTime = progressui.Duration(*s.Slot.LagSeconds)
			}
		}
		if s.Subscription != nil {
			if s.Subscription.LastApplied != nil {
				applied = s.Subscription.LastApplied.Local().Format("2006-01-02 15:04:05")
			}
			errs = fmt.Sprint(s.Subscription.ApplyErrors)
			tables = summarize(s.Tables)
		}
		name := s.Database
		if s.Direction == "reverse" {
			name += " (target → source)"
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t%s\t%s\n", name, s.State, caught, lag, lagTime, applied, tables, errs)
	}
	tw.Flush()
	for _, s := range sts {
		for _, t := range s.Tables {
			if t.State != "ready" {
				fmt.Fprintf(w, "  %s.%s: %s\n", s.Database, t.Table, t.State)
			}
		}
		for _, d := range s.Drift {
			what := d.Table
			if d.Column != "" {
				what += "." + d.Column
			}
			fmt.Fprintf(w, "  %s %s: %s\n    fix on the target: %s\n", s.Database, what, d.Problem, d.Fix)
		}
		for _, c := range s.SchemaChanges {
			fmt.Fprintf(w, "  %s schema change %d (%s by %s, %s) on the %s: %s\n", s.Database, c.ID, c.Command, c.Role,
				c.CapturedAt.Local().Format("2006-01-02 15:04:05"), c.Side, c.Problem)
			if stmt := c.Statement(); stmt != "" {
				fmt.Fprintf(w, "    statement: %s\n", stmt)
			}
			fmt.Fprintf(w, "    fix: %s\n", c.Fix())
		}
		if s.CaptureOutdated {
			fmt.Fprintf(w, "  %s the schema change capture on the source is an older replicator's, which a role that may create objects can take over\n    fix: run replicator sync (it upgrades the capture in place)\n", s.Database)
		}
		for _, t := range s.Unkeyed {
			fmt.Fprintf(w, "  %s %s is published but has no primary key or replica identity: the source refuses its UPDATEs and DELETEs\n    fix on the source: add a primary key, or ALTER TABLE %s REPLICA IDENTITY FULL\n", s.Database, t, t)
		}
		if len(s.NewTables) > 0 {
			fmt.Fprintf(w, "  %s new table(s) %s wait to join the subscription: run replicator sync again\n", s.Database, strings.Join(s.NewTables, ", "))
		}
		if sl := s.Slot; sl != nil && sl.InactiveSince != nil && !sl.Active {
			fmt.Fprintf(w, "  %s: the source's slot has had no reader since %s\n", s.Database, sl.InactiveSince.Local().Format("2006-01-02 15:04:05"))
		}
	}
}

func summarize(ts []replication.TableState) string {
	count := map[string]int{}
	for _, t := range ts {
		count[t.State]++
	}
	var parts []string
	for state, n := range count {
		parts = append(parts, fmt.Sprintf("%d %s", n, state))
	}
	sort.Strings(parts)
	if len(parts) == 0 {
		return "0"
	}
	return strings.Join(parts, ", ")
}
