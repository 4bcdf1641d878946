package cmdutil

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/cobra"
)

// OneLine renders an error as a single line: tool output may span lines, a
// terminal error message should not.
func OneLine(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted: run the same command again to resume where it stopped"
	}
	lines := strings.Split(strings.TrimSpace(err.Error()), "\n")
	var kept []string
	for _, l := range lines {
		if l = strings.TrimSpace(l); l != "" {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, " | ")
}

// Exit codes.
const (
	ExitOK       = 0
	ExitFailure  = 1
	ExitUsage    = 2
	ExitDetached = 130
)

// Detacher is an error that means the user left something running on
// purpose (Ctrl-C while watching a remote job): its text is the whole message.
type Detacher interface {
	error
	Detached()
}

// Exit prints err the one way errors are printed ("error: ..." in one line,
// with a hint to --help for usage errors) and returns the exit code.
func Exit(err error, w io.Writer) int {
	if err == nil {
		return ExitOK
	}
	var d Detacher
	if errors.As(err, &d) {
		fmt.Fprintln(w, d.Error())
		return ExitDetached
	}
	var fe *FlagError
	if errors.As(err, &fe) {
		fmt.Fprintln(w, "error: "+OneLine(err)+" (see replicator --help)")
		return ExitUsage
	}
	fmt.Fprintln(w, "error: "+OneLine(err))
	return ExitFailure
}

// FlagErrorFunc turns cobra's flag parsing errors into usage errors (for
// SetFlagErrorFunc): the type says what they are, not their text.
func FlagErrorFunc(_ *cobra.Command, err error) error {
	return &FlagError{msg: err.Error()}
}

// NoSubcommand refuses an unknown subcommand of a command group, as a usage
// error (cobra would print the help and succeed).
func NoSubcommand(cmd *cobra.Command, args []string) error {
	if len(args) > 0 {
		return FlagErrorf("unknown command %q for %q", args[0], cmd.CommandPath())
	}
	return nil
}

// ShowHelp is the RunE of a command group run without a subcommand.
func ShowHelp(cmd *cobra.Command, _ []string) error { return cmd.Help() }

// UsageArgs makes every positional-argument error of the command tree a usage
// error, as flag errors are.
func UsageArgs(cmd *cobra.Command) {
	if v := cmd.Args; v != nil {
		cmd.Args = func(c *cobra.Command, args []string) error {
			if err := v(c, args); err != nil {
				var fe *FlagError
				if errors.As(err, &fe) {
					return err
				}
				return &FlagError{msg: err.Error()}
			}
			return nil
		}
	}
	for _, sub := range cmd.Commands() {
		UsageArgs(sub)
	}
}
