package jobscmd

import (
	"context"
	"fmt"
	"io"
	"text/tabwriter"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/remote"
)

// ListOptions of jobs list.
type ListOptions struct {
	Common
	Limit int
	All   bool
}

// NewCmdList builds jobs list. runF replaces the run in tests.
func NewCmdList(f *factory.Factory, runF func(context.Context, *ListOptions) error) *cobra.Command {
	opts := &ListOptions{}
	cmd := &cobra.Command{
		Use: "list", Short: "List your jobs, newest first", Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if opts.Limit < 1 || opts.Limit > 100 {
				return cmdutil.FlagErrorf("--limit must be between 1 and 100")
			}
			if runF != nil {
				return runF(cmd.Context(), opts)
			}
			return runList(cmd.Context(), opts)
		},
	}
	common(f, cmd, &opts.Common)
	cmd.Flags().IntVar(&opts.Limit, "limit", 20, "jobs per page (1 to 100)")
	cmd.Flags().BoolVar(&opts.All, "all", false, "every job, not just the first page")
	return cmd
}

func runList(ctx context.Context, opts *ListOptions) error {
	c, err := opts.api(ctx)
	if err != nil {
		return err
	}
	var out []*remote.Job
	cursor := ""
	for {
		page, next, err := c.List(ctx, opts.Limit, cursor)
		if err != nil {
			return err
		}
		out = append(out, page...)
		if next == "" || !opts.All {
			break
		}
		cursor = next
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, map[string]any{"jobs": out})
	}
	printList(opts.IO.Out, out)
	return nil
}

func printList(w io.Writer, list []*remote.Job) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "ID\tSTATUS\tCOMMAND\tCREATED\tPROGRESS\tSOURCE -> TARGET")
	for _, j := range list {
		pct := "-"
		if j.Progress != nil {
			pct = fmt.Sprintf("%.0f%%", j.Progress.Percent)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s -> %s\n", j.ID, j.Status, j.Command, j.CreatedAt.Local().Format("2006-01-02 15:04"), pct, j.Source, j.Target)
	}
	tw.Flush()
}
