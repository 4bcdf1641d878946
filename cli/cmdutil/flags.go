// Package cmdutil holds what several commands share: connection and filter flags,
// list parsing, and the error kinds main turns into exit codes.
package cmdutil

import (
	"fmt"
	"os"
	"strconv"
	"strings"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
)

// Endpoints are the --source and --target flags.
type Endpoints struct {
	Source, Target string
	PGBin          string
}

// AddEndpointFlags registers --source, --target and --pg-bin. URLs may also come
// from REPLICATOR_SOURCE / REPLICATOR_TARGET, which keeps passwords out of the
// process list.
func AddEndpointFlags(cmd *cobra.Command, e *Endpoints) {
	cmd.Flags().StringVar(&e.Source, "source", "", "source connection URL, e.g. postgres://user@host:5432/postgres (or $REPLICATOR_SOURCE)")
	cmd.Flags().StringVar(&e.Target, "target", "", "target connection URL (or $REPLICATOR_TARGET)")
	cmd.Flags().StringVar(&e.PGBin, "pg-bin", "", "directory holding pg_dump, pg_restore and pg_dumpall (default: newest found on PATH or in the usual places)")
}

// Raw returns the URLs as given (flags or environment), for a remote job's
// secret.
func (e *Endpoints) Raw() (source, target string) {
	source, target = e.Source, e.Target
	if source == "" {
		source = os.Getenv("REPLICATOR_SOURCE")
	}
	if target == "" {
		target = os.Getenv("REPLICATOR_TARGET")
	}
	return source, target
}

// Parse reads both URLs.
func (e *Endpoints) Parse() (src, dst *conninfo.Endpoint, err error) {
	s, t := e.Raw()
	if s == "" {
		return nil, nil, FlagErrorf("--source is required (a URL such as postgres://user@host:5432/postgres, or set REPLICATOR_SOURCE)")
	}
	if t == "" {
		return nil, nil, FlagErrorf("--target is required (a URL such as postgres://user@host:5432/postgres, or set REPLICATOR_TARGET)")
	}
	if src, err = conninfo.Parse("source", s); err != nil {
		return nil, nil, err
	}
	if dst, err = conninfo.Parse("target", t); err != nil {
		return nil, nil, err
	}
	return src, dst, nil
}

// Filters are the database and table filter flags.
type Filters struct {
	IncludeDatabases, ExcludeDatabases []string
	IncludeTables, ExcludeTables       []string
	SchemaOnlyTables, TableFilters     []string
	IncludeSchemas, ExcludeSchemas     []string
	// A copy's only (AddCopyFilterFlags).
	ExcludeIndexes, ExcludeExtensions []string
}

// AddFilterFlags registers the filter flags. Lists are comma-separated or
// repeated; commas inside "double quotes" belong to the name.
func AddFilterFlags(cmd *cobra.Command, f *Filters) {
	AddDatabaseFilterFlags(cmd, f)
	fl := cmd.Flags()
	fl.StringArrayVar(&f.IncludeTables, "include-tables", nil, "copy only these tables: db.schema.table, schema.table or table; pg_dump patterns (* ? [0-9] (a|b)); \"Quoted\" names are literal")
	fl.StringArrayVar(&f.ExcludeTables, "exclude-tables", nil, "leave these tables out (schema and data), same patterns")
	fl.StringArrayVar(&f.SchemaOnlyTables, "schema-only-tables", nil, "copy these tables' definitions but not their rows")
	fl.StringArrayVar(&f.TableFilters, "table-filter", nil, "copy only matching rows: 'db.schema.table:SQL predicate' (repeatable)")
	fl.StringArrayVar(&f.IncludeSchemas, "include-schemas", nil, "copy only these schemas (pg_dump -n): db.schema or schema, same patterns")
	fl.StringArrayVar(&f.ExcludeSchemas, "exclude-schemas", nil, "leave these schemas out, with everything in them (pg_dump -N)")
}

// AddDatabaseFilterFlags registers the filters that pick databases, alone
// for a command that reads whole databases (status): a table filter it
// would not apply is an unknown flag there, not one silently ignored.
func AddDatabaseFilterFlags(cmd *cobra.Command, f *Filters) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.IncludeDatabases, "include-databases", nil, "copy only these databases (names or globs, comma-separated or repeated; postgres only when named)")
	fl.StringArrayVar(&f.ExcludeDatabases, "exclude-databases", nil, "skip these databases")
}

// AddCopyFilterFlags registers the filters that only a copy has: what it
// leaves out of the schema (sync and verify read rows, not these).
func AddCopyFilterFlags(cmd *cobra.Command, f *Filters) {
	fl := cmd.Flags()
	fl.StringArrayVar(&f.ExcludeIndexes, "exclude-indexes", nil, "do not create these indexes: db.schema.index, schema.index or index, same patterns (not one that backs a constraint)")
	fl.StringArrayVar(&f.ExcludeExtensions, "exclude-extensions", nil, "do not create these extensions (nor copy their configuration tables): db.extension or extension")
}

// Spec converts the flags into a filter spec.
func (f *Filters) Spec() filter.Spec {
	return filter.Spec{
		IncludeDatabases:  SplitList(f.IncludeDatabases),
		ExcludeDatabases:  SplitList(f.ExcludeDatabases),
		IncludeTables:     SplitList(f.IncludeTables),
		ExcludeTables:     SplitList(f.ExcludeTables),
		SchemaOnlyTables:  SplitList(f.SchemaOnlyTables),
		TableFilters:      f.TableFilters, // predicates contain commas: one per flag
		IncludeSchemas:    SplitList(f.IncludeSchemas),
		ExcludeSchemas:    SplitList(f.ExcludeSchemas),
		ExcludeIndexes:    SplitList(f.ExcludeIndexes),
		ExcludeExtensions: SplitList(f.ExcludeExtensions),
	}
}

// SplitList splits each value on commas outside double quotes.
func SplitList(values []string) []string {
	var out []string
	for _, v := range values {
		inQuote := false
		start := 0
		for i := 0; i <= len(v); i++ {
			if i < len(v) && v[i] == '"' {
				inQuote = !inQuote
			}
			if i == len(v) || v[i] == ',' && !inQuote {
				if item := strings.TrimSpace(v[start:i]); item != "" {
					out = append(out, item)
				}
				start = i + 1
			}
		}
	}
	return out
}

// FlagError is a usage mistake: main prints it with a hint to --help.
type FlagError struct{ msg string }

func (e *FlagError) Error() string { return e.msg }

// FlagErrorf makes a FlagError.
func FlagErrorf(format string, args ...any) error {
	return &FlagError{msg: fmt.Sprintf(format, args...)}
}

// ParseInputs reads what every data command starts from: both endpoints and
// the filters (a bad filter is a usage error).
func ParseInputs(e *Endpoints, f *Filters) (src, dst *conninfo.Endpoint, rules *filter.Rules, err error) {
	if src, dst, err = e.Parse(); err != nil {
		return nil, nil, nil, err
	}
	if rules, err = f.Spec().Compile(); err != nil {
		return nil, nil, nil, FlagErrorf("%v", err)
	}
	return src, dst, rules, nil
}

// ParseSourceFromTarget reads --source-from-target ("" for none), which
// sync, init --sync and cutover share.
func ParseSourceFromTarget(raw string) (*conninfo.Endpoint, error) {
	if raw == "" {
		return nil, nil
	}
	// The target server reads this connection string: files it names are
	// the target's, not this machine's.
	return conninfo.ParseOpaque("source (from the target)", raw)
}

// AddReplicationFlags registers the flags sync and init --sync share.
func AddReplicationFlags(cmd *cobra.Command, sourceFromTarget *string, fixIdentity *bool, replicateDDL *string) {
	cmd.Flags().StringVar(sourceFromTarget, "source-from-target", "", "source URL as the target server reaches it, when it differs from --source (the subscription connects from the target)")
	cmd.Flags().BoolVar(fixIdentity, "replica-identity-full", false, "set REPLICA IDENTITY FULL on source tables that have no primary key, instead of refusing")
	f := cmd.Flags().VarPF(&ddlFlag{mode: replicateDDL}, "replicate-ddl", "", "replicate schema changes made on the source (default: on where the source role may create event triggers; =false turns it off)")
	f.NoOptDefVal = "true"
}

// ddlFlag is --replicate-ddl: a boolean that remembers whether it was given.
type ddlFlag struct{ mode *string }

func (f *ddlFlag) String() string {
	if f.mode == nil || *f.mode == "" {
		return "auto"
	}
	return *f.mode
}

func (f *ddlFlag) Set(v string) error {
	b, err := strconv.ParseBool(v)
	if err != nil {
		return fmt.Errorf("want true or false")
	}
	*f.mode = map[bool]string{true: "on", false: "off"}[b]
	return nil
}

func (f *ddlFlag) Type() string { return "bool" }
