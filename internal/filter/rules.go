package filter

import (
	"fmt"
	"slices"
	"strings"
)

// Rules are the filters of one run.
type Rules struct {
	IncludeDatabases []*Pattern // db part only
	ExcludeDatabases []*Pattern
	IncludeTables    []*Pattern
	ExcludeTables    []*Pattern
	SchemaOnlyTables []*Pattern
	RowFilters       []RowFilter
	// IncludeSchemas and ExcludeSchemas match db.schema (the table part of
	// the pattern is unused).
	IncludeSchemas []*Pattern
	ExcludeSchemas []*Pattern
	// ExcludeIndexes match db.schema.index; ExcludeExtensions db.extension
	// (the table part of the pattern is unused).
	ExcludeIndexes    []*Pattern
	ExcludeExtensions []*Pattern
}

// IndexExcluded reports whether index schema.name of database db is left out.
func (r *Rules) IndexExcluded(db, schema, name string) bool {
	for _, p := range r.ExcludeIndexes {
		if p.Match(db, schema, name) {
			return true
		}
	}
	return false
}

// ExtensionExcluded reports whether extension name of database db is left
// out (not created on the target, its configuration tables not copied).
func (r *Rules) ExtensionExcluded(db, name string) bool {
	for _, p := range r.ExcludeExtensions {
		if p.MatchSchema(db, name) {
			return true
		}
	}
	return false
}

// LeavesOutTables reports whether any rule can leave a table out of the
// schema (include or exclude patterns, of tables or schemas): without one,
// every table is in.
func (r *Rules) LeavesOutTables() bool {
	return len(r.IncludeTables) > 0 || len(r.ExcludeTables) > 0 || r.FiltersSchemas()
}

// FiltersSchemas reports whether schema patterns are given.
func (r *Rules) FiltersSchemas() bool {
	return len(r.IncludeSchemas) > 0 || len(r.ExcludeSchemas) > 0
}

// Schema reports whether schema of database db is part of the run, as
// pg_dump's --schema and --exclude-schema decide: excluded when an exclude
// pattern matches, and when include patterns are given and none does.
func (r *Rules) Schema(db, schema string) bool {
	for _, p := range r.ExcludeSchemas {
		if p.MatchSchema(db, schema) {
			return false
		}
	}
	if len(r.IncludeSchemas) == 0 {
		return true
	}
	for _, p := range r.IncludeSchemas {
		if p.MatchSchema(db, schema) {
			return true
		}
	}
	return false
}

// Spec is the textual form of Rules, as flags and job records carry it.
type Spec struct {
	IncludeDatabases []string `json:"include_databases,omitempty"`
	ExcludeDatabases []string `json:"exclude_databases,omitempty"`
	IncludeTables    []string `json:"include_tables,omitempty"`
	ExcludeTables    []string `json:"exclude_tables,omitempty"`
	SchemaOnlyTables []string `json:"schema_only_tables,omitempty"`
	TableFilters     []string `json:"table_filters,omitempty"`
	IncludeSchemas   []string `json:"include_schemas,omitempty"`
	ExcludeSchemas   []string `json:"exclude_schemas,omitempty"`
	// Copy only (init): what a copy leaves out of the schema.
	ExcludeIndexes    []string `json:"exclude_indexes,omitempty"`
	ExcludeExtensions []string `json:"exclude_extensions,omitempty"`
}

// Compile checks every pattern; the first bad one is the error.
func (s Spec) Compile() (*Rules, error) {
	r := &Rules{}
	dbs := func(list []string, flag string) ([]*Pattern, error) {
		var out []*Pattern
		for _, d := range list {
			re, lit, err := compile(d)
			if err != nil || strings.Contains(d, ".") && !strings.HasPrefix(d, `"`) {
				return nil, fmt.Errorf("%s %q: expected a database name or glob", flag, d)
			}
			p := &Pattern{Text: d, db: re}
			if lit != nil {
				p.literalDB = *lit
			}
			out = append(out, p)
		}
		return out, nil
	}
	tables := func(list []string) ([]*Pattern, error) {
		var out []*Pattern
		for _, t := range list {
			p, err := ParsePattern(t)
			if err != nil {
				return nil, err
			}
			out = append(out, p)
		}
		return out, nil
	}
	var err error
	if r.IncludeDatabases, err = dbs(s.IncludeDatabases, "--include-databases"); err != nil {
		return nil, err
	}
	if r.ExcludeDatabases, err = dbs(s.ExcludeDatabases, "--exclude-databases"); err != nil {
		return nil, err
	}
	if r.IncludeTables, err = tables(s.IncludeTables); err != nil {
		return nil, err
	}
	if r.ExcludeTables, err = tables(s.ExcludeTables); err != nil {
		return nil, err
	}
	if r.SchemaOnlyTables, err = tables(s.SchemaOnlyTables); err != nil {
		return nil, err
	}
	schemas := func(list []string, flag string) ([]*Pattern, error) {
		kind := "schema"
		if flag == "--exclude-extensions" {
			kind = "extension"
		}
		var out []*Pattern
		for _, t := range list {
			parts, err := splitDots(t)
			if err != nil || len(parts) > 2 {
				return nil, fmt.Errorf("%s %q: expected db.%s or %s (quote names that contain dots)", flag, t, kind, kind)
			}
			// A schema pattern is a table pattern whose table part matches
			// anything: db.schema.*
			p, err := ParsePattern(t + ".*")
			if err != nil {
				return nil, fmt.Errorf("%s %q: %w", flag, t, err)
			}
			p.Text = t
			out = append(out, p)
		}
		return out, nil
	}
	if r.ExcludeIndexes, err = tables(s.ExcludeIndexes); err != nil {
		return nil, fmt.Errorf("--exclude-indexes: %w", err)
	}
	if r.ExcludeExtensions, err = schemas(s.ExcludeExtensions, "--exclude-extensions"); err != nil {
		return nil, err
	}
	if r.IncludeSchemas, err = schemas(s.IncludeSchemas, "--include-schemas"); err != nil {
		return nil, err
	}
	if r.ExcludeSchemas, err = schemas(s.ExcludeSchemas, "--exclude-schemas"); err != nil {
		return nil, err
	}
	for _, f := range s.TableFilters {
		rf, err := ParseRowFilter(f)
		if err != nil {
			return nil, err
		}
		r.RowFilters = append(r.RowFilters, rf)
	}
	return r, nil
}

// Database reports whether database name is part of the run. Every database
// except "postgres" is, unless filters say otherwise; "postgres" (which every
// target already has) only when --include-databases names it literally.
func (r *Rules) Database(name string) bool {
	for _, p := range r.ExcludeDatabases {
		if p.db.MatchString(name) {
			return false
		}
	}
	if len(r.IncludeDatabases) > 0 {
		for _, p := range r.IncludeDatabases {
			if name == "postgres" && p.literalDB != "postgres" {
				continue
			}
			if p.db.MatchString(name) {
				return true
			}
		}
		return false
	}
	if name == "postgres" {
		return false
	}
	for _, set := range [][]*Pattern{r.IncludeTables, r.IncludeSchemas} {
		if len(set) == 0 {
			continue
		}
		// --include-tables and --include-schemas narrow the run to the
		// databases their patterns can reach.
		for _, p := range set {
			if p.MatchDB(name) {
				return true
			}
		}
		return false
	}
	return true
}

// Decision is what happens to one table.
type Decision struct {
	Copy       bool   // schema and (unless SchemaOnly) data
	SchemaOnly bool   // schema without rows
	Predicate  string // copy only rows matching (SQL), "" for all
}

// Relation decides about db.schema.name, a partition of the partitioned
// table rootSchema.rootName (or that table itself, or a table that is no
// partition when the root is its own name). A partition follows its root
// into or out of the copy; --schema-only-tables that names it leaves its
// rows out, and a --table-filter that names it narrows them.
func (r *Rules) Relation(db, schema, name, rootSchema, rootName string) Decision {
	d := r.Table(db, rootSchema, rootName)
	if !d.Copy || schema == rootSchema && name == rootName {
		return d
	}
	for _, p := range r.SchemaOnlyTables {
		if p.Match(db, schema, name) {
			d.SchemaOnly = true
		}
	}
	var preds []string
	if d.Predicate != "" {
		preds = append(preds, d.Predicate)
	}
	for _, f := range r.RowFilters {
		if f.Pattern.Match(db, schema, name) && !f.Pattern.Match(db, rootSchema, rootName) {
			preds = append(preds, "("+f.Predicate+")")
		}
	}
	d.Predicate = strings.Join(preds, " AND ")
	return d
}

// Table decides about db.schema.table, a table that is no partition, a
// partitioned table (and so its partitions: see Relation) or a
// materialized view.
func (r *Rules) Table(db, schema, table string) Decision {
	if !r.Schema(db, schema) {
		return Decision{}
	}
	if len(r.IncludeTables) > 0 {
		// --schema-only-tables names tables to create (without rows):
		// they are in the copy whether --include-tables names them or not.
		in := false
		for _, p := range slices.Concat(r.IncludeTables, r.SchemaOnlyTables) {
			if p.Match(db, schema, table) {
				in = true
				break
			}
		}
		if !in {
			return Decision{}
		}
	}
	for _, p := range r.ExcludeTables {
		if p.Match(db, schema, table) {
			return Decision{}
		}
	}
	d := Decision{Copy: true}
	for _, p := range r.SchemaOnlyTables {
		if p.Match(db, schema, table) {
			d.SchemaOnly = true
		}
	}
	var preds []string
	for _, f := range r.RowFilters {
		if f.Pattern.Match(db, schema, table) {
			preds = append(preds, "("+f.Predicate+")")
		}
	}
	d.Predicate = strings.Join(preds, " AND ")
	return d
}
