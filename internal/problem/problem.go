// Package problem is the one error type for a problem the user can fix: what
// is wrong and what to do about it, in one line. The engine, replication and
// validate return it before anything changes; the CLI prints it as it is,
// without advice about resuming (there is nothing to resume).
package problem

import (
	"fmt"
	"strings"
)

// Problem is what is wrong (Msg) and how to fix it (Fix, optional).
type Problem struct {
	Msg, Fix string
	// Statements fix it, when replicator may run them for the user (SQL
	// such as ALTER TABLE ... REPLICA IDENTITY FULL).
	Statements []string
}

func (p *Problem) Error() string {
	if p.Fix == "" {
		return p.Msg
	}
	return p.Msg + ": " + p.Fix
}

// Errorf makes a problem whose message says the fix itself.
func Errorf(format string, args ...any) *Problem {
	return &Problem{Msg: fmt.Sprintf(format, args...)}
}

// ListSome joins the first n items with commas, and says how many more
// there are: a refusal names what it found without flooding the line.
func ListSome(items []string, n int) string {
	if len(items) <= n {
		return strings.Join(items, ", ")
	}
	return strings.Join(items[:n], ", ") + fmt.Sprintf(" and %d more", len(items)-n)
}
