// Package verifycmd is `replicator verify`: compare source and target table by
// table, row counts and content hashes over key ranges.
package verifycmd

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/verify"
)

// Options of one verify run.
type Options struct {
	IO        *iostreams.IOStreams
	Endpoints cmdutil.Endpoints
	Filters   cmdutil.Filters
	Jobs      int
	JSON      bool
}

// NewCmdVerify builds the command. runF replaces the run in tests.
func NewCmdVerify(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams}
	cmd := &cobra.Command{
		Use:   "verify --source URL --target URL",
		Short: "Compare source and target: per-table row counts and content hashes",
		Long: `Compare every selected table of source and target: row counts and content
hashes, computed by each server over ranges of the table's key (contiguous
ranges of an integer key, hash buckets of other keys), so that a difference is
reported with its table, its range and the keys that differ. Exits non-zero
when anything differs.

Rows are compared as text under identical session settings; tables with a
--table-filter are compared against the matching source rows only, and
--schema-only-tables are not compared. A source that changes while verify runs
will show the changes as differences.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Jobs < 1 {
				return cmdutil.FlagErrorf("--jobs must be at least 1")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runVerify(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	cmd.Flags().IntVarP(&opts.Jobs, "jobs", "j", 4, "tables compared at once")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the result as JSON on stdout")
	return cmd
}

func runVerify(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	vo := verify.Options{Source: src, Target: dst, Filters: rules, Jobs: opts.Jobs}
	var display progressui.Renderer
	if !opts.JSON {
		display = progressui.New(opts.IO, false)
		vo.Progress = display
	}
	res, err := verify.Run(ctx, vo)
	if display != nil {
		display.Close() // the bar goes before the results are printed
	}
	var diff *verify.ErrDifferent
	if err != nil && !errors.As(err, &diff) {
		return err
	}
	if perr := Report(opts.IO.Out, res, opts.JSON); perr != nil {
		return perr
	}
	return err
}

// Report prints a verify result, as lines or JSON.
func Report(w io.Writer, res *verify.Result, jsonOut bool) error {
	if jsonOut {
		return json.NewEncoder(w).Encode(struct {
			Event string `json:"event"`
			*verify.Result
		}{"verify", res})
	}
	Print(w, res)
	return nil
}

// Print writes one line per table, the differences with their ranges and keys.
func Print(w io.Writer, res *verify.Result) {
	for _, t := range res.Tables {
		name := t.Database + "." + t.Table
		switch {
		case t.Note != "" && t.Match:
			fmt.Fprintf(w, "skip    %s: %s\n", name, t.Note)
		case t.Match:
			fmt.Fprintf(w, "ok      %s: %d rows in %d range(s), %s\n", name, t.SourceRows, t.Ranges, progressui.Duration(t.Seconds))
		case t.Note != "":
			fmt.Fprintf(w, "DIFFER  %s: %s\n", name, t.Note)
		default:
			fmt.Fprintf(w, "DIFFER  %s: source %d rows, target %d rows; %d of %d range(s) of %s differ:\n",
				name, t.SourceRows, t.TargetRows, len(t.Diffs), t.Ranges, t.Key)
			for _, d := range t.Diffs {
				line := fmt.Sprintf("          %s: source %d rows, target %d rows", d.Range, d.SourceRows, d.TargetRows)
				if len(d.Keys) > 0 {
					line += "; keys: " + strings.Join(d.Keys, ", ")
				}
				fmt.Fprintln(w, line)
			}
		}
	}
	fmt.Fprintf(w, "\n%d table(s) compared in %s: %d differ.\n", len(res.Tables), progressui.Duration(res.Seconds), res.Different)
}
