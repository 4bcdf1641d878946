package remote

import (
	"fmt"
	"strings"
	"testing"
)

// Issue 22, 7: every bounded field of a submission, at its limit (taken)
// and one past it (refused, naming the field).
func TestEveryFieldAtItsBound(t *testing.T) {
	base := func() Request {
		return Request{Command: "sync", Source: "postgres://u:p@203.0.113.9/a", Target: "postgres://u:p@203.0.113.10/b",
			Options: Options{Monitor: true}}
	}
	names := func(n, size int) []string {
		out := make([]string, n)
		for i := range out {
			out[i] = fmt.Sprintf("%0*d", size, i)
		}
		return out
	}
	url := func(n int) string {
		u := "postgres://u:p@203.0.113.9/a?application_name="
		return u + strings.Repeat("a", n-len(u))
	}
	for _, tc := range []struct {
		field    string
		at, over func(*Request)
	}{
		{"source", func(r *Request) { r.Source = url(MaxURLBytes) }, func(r *Request) { r.Source = url(MaxURLBytes + 1) }},
		{"target", func(r *Request) { r.Target = url(MaxURLBytes) }, func(r *Request) { r.Target = url(MaxURLBytes + 1) }},
		{"source_from_target", func(r *Request) { r.SourceForTarget = url(MaxURLBytes) }, func(r *Request) { r.SourceForTarget = url(MaxURLBytes + 1) }},
		{"command", func(r *Request) {}, func(r *Request) { r.Command = strings.Repeat("x", 100000) }},
		{"options.instance_type", func(r *Request) {}, func(r *Request) { r.Options.InstanceType = strings.Repeat("c", MaxOptionBytes+1) }},
		{"filters.include_databases", func(r *Request) { r.Filters.IncludeDatabases = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.IncludeDatabases = names(MaxFilterEntries+1, 8) }},
		{"filters.exclude_databases", func(r *Request) { r.Filters.ExcludeDatabases = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.ExcludeDatabases = names(MaxFilterEntries+1, 8) }},
		{"filters.include_tables", func(r *Request) { r.Filters.IncludeTables = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.IncludeTables = names(MaxFilterEntries+1, 8) }},
		{"filters.schema_only_tables", func(r *Request) { r.Filters.SchemaOnlyTables = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.SchemaOnlyTables = names(MaxFilterEntries+1, 8) }},
		{"filters.include_schemas", func(r *Request) { r.Filters.IncludeSchemas = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.IncludeSchemas = names(MaxFilterEntries+1, 8) }},
		{"filters.exclude_schemas", func(r *Request) { r.Filters.ExcludeSchemas = names(MaxFilterEntries, 8) },
			func(r *Request) { r.Filters.ExcludeSchemas = names(MaxFilterEntries+1, 8) }},
		{"filters.table_filters", func(r *Request) {
			r.Filters.TableFilters = make([]string, MaxFilterEntries)
			for i := range r.Filters.TableFilters {
				r.Filters.TableFilters[i] = fmt.Sprintf("t%d:id > 0", i)
			}
		}, func(r *Request) { r.Filters.TableFilters = names(MaxFilterEntries+1, 8) }},
		{"filters.exclude_indexes", func(r *Request) {
			r.Command, r.Options.Monitor, r.Filters.ExcludeIndexes = "init", false, names(MaxFilterEntries, 8)
		},
			func(r *Request) {
				r.Command, r.Options.Monitor, r.Filters.ExcludeIndexes = "init", false, names(MaxFilterEntries+1, 8)
			}},
		{"filters.exclude_extensions", func(r *Request) {
			r.Command, r.Options.Monitor, r.Filters.ExcludeExtensions = "init", false, names(MaxFilterEntries, 8)
		},
			func(r *Request) {
				r.Command, r.Options.Monitor, r.Filters.ExcludeExtensions = "init", false, names(MaxFilterEntries+1, 8)
			}},
		{"filters.include_tables", func(r *Request) { r.Filters.IncludeTables = names(1, MaxPatternBytes) },
			func(r *Request) { r.Filters.IncludeTables = names(1, MaxPatternBytes+1) }},
		{"filters.exclude_tables", func(r *Request) { r.Filters.ExcludeTables = names(1, MaxPatternBytes) },
			func(r *Request) { r.Filters.ExcludeTables = names(1, MaxPatternBytes+1) }},
		{"filters.table_filters", func(r *Request) { r.Filters.TableFilters = []string{"t:" + strings.Repeat("1", MaxPredicateBytes-2)} },
			func(r *Request) { r.Filters.TableFilters = []string{"t:" + strings.Repeat("1", MaxPredicateBytes-1)} }},
		{"filters", func(r *Request) {
			r.Filters.IncludeTables, r.Filters.ExcludeTables = names(MaxFilterEntries, 70), names(MaxFilterEntries, 70)
		}, func(r *Request) {
			r.Filters.IncludeTables, r.Filters.ExcludeTables, r.Filters.SchemaOnlyTables = names(MaxFilterEntries, 70), names(MaxFilterEntries, 70), names(MaxFilterEntries, 70)
		}},
		{"options.lag_alert_seconds", func(r *Request) { r.Options.LagAlertSeconds = MaxLagAlertSeconds },
			func(r *Request) { r.Options.LagAlertSeconds = 9.3e9 }},
		{"options.maintenance_work_mem", func(r *Request) {
			r.Command, r.Options = "init", Options{MaintenanceWorkMem: strings.Repeat("1", MaxOptionBytes)}
		},
			func(r *Request) {
				r.Command, r.Options = "init", Options{MaintenanceWorkMem: strings.Repeat("1", MaxOptionBytes+1)}
			}},
		{"options.source_bytes", func(r *Request) { r.Options.SourceBytes = MaxBytes }, func(r *Request) { r.Options.SourceBytes = MaxBytes + 1 }},
		{"options.split_tables_larger_than", func(r *Request) { r.Command, r.Options = "init", Options{SplitLargerThan: MaxBytes} },
			func(r *Request) { r.Command, r.Options = "init", Options{SplitLargerThan: MaxBytes + 1} }},
	} {
		r := base()
		tc.at(&r)
		if _, _, err := r.Validate(DefaultLimits()); err != nil {
			t.Errorf("%s at its bound: %v", tc.field, err)
		}
		r = base()
		tc.over(&r)
		_, _, err := r.Validate(DefaultLimits())
		fe, _ := err.(FieldErrors)
		if fe[tc.field] == "" {
			t.Errorf("%s one past its bound: %v", tc.field, err)
		}
	}
	// The threshold a monitor computes stays positive at the bound.
	if (Options{LagAlertSeconds: MaxLagAlertSeconds}).LagAlert() <= 0 {
		t.Error("the largest lag threshold overflowed")
	}
}
