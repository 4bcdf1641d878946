package cmdutil

import (
	"slices"

	"github.com/spf13/cobra"
)

// NeedsFlag refuses flags given without the flag they only make sense with
// (--detach without --remote): an option with no effect is an error.
func NeedsFlag(cmd *cobra.Command, with string, names ...string) error {
	if cmd.Flags().Changed(with) {
		return nil
	}
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return FlagErrorf("--%s needs --%s", n, with)
		}
	}
	return nil
}

// Conflicts refuses flags that cannot be combined with a given one, saying
// why (--state-dir with --remote: the worker keeps its checkpoints itself).
func Conflicts(cmd *cobra.Command, with string, why map[string]string) error {
	if !cmd.Flags().Changed(with) {
		return nil
	}
	var names []string
	for n := range why {
		names = append(names, n)
	}
	slices.Sort(names)
	for _, n := range names {
		if cmd.Flags().Changed(n) {
			return FlagErrorf("--%s cannot be used with --%s: %s", n, with, why[n])
		}
	}
	return nil
}
