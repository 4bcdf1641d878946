package jobscmd

import (
	"context"
	"encoding/json"
	"fmt"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/internal/progress"
)

// LogsOptions of jobs logs.
type LogsOptions struct {
	Common
	ID     string
	Follow bool
}

// NewCmdLogs builds jobs logs.
func NewCmdLogs(f *factory.Factory, runF func(context.Context, *LogsOptions) error) *cobra.Command {
	opts := &LogsOptions{}
	cmd := &cobra.Command{
		Use: "logs ID", Short: "Print a job's log", Args: cobra.ExactArgs(1),
		RunE: byID(opts, &opts.ID, runF, runLogs),
	}
	common(f, cmd, &opts.Common)
	cmd.Flags().BoolVarP(&opts.Follow, "follow", "f", false, "keep printing until the job ends")
	return cmd
}

// runLogs prints a job's events as a local run would (or raw with --json).
func runLogs(ctx context.Context, opts *LogsOptions) error {
	c, err := opts.api(ctx)
	if err != nil {
		return err
	}
	out := opts.IO.Out
	cursor := ""
	for {
		page, err := c.Logs(ctx, opts.ID, cursor)
		if err != nil {
			return err
		}
		for _, l := range page.Lines {
			if opts.JSON {
				fmt.Fprintln(out, l.Message)
				continue
			}
			var ev progress.Event
			if json.Unmarshal([]byte(l.Message), &ev) != nil || ev.Kind == "" {
				fmt.Fprintf(out, "%s %s\n", l.Time.Local().Format("15:04:05"), l.Message)
				continue
			}
			if line := progressui.Describe(ev); line != "" {
				fmt.Fprintf(out, "%s %s\n", ev.Time.Local().Format("15:04:05"), line)
			}
		}
		cursor = page.Next
		if !opts.Follow {
			return nil
		}
		if len(page.Lines) == 0 {
			j, err := c.Get(ctx, opts.ID)
			if err != nil {
				return err
			}
			if j.Status.Terminal() {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(remoteui.PollEvery):
			}
		}
	}
}
