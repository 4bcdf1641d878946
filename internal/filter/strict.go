package filter

import (
	"fmt"
	"sort"
	"strings"

	"github.com/replicatorhq/replicator/internal/problem"
)

// Strict names, as pg_dump's --strict-names: an include pattern that matches
// nothing is an error (a migration that quietly leaves a database or a table
// out is the worst outcome), an exclude pattern that matches nothing a
// warning. The error names the pattern and the existing names closest to it.

// CheckDatabases checks the database patterns against the source's databases.
func (r *Rules) CheckDatabases(all []string) (warnings []string, err error) {
	var missing []string
	for _, p := range r.IncludeDatabases {
		if !matchesAny(all, func(d string) bool { return p.db.MatchString(d) && (d != "postgres" || p.literalDB == "postgres") }) {
			msg := unmatched("--include-databases", p.Text, "database", all)
			if p.db.MatchString("postgres") {
				msg += " (a pattern never selects postgres: name it to copy it)"
			}
			missing = append(missing, msg)
		}
	}
	for _, p := range r.ExcludeDatabases {
		if !matchesAny(all, p.db.MatchString) {
			warnings = append(warnings, unmatched("--exclude-databases", p.Text, "database", all)+": nothing is excluded by it")
		}
	}
	return warnings, problems(missing)
}

// CheckSchemas checks the schema patterns against the schemas of the
// databases the run covers (database name to its schemas): an include
// pattern that matches none is an error, an exclude pattern a warning.
func (r *Rules) CheckSchemas(schemas map[string][]string) (warnings []string, err error) {
	var names []string
	for _, list := range schemas {
		names = append(names, list...)
	}
	sort.Strings(names)
	matches := func(p *Pattern) bool {
		for db, list := range schemas {
			for _, s := range list {
				if p.MatchSchema(db, s) {
					return true
				}
			}
		}
		return false
	}
	var missing []string
	for _, p := range r.IncludeSchemas {
		if !matches(p) {
			missing = append(missing, unmatched("--include-schemas", p.Text, "schema", names))
		}
	}
	for _, p := range r.ExcludeSchemas {
		if !matches(p) {
			warnings = append(warnings, unmatched("--exclude-schemas", p.Text, "schema", names)+": nothing is excluded by it")
		}
	}
	return warnings, problems(missing)
}

// CheckExcluded checks --exclude-indexes or --exclude-extensions (kind
// "index" or "extension") against what the databases hold (database to
// {schema, name} pairs; an extension's schema is ""): a pattern that
// matches nothing is a warning, as pg_dump's exclude patterns.
func (r *Rules) CheckExcluded(kind string, names map[string][][2]string) (warnings []string) {
	patterns, flag := r.ExcludeIndexes, "--exclude-indexes"
	if kind == "extension" {
		patterns, flag = r.ExcludeExtensions, "--exclude-extensions"
	}
	var all []string
	for _, list := range names {
		for _, n := range list {
			all = append(all, strings.TrimPrefix(n[0]+"."+n[1], "."))
		}
	}
	sort.Strings(all)
	for _, p := range patterns {
		found := false
		for db, list := range names {
			for _, n := range list {
				if kind == "extension" {
					found = found || p.MatchSchema(db, n[1])
				} else {
					found = found || p.Match(db, n[0], n[1])
				}
			}
		}
		if !found {
			warnings = append(warnings, unmatched(flag, p.Text, kind, all)+": nothing is excluded by it")
		}
	}
	return warnings
}

// Table is a relation the source has, for CheckTables: a table, a
// partition (RootSchema.RootName is its partitioned table) or a
// materialized view.
type Table struct {
	DB, Schema, Name     string
	RootSchema, RootName string
	Matview              bool
}

// partition reports whether t is a partition of another table.
func (t Table) partition() bool {
	return t.RootName != "" && (t.RootSchema != t.Schema || t.RootName != t.Name)
}

// CheckTables checks the table patterns against the tables of the databases
// the run covers.
func (r *Rules) CheckTables(tables []Table) (warnings []string, err error) {
	var names []string
	for _, t := range tables {
		names = append(names, t.Schema+"."+t.Name)
	}
	matches := func(p *Pattern) bool {
		for _, t := range tables {
			if p.Match(t.DB, t.Schema, t.Name) {
				return true
			}
		}
		return false
	}
	var missing []string
	for _, set := range []struct {
		flag     string
		patterns []*Pattern
	}{{"--include-tables", r.IncludeTables}, {"--schema-only-tables", r.SchemaOnlyTables}, {"--table-filter", r.rowFilterPatterns()}} {
		for _, p := range set.patterns {
			if !matches(p) {
				missing = append(missing, unmatched(set.flag, p.Text, "table", names))
			}
		}
	}
	for _, p := range r.ExcludeTables {
		if !matches(p) {
			warnings = append(warnings, unmatched("--exclude-tables", p.Text, "table", names)+": nothing is excluded by it")
		}
	}
	missing = append(missing, r.partitionsNamed(tables)...)
	for _, f := range r.RowFilters {
		for _, t := range tables {
			if t.Matview && f.Pattern.Match(t.DB, t.Schema, t.Name) {
				missing = append(missing, fmt.Sprintf("--table-filter %q names materialized view %s.%s, whose rows come from its query: filter the tables it reads, or name it in --schema-only-tables to create it WITH NO DATA",
					f.Pattern.Text, t.Schema, t.Name))
				break
			}
		}
	}
	return warnings, problems(missing)
}

// partitionsNamed refuses --include-tables and --exclude-tables patterns that
// name partitions without their partitioned table: a partition follows its
// table into or out of the copy, so such a pattern would do nothing.
func (r *Rules) partitionsNamed(tables []Table) []string {
	var out []string
	for _, set := range []struct {
		flag     string
		patterns []*Pattern
		fix      string
	}{
		{"--exclude-tables", r.ExcludeTables, "to leave their rows out, name them in --schema-only-tables (or --table-filter to keep some); to leave the whole table out, name %s"},
		{"--include-tables", r.IncludeTables, "name %s (its partitions follow it), with --schema-only-tables for the partitions whose rows you do not want"},
	} {
		for _, p := range set.patterns {
			byRoot := map[string][]string{}
			var roots []string
			for _, t := range tables {
				if !t.partition() || !p.Match(t.DB, t.Schema, t.Name) || p.Match(t.DB, t.RootSchema, t.RootName) {
					continue
				}
				root := t.RootSchema + "." + t.RootName
				if byRoot[root] == nil {
					roots = append(roots, root)
				}
				byRoot[root] = append(byRoot[root], t.Schema+"."+t.Name)
			}
			for _, root := range roots {
				parts := byRoot[root]
				list := strings.Join(parts[:min(3, len(parts))], ", ")
				if len(parts) > 3 {
					list += fmt.Sprintf(" and %d more", len(parts)-3)
				}
				out = append(out, fmt.Sprintf("%s %q names partitions of %s (%s) but not the table, which they follow: %s",
					set.flag, p.Text, root, list, fmt.Sprintf(set.fix, root)))
			}
		}
	}
	return out
}

func (r *Rules) rowFilterPatterns() []*Pattern {
	var out []*Pattern
	for _, f := range r.RowFilters {
		out = append(out, f.Pattern)
	}
	return out
}

func matchesAny(names []string, match func(string) bool) bool {
	for _, n := range names {
		if match(n) {
			return true
		}
	}
	return false
}

func problems(missing []string) error {
	if len(missing) == 0 {
		return nil
	}
	return &problem.Problem{Msg: strings.Join(missing, "; "), Fix: "nothing was changed"}
}

// unmatched says that pattern matches no name of kind, with the closest names.
func unmatched(flag, pattern, kind string, names []string) string {
	msg := fmt.Sprintf("%s %q matches no %s", flag, pattern, kind)
	close := closest(pattern, names)
	if len(close) == 0 {
		return msg
	}
	// What to write for a name: quoted where needed, after the pattern's
	// own qualifiers (a database before schema.table).
	bare := strings.ReplaceAll(pattern, `"`, "")
	write := func(name string) string {
		extra := strings.Count(bare, ".") - strings.Count(name, ".")
		if extra <= 0 {
			return quoteName(name)
		}
		parts := strings.SplitN(bare, ".", extra+1)
		return strings.Join(parts[:extra], ".") + "." + quoteName(name)
	}
	// The usual mistake: a mixed-case name written without quotes, which
	// folds to lower case as in SQL.
	for _, c := range close {
		if strings.EqualFold(c, bare) || strings.HasSuffix(strings.ToLower(bare), "."+strings.ToLower(c)) {
			return fmt.Sprintf("%s: unquoted names are folded to lower case; to match %q, quote it: %s '%s'", msg, c, flag, write(c))
		}
	}
	var quoted []string
	for _, c := range close {
		quoted = append(quoted, fmt.Sprintf("%q", c))
	}
	msg += ": did you mean " + strings.Join(quoted, " or ") + "?"
	if q := quoteName(close[0]); q != close[0] {
		msg += fmt.Sprintf(" (quote mixed-case names: %s '%s')", flag, write(close[0]))
	}
	return msg
}

// quoteName writes a name (or schema.name) as a pattern that matches exactly
// it: parts with upper case, spaces or wildcards are double-quoted.
func quoteName(name string) string {
	parts := strings.Split(name, ".")
	for i, p := range parts {
		if p != strings.ToLower(p) || strings.ContainsAny(p, ` *?"`) {
			parts[i] = `"` + strings.ReplaceAll(p, `"`, `""`) + `"`
		}
	}
	return strings.Join(parts, ".")
}

// closest are the names a pattern was probably meant to match: the same
// name but for case or quotes, or within a small edit distance. A pattern and
// a name are compared on the parts both have (table, or schema.table).
func closest(pattern string, names []string) []string {
	pp := strings.Split(strings.ToLower(strings.ReplaceAll(pattern, `"`, "")), ".")
	type scored struct {
		name string
		d    int
	}
	var best []scored
	for _, n := range names {
		np := strings.Split(strings.ToLower(n), ".")
		k := min(len(pp), len(np))
		a, b := strings.Join(pp[len(pp)-k:], "."), strings.Join(np[len(np)-k:], ".")
		if d := distance(a, b); d <= max(2, len(a)/4) {
			best = append(best, scored{n, d})
		}
	}
	sort.SliceStable(best, func(i, j int) bool {
		return best[i].d < best[j].d || best[i].d == best[j].d && best[i].name < best[j].name
	})
	var out []string
	for i, b := range best {
		if i == 3 {
			break
		}
		out = append(out, b.name)
	}
	return out
}

// distance is the Levenshtein distance of a and b.
func distance(a, b string) int {
	prev := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur := make([]int, len(b)+1)
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev = cur
	}
	return prev[len(b)]
}
