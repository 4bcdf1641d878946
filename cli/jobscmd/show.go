package jobscmd

import (
	"context"
	"fmt"
	"io"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/progressui"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// ShowOptions of jobs show.
type ShowOptions struct {
	Common
	ID string
}

// NewCmdShow builds jobs show.
func NewCmdShow(f *factory.Factory, runF func(context.Context, *ShowOptions) error) *cobra.Command {
	opts := &ShowOptions{}
	cmd := &cobra.Command{
		Use: "show ID", Short: "Show a job", Args: cobra.ExactArgs(1),
		RunE: byID(opts, &opts.ID, runF, runShow),
	}
	common(f, cmd, &opts.Common)
	return cmd
}

func runShow(ctx context.Context, opts *ShowOptions) error {
	c, err := opts.api(ctx)
	if err != nil {
		return err
	}
	j, err := c.Get(ctx, opts.ID)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, j)
	}
	printJob(opts.IO.Out, j, stacknames.Of(opts.Target.Stack).DashboardURL(c.AWSRegion()))
	return nil
}

func printJob(w io.Writer, j *remote.Job, dashboard string) {
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
	if j.CLIVersion != "" || j.WorkerVersion != "" {
		row("versions", fmt.Sprintf("submitted by CLI %s to platform %s; worker %s", orDash(j.CLIVersion), orDash(j.PlatformVersion), orDash(j.WorkerVersion)))
	}
	row("attempts", fmt.Sprint(j.Attempts))
	row("created", j.CreatedAt.Local().Format("2006-01-02 15:04:05"))
	row("started", ts(j.StartedAt))
	row("last heartbeat", ts(j.HeartbeatAt))
	row("finished", ts(j.FinishedAt))
	if p := j.Progress; p != nil {
		row("progress", fmt.Sprintf("%.1f%%, %d/%d tables, %d rows, %s", p.Percent, p.TablesDone, p.TablesTotal, p.Rows, progressui.Bytes(p.Bytes)))
	}
	if u := j.Usage(time.Now()); u != nil {
		row("cost", fmt.Sprintf("$%.4f: %.3f instance-hours of %s at $%.4f/h, with its volume (%s)", u.CostUSD, u.InstanceHours, j.InstanceType, j.HourlyUSD, u.PriceSource))
		if u.ThroughputBytes > 0 {
			row("throughput", progressui.Bytes(int64(u.ThroughputBytes))+"/s on average")
		}
	}
	row("message", j.Message)
	row("error", j.Error)
	row("dashboard", dashboard)
	tw.Flush()
}

func orDash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
