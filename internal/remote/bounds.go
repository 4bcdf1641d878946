package remote

import (
	"encoding/json"
	"fmt"
)

// Every list and string of a submission is bounded, and every duration: a
// caller with valid credentials must not be able to make a job's record
// outgrow DynamoDB's 400 KB item (its final write then failed, and the job
// ended as "stopped heart-beating"), an event outgrow EventBridge's bound,
// or a number overflow into a negative threshold.
const (
	// MaxFilterEntries bounds each filter list (databases, tables,
	// schemas, predicates...).
	MaxFilterEntries = 200
	// MaxPatternBytes bounds one pattern (three quoted 63-byte names fit
	// well within it); MaxPredicateBytes one --table-filter.
	MaxPatternBytes   = 512
	MaxPredicateBytes = 4096
	// MaxFiltersBytes bounds all the filters together, as JSON.
	MaxFiltersBytes = 32 << 10
	// MaxURLBytes bounds each connection string (the secret's own bound,
	// MaxSecretBytes, covers them with their certificates).
	MaxURLBytes = 8 << 10
	// MaxOptionBytes bounds the options' strings (an instance type, a
	// memory size).
	MaxOptionBytes = 32
	// MaxLagAlertSeconds: a week (the longest time limit).
	MaxLagAlertSeconds = MaxTimeLimitMinutes * 60
	// MaxBytes bounds sizes in bytes (1 PiB).
	MaxBytes = 1 << 50
	// MaxTextBytes bounds a job's error and message, in its record and in
	// its events.
	MaxTextBytes = 4 << 10
)

// validateBounds reports each field over its bound.
func (r *Request) validateBounds(fe FieldErrors) {
	if len(r.Command) > MaxOptionBytes {
		fe.add("command", fmt.Sprintf("%d bytes: init or sync", len(r.Command)))
	}
	for field, s := range map[string]string{"source": r.Source, "target": r.Target, "source_from_target": r.SourceForTarget} {
		if len(s) > MaxURLBytes {
			fe.add(field, fmt.Sprintf("%d bytes, over the %d a connection string may have", len(s), MaxURLBytes))
		}
	}
	f := r.Filters
	for field, list := range map[string][]string{"include_databases": f.IncludeDatabases, "exclude_databases": f.ExcludeDatabases,
		"include_tables": f.IncludeTables, "exclude_tables": f.ExcludeTables, "schema_only_tables": f.SchemaOnlyTables,
		"table_filters": f.TableFilters, "include_schemas": f.IncludeSchemas, "exclude_schemas": f.ExcludeSchemas,
		"exclude_indexes": f.ExcludeIndexes, "exclude_extensions": f.ExcludeExtensions} {
		if len(list) > MaxFilterEntries {
			fe.add("filters."+field, fmt.Sprintf("%d entries, over the %d a list may have: use patterns (app.public.log_*)", len(list), MaxFilterEntries))
			continue
		}
		limit := MaxPatternBytes
		if field == "table_filters" {
			limit = MaxPredicateBytes
		}
		for i, s := range list {
			if len(s) > limit {
				fe.add("filters."+field, fmt.Sprintf("entry %d has %d bytes, over %d", i+1, len(s), limit))
				break
			}
		}
	}
	if b, _ := json.Marshal(f); len(b) > MaxFiltersBytes {
		fe.add("filters", fmt.Sprintf("%d bytes, over the %d the filters may take together: use patterns", len(b), MaxFiltersBytes))
	}
	o := r.Options
	for field, s := range map[string]string{"options.instance_type": o.InstanceType, "options.maintenance_work_mem": o.MaintenanceWorkMem} {
		if len(s) > MaxOptionBytes {
			fe.add(field, fmt.Sprintf("%d bytes, over %d", len(s), MaxOptionBytes))
		}
	}
	if o.LagAlertSeconds > MaxLagAlertSeconds {
		fe.add("options.lag_alert_seconds", fmt.Sprintf("at most %d (a week)", MaxLagAlertSeconds))
	}
	if o.SourceBytes > MaxBytes {
		fe.add("options.source_bytes", fmt.Sprintf("at most %d (1 PiB)", int64(MaxBytes)))
	}
	if o.SplitLargerThan > MaxBytes {
		fe.add("options.split_tables_larger_than", fmt.Sprintf("at most %d (1 PiB)", int64(MaxBytes)))
	}
}
