// Package jobscmd is `replicator jobs`: list, show, watch, read the logs of and
// cancel remote jobs.
package jobscmd

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
)

// NewCmdJobs builds `jobs` and its subcommands.
func NewCmdJobs(f *factory.Factory) *cobra.Command {
	fl := &remoteui.Flags{}
	var jsonOut bool
	cmd := &cobra.Command{
		Use:   "jobs <command>",
		Short: "Remote jobs: list, show, watch, logs, cancel",
	}
	apiClient := func(cmd *cobra.Command) (*client.Client, error) { return fl.Client(cmd.Context()) }
	sub := func(use, short string, args cobra.PositionalArgs, run func(cmd *cobra.Command, c *client.Client, args []string) error) *cobra.Command {
		c := &cobra.Command{Use: use, Short: short, Args: args, RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if !remote.ValidID(a) {
					return cmdutil.FlagErrorf("%q is not a job id (j- and 16 letters or digits; see replicator jobs list)", a)
				}
			}
			c, err := apiClient(cmd)
			if err != nil {
				return err
			}
			return run(cmd, c, args)
		}}
		remoteui.AddAPIFlags(c, fl)
		c.Flags().BoolVar(&jsonOut, "json", false, "print JSON")
		return c
	}
	var limit int
	var all, follow bool
	list := sub("list", "List your jobs, newest first", cobra.NoArgs, func(cmd *cobra.Command, c *client.Client, _ []string) error {
		var out []*remote.Job
		cursor := ""
		for {
			page, next, err := c.List(cmd.Context(), limit, cursor)
			if err != nil {
				return err
			}
			out = append(out, page...)
			if next == "" || !all {
				break
			}
			cursor = next
		}
		if jsonOut {
			return json.NewEncoder(f.IOStreams.Out).Encode(map[string]any{"jobs": out})
		}
		printList(f.IOStreams.Out, out)
		return nil
	})
	list.Flags().IntVar(&limit, "limit", 20, "jobs per page")
	list.Flags().BoolVar(&all, "all", false, "every job, not just the first page")
	show := sub("show ID", "Show a job", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client.Client, args []string) error {
		j, err := c.Get(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if jsonOut {
			return json.NewEncoder(f.IOStreams.Out).Encode(j)
		}
		printJob(f.IOStreams.Out, j)
		return nil
	})
	watch := sub("watch ID", "Follow a job to its end, with the same display as a local run", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client.Client, args []string) error {
		return remoteui.Watch(cmd.Context(), f, c, args[0], jsonOut)
	})
	logs := sub("logs ID", "Print a job's log", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client.Client, args []string) error {
		return printLogs(cmd.Context(), f, c, args[0], follow, jsonOut)
	})
	logs.Flags().BoolVarP(&follow, "follow", "f", false, "keep printing until the job ends")
	cancel := sub("cancel ID", "Stop a job (the worker stops cleanly, or is terminated)", cobra.ExactArgs(1), func(cmd *cobra.Command, c *client.Client, args []string) error {
		j, err := c.Cancel(cmd.Context(), args[0])
		if err != nil {
			return err
		}
		if jsonOut {
			return json.NewEncoder(f.IOStreams.Out).Encode(j)
		}
		if j.Status == remote.Cancelled {
			fmt.Fprintf(f.IOStreams.Out, "job %s cancelled\n", j.ID)
		} else {
			fmt.Fprintf(f.IOStreams.Out, "job %s: cancel requested; the worker stops at its next heartbeat (replicator jobs watch %s)\n", j.ID, j.ID)
		}
		return nil
	})
	cmd.AddCommand(list, show, watch, logs, cancel)
	return cmd
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

func printJob(w io.Writer, j *remote.Job) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	row := func(k, v string) {
		if v != "" {
			fmt.Fprintf(tw, "%s:\t%s\n", k, v)
		}
	}
	ts := func(t *time.Time) string {
		if t == nil {
			return ""
		}
		return t.Local().Format("2006-01-02 15:04:05")
	}
	row("id", j.ID)
	row("status", string(j.Status))
	row("command", j.Command)
	row("source", j.Source)
	row("target", j.Target)
	row("owner", j.Owner)
	row("instance", strings.TrimSpace(j.InstanceID+" "+j.InstanceType))
	row("attempts", fmt.Sprint(j.Attempts))
	row("created", j.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	row("started", ts(j.StartedAt))
	row("last heartbeat", ts(j.HeartbeatAt))
	row("finished", ts(j.FinishedAt))
	if p := j.Progress; p != nil {
		row("progress", fmt.Sprintf("%.1f%%, %d/%d tables, %d rows, %s", p.Percent, p.TablesDone, p.TablesTotal, p.Rows, progressui.Bytes(p.Bytes)))
	}
	row("message", j.Message)
	row("error", j.Error)
	tw.Flush()
}

// printLogs prints a job's events as a local run would (or raw with --json).
func printLogs(ctx context.Context, f *factory.Factory, c *client.Client, id string, follow, jsonOut bool) error {
	cursor := ""
	for {
		page, err := c.Logs(ctx, id, cursor)
		if err != nil {
			return err
		}
		for _, l := range page.Lines {
			if jsonOut {
				fmt.Fprintln(f.IOStreams.Out, l.Message)
				continue
			}
			var ev progress.Event
			if json.Unmarshal([]byte(l.Message), &ev) != nil || ev.Kind == "" {
				fmt.Fprintf(f.IOStreams.Out, "%s %s\n", l.Time.Local().Format("15:04:05"), l.Message)
				continue
			}
			if line := progressui.Describe(ev); line != "" {
				fmt.Fprintf(f.IOStreams.Out, "%s %s\n", ev.Time.Local().Format("15:04:05"), line)
			}
		}
		cursor = page.Next
		if !follow {
			return nil
		}
		if len(page.Lines) == 0 {
			j, err := c.Get(ctx, id)
			if err != nil {
				return err
			}
			if j.Status.Terminal() {
				return nil
			}
			select {
			case <-ctx.Done():
				return nil
			case <-time.After(2 * time.Second):
			}
		}
	}
}
