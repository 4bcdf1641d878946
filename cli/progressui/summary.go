package progressui

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"text/tabwriter"

	"github.com/replicatorhq/replicator/internal/engine"
)

// maxTables bounds the per-table part of the summary; --json has them all.
const maxTables = 25

// PrintSummary prints the step timings and the slowest tables, as pgcopydb does
// at the end of a clone.
func PrintSummary(w io.Writer, res *engine.Result) {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "Database\tStep\tDuration\tCumulative\tCount\tTransfer\t")
	fmt.Fprintln(tw, "--------\t----\t--------\t----------\t-----\t--------\t")
	for _, s := range res.Steps {
		cum, count, transfer := "", "", ""
		if s.Cumulative > 0 {
			cum = Duration(s.Cumulative)
		}
		if s.Count > 0 {
			count = fmt.Sprint(s.Count)
		}
		if s.Bytes > 0 {
			transfer = Bytes(s.Bytes)
		}
		fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\t\n", s.Database, s.Name, Duration(s.Seconds), cum, count, transfer)
	}
	tw.Flush()

	if res.StepsOmitted > 0 {
		fmt.Fprintf(w, "... %d more steps\n", res.StepsOmitted)
	}
	if len(res.Tables) > 0 {
		tables := append([]engine.TableResult(nil), res.Tables...)
		sort.SliceStable(tables, func(i, j int) bool {
			return tables[i].CopySeconds+tables[i].IndexSeconds > tables[j].CopySeconds+tables[j].IndexSeconds
		})
		fmt.Fprintln(w)
		tw = tabwriter.NewWriter(w, 0, 0, 2, ' ', 0)
		fmt.Fprintln(tw, "Database\tTable\tRows\tBytes\tCopy\tIndexes\tParts\tFormat\t")
		fmt.Fprintln(tw, "--------\t-----\t----\t-----\t----\t-------\t-----\t------\t")
		for i, t := range tables {
			if i == maxTables {
				break
			}
			fmt.Fprintf(tw, "%s\t%s\t%d\t%s\t%s\t%s\t%d\t%s\t\n", t.Database, t.Table, t.Rows, Bytes(t.Bytes),
				Duration(t.CopySeconds), Duration(t.IndexSeconds), t.Parts, t.Format)
		}
		if more := res.TableCount() - min(len(tables), maxTables); more > 0 {
			fmt.Fprintf(tw, "\t... %d more tables (see --json)\t\t\t\t\t\t\t\n", more)
		}
		tw.Flush()
	}
	fmt.Fprintf(w, "\nCopied %d tables, %d rows, %s in %s.\n", res.TableCount(), res.Rows, Bytes(res.Bytes), Duration(res.Seconds))
	if len(res.Existing) > 0 {
		fmt.Fprintf(w, "\nAlready on the target, not created by the copy:\n")
		for _, m := range res.Existing {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
	if len(res.Warnings) > 0 {
		fmt.Fprintf(w, "\n%d warning(s):\n", len(res.Warnings))
		for _, m := range res.Warnings {
			fmt.Fprintf(w, "  - %s\n", m)
		}
	}
	if n := len(res.Refused) + res.RefusedOmitted; n > 0 {
		where := "--json lists them all (refused)"
		if res.RefusedOmitted > 0 {
			where = fmt.Sprintf("--json lists the first %d (refused); the job's log has the warnings for each kind", len(res.Refused))
		}
		if res.RefusedFile != "" {
			where = "every one is in " + res.RefusedFile + ", a psql script to run as a role that may (--json: refused)"
		}
		fmt.Fprintf(w, "\nThe target refused %d statement(s): %s.\n", n, where)
	}
}

// Summary prints what a copy did, at the end of a local or remote run: each
// step and the slowest tables, or one JSON line.
func Summary(w io.Writer, res *engine.Result, jsonOut bool) error {
	if jsonOut {
		return PrintSummaryJSON(w, res)
	}
	fmt.Fprintln(w)
	PrintSummary(w, res)
	switch {
	case res.TableCount() == 0:
	case res.Analyzed:
		fmt.Fprintln(w, "Every copied table was analyzed: the target has planner statistics.")
	default:
		fmt.Fprintln(w, "Planner statistics are not copied (--skip-analyze): run ANALYZE (or vacuumdb --all --analyze-in-stages) on the target before heavy queries.")
	}
	return nil
}

// PrintSummaryJSON writes the result as one JSON line.
func PrintSummaryJSON(w io.Writer, res *engine.Result) error {
	return json.NewEncoder(w).Encode(struct {
		Event string `json:"event"`
		*engine.Result
	}{"summary", res})
}
