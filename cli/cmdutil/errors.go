package cmdutil

import (
	"context"
	"errors"
	"strings"
)

// OneLine renders an error as a single line: tool output may span lines, a
// terminal error message should not.
func OneLine(err error) string {
	if errors.Is(err, context.Canceled) {
		return "interrupted: the target may hold a partial copy; re-run with --drop-existing to start over"
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

// IsUsageError recognises cobra's own flag parsing errors.
func IsUsageError(err error) bool {
	msg := err.Error()
	return strings.HasPrefix(msg, "unknown flag") || strings.HasPrefix(msg, "unknown shorthand flag") ||
		strings.HasPrefix(msg, "unknown command") || strings.Contains(msg, "flag needs an argument") ||
		strings.HasPrefix(msg, "invalid argument")
}
