// Package root assembles the replicator command tree.
package root

import (
	"context"
	"strings"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/cutovercmd"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/initcmd"
	"github.com/replicatorhq/replicator/cli/jobscmd"
	"github.com/replicatorhq/replicator/cli/setupcmd"
	"github.com/replicatorhq/replicator/cli/statuscmd"
	"github.com/replicatorhq/replicator/cli/synccmd"
	"github.com/replicatorhq/replicator/cli/teardowncmd"
	"github.com/replicatorhq/replicator/cli/validatecmd"
	"github.com/replicatorhq/replicator/cli/verifycmd"
)

// NewCmdRoot returns the top-level command.
func NewCmdRoot(f *factory.Factory) *cobra.Command { return newCmdRoot(f, false) }

// NewCmdRootParseOnly returns the same tree, whose commands stop once their
// flags and arguments are parsed and checked: the docs' examples run through
// it, so that a renamed flag fails a test rather than a reader.
func NewCmdRootParseOnly(f *factory.Factory) *cobra.Command { return newCmdRoot(f, true) }

func newCmdRoot(f *factory.Factory, parseOnly bool) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "replicator <command>",
		Short: "Copy PostgreSQL clusters exactly and fast, and keep them in sync",
		Long: `replicator copies PostgreSQL clusters from a source to a target: roles, every
database, schema, data, indexes, sequences and large objects, in one consistent
snapshot per database.`,
		Version:       f.Build.Version,
		SilenceUsage:  true,
		SilenceErrors: true,
		// Unknown commands are usage errors (cobra's own would be text only).
		Args: cmdutil.NoSubcommand,
		RunE: cmdutil.ShowHelp,
	}
	cmd.SetVersionTemplate(f.Build.String() + "\n")
	cmd.SetFlagErrorFunc(cmdutil.FlagErrorFunc)
	cmd.PersistentFlags().BoolVarP(&f.Verbose, "verbose", "v", false, "log diagnostics to stderr")
	cmd.SetOut(f.IOStreams.Out)
	cmd.SetErr(f.IOStreams.ErrOut)
	cmd.AddCommand(initcmd.NewCmdInit(f, stop[initcmd.Options](parseOnly)))
	cmd.AddCommand(verifycmd.NewCmdVerify(f, stop[verifycmd.Options](parseOnly)))
	cmd.AddCommand(validatecmd.NewCmdValidate(f, stop[validatecmd.Options](parseOnly)))
	cmd.AddCommand(synccmd.NewCmdSync(f, stop[synccmd.Options](parseOnly)))
	cmd.AddCommand(statuscmd.NewCmdStatus(f, stop[statuscmd.Options](parseOnly)))
	cmd.AddCommand(cutovercmd.NewCmdCutover(f, stop[cutovercmd.Options](parseOnly)))
	cmd.AddCommand(jobscmd.NewCmdJobs(f, parseOnly))
	cmd.AddCommand(setupcmd.NewCmdSetup(f, stop[setupcmd.Options](parseOnly)))
	cmd.AddCommand(teardowncmd.NewCmdTeardown(f, stop[teardowncmd.Options](parseOnly)))
	cmd.SetHelpCommand(newCmdHelp())
	cmdutil.UsageArgs(cmd)
	return cmd
}

// stop is a command's run when only parsing (nil runs it for real).
func stop[O any](parseOnly bool) func(context.Context, *O) error {
	if !parseOnly {
		return nil
	}
	return func(context.Context, *O) error { return nil }
}

// newCmdHelp is `replicator help [command]`: cobra's own shows the root's
// help and succeeds for a topic it does not know.
func newCmdHelp() *cobra.Command {
	return &cobra.Command{
		Use:   "help [command]",
		Short: "Help about any command",
		RunE: func(c *cobra.Command, args []string) error {
			target, rest, err := c.Root().Find(args)
			if err != nil || target == nil || len(rest) > 0 {
				return cmdutil.FlagErrorf("unknown help topic %q", strings.Join(args, " "))
			}
			return target.Help()
		},
	}
}
