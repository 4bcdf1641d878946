// Package jobscmd is `replicator jobs`: list, show, watch, read the logs of and
// cancel remote jobs. Each subcommand is a file with its Options, its
// NewCmd constructor and its run function.
package jobscmd

import (
	"context"
	"encoding/json"
	"io"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
)

// NewCmdJobs builds `jobs` and its subcommands; with parseOnly they stop
// once their flags and arguments are checked (root.NewCmdRootParseOnly).
func NewCmdJobs(f *factory.Factory, parseOnly bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "jobs <command>",
		Short: "Remote jobs: list, show, watch, logs, cancel",
		Args:  cmdutil.NoSubcommand,
		RunE:  cmdutil.ShowHelp,
	}
	if parseOnly {
		cmd.AddCommand(NewCmdList(f, noop[ListOptions]), NewCmdShow(f, noop[ShowOptions]), NewCmdWatch(f, noop[WatchOptions]),
			NewCmdLogs(f, noop[LogsOptions]), NewCmdCancel(f, noop[CancelOptions]))
		return cmd
	}
	cmd.AddCommand(NewCmdList(f, nil), NewCmdShow(f, nil), NewCmdWatch(f, nil), NewCmdLogs(f, nil), NewCmdCancel(f, nil))
	return cmd
}

func noop[O any](context.Context, *O) error { return nil }

// Common are what every jobs subcommand has: the deployment and --json.
type Common struct {
	IO        *iostreams.IOStreams
	JobClient func(context.Context, client.Target) (client.API, error)
	Target    remoteui.Flags
	JSON      bool
}

func common(f *factory.Factory, cmd *cobra.Command, c *Common) {
	c.IO, c.JobClient = f.IOStreams, f.JobClient
	remoteui.AddAPIFlags(cmd, &c.Target)
	cmd.Flags().BoolVar(&c.JSON, "json", false, "print JSON")
}

// api opens the deployment's job API.
func (c *Common) api(ctx context.Context) (client.API, error) {
	api, err := c.JobClient(ctx, c.Target.Target())
	if err != nil {
		return nil, err
	}
	return api, remoteui.CheckPlatform(ctx, c.IO, api, c.Target.Where(api), nil)
}

// jobID checks a job id argument before it reaches the API.
func jobID(args []string) (string, error) {
	if !remote.ValidID(args[0]) {
		return "", cmdutil.FlagErrorf("%q is not a job id (j- and 16 of a-z and 2-7; see replicator jobs list)", args[0])
	}
	return args[0], nil
}

// byID is the RunE of a subcommand that takes one job id: the id is checked
// and set, then runF (tests) or run is called.
func byID[O any](opts *O, id *string, runF, run func(context.Context, *O) error) func(*cobra.Command, []string) error {
	return func(cmd *cobra.Command, args []string) error {
		v, err := jobID(args)
		if err != nil {
			return err
		}
		*id = v
		if runF != nil {
			return runF(cmd.Context(), opts)
		}
		return run(cmd.Context(), opts)
	}
}

func printJSON(w io.Writer, v any) error { return json.NewEncoder(w).Encode(v) }
