// Package validatecmd is `replicator validate`: check that a copy can work
// before starting it.
package validatecmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/validate"
)

// Options of one validate run.
type Options struct {
	IO        *iostreams.IOStreams
	FindTools func(ctx context.Context, dir string) (*pgtools.Tools, error)
	Endpoints cmdutil.Endpoints
	Filters   cmdutil.Filters
	Sync      bool
	Jobs      int
	IndexJobs int
	JSON      bool
}

// NewCmdValidate builds the command. runF replaces the run in tests.
func NewCmdValidate(f *factory.Factory, runF func(context.Context, *Options) error) *cobra.Command {
	opts := &Options{IO: f.IOStreams, FindTools: f.FindTools}
	cmd := &cobra.Command{
		Use:   "validate --source URL --target URL",
		Short: "Check that a copy can work, before starting it",
		Long: `Check connectivity, server versions (target at least the source's major),
pg_dump's version, the source role's right to read every selected table, the
target role's right to create databases, that every extension used on the source
is available on the target, free disk on the target where it can be known, and
free connections; estimate the size and duration of the copy. With --sync, also
wal_level = logical and the REPLICATION privilege on the source.

Each finding is ok, warn or fail, with the fix in one line. Exits non-zero
when a check fails. replicator init runs the same checks first.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Jobs < 0 || opts.IndexJobs < 0 {
				return cmdutil.FlagErrorf("--jobs and --index-jobs must be positive")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runValidate(cmd.Context(), opts)
		},
	}
	cmdutil.AddEndpointFlags(cmd, &opts.Endpoints)
	cmdutil.AddFilterFlags(cmd, &opts.Filters)
	cmdutil.AddCopyFilterFlags(cmd, &opts.Filters)
	cmd.Flags().BoolVar(&opts.Sync, "sync", false, "also check what logical replication (replicator sync) needs")
	cmd.Flags().IntVarP(&opts.Jobs, "jobs", "j", 0, "planned --jobs of the copy, for the connections it needs (default: as init, the number of CPUs, at least 2)")
	cmd.Flags().IntVar(&opts.IndexJobs, "index-jobs", 0, "planned --index-jobs of the copy (default: --jobs)")
	cmd.Flags().BoolVar(&opts.JSON, "json", false, "print the findings as JSON on stdout")
	return cmd
}

func runValidate(ctx context.Context, opts *Options) error {
	src, dst, rules, err := cmdutil.ParseInputs(&opts.Endpoints, &opts.Filters)
	if err != nil {
		return err
	}
	rep, err := validate.Run(ctx, validate.Options{Source: src, Target: dst, Filters: rules,
		FindTools: opts.FindTools, PGBin: opts.Endpoints.PGBin, Sync: opts.Sync, Jobs: opts.Jobs, IndexJobs: opts.IndexJobs})
	if err != nil {
		return err
	}
	if opts.JSON {
		if err := json.NewEncoder(opts.IO.Out).Encode(struct {
			Event string `json:"event"`
			*validate.Report
		}{"validate", rep}); err != nil {
			return err
		}
	} else {
		Print(opts.IO.Out, rep)
	}
	return rep.Err()
}

// Print writes one line per finding.
func Print(w io.Writer, rep *validate.Report) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	for _, f := range rep.Findings {
		line := f.Message
		if f.Fix != "" {
			line += "; fix: " + f.Fix
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\n", strings.ToUpper(string(f.Severity)), f.Check, line)
	}
	tw.Flush()
}
