package validate

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
)

// databases checks, in each selected source database, that every selected table
// is readable and every extension exists on the target, and sums the size.
func (c *checker) databases(ctx context.Context, si *catalog.Server, dst *pgx.Conn) (selected []string) {
	available := map[string]bool{}
	if dst != nil {
		rows, err := dst.Query(ctx, "SELECT name FROM pg_catalog.pg_available_extensions")
		if err == nil {
			names, _ := pgx.CollectRows(rows, pgx.RowTo[string])
			for _, n := range names {
				available[n] = true
			}
		}
	}
	f := &sourceFindings{schemas: map[string][]string{}}
	c.strict(c.opts.Filters.CheckDatabases(si.Databases))
	for _, db := range si.Databases {
		if c.opts.Filters.Database(db) {
			selected = append(selected, db)
			c.sourceDatabase(ctx, db, dst != nil, available, f)
		}
	}
	c.strict(c.opts.Filters.CheckTables(f.seen))
	if c.opts.Filters.FiltersSchemas() {
		c.strict(c.opts.Filters.CheckSchemas(f.schemas))
	}
	if len(f.badIndexes) > 0 {
		c.add(FiltersCheck, Fail, "--exclude-indexes names "+listSome(f.badIndexes, 10)+": leaving it out would drop more than an index", catalog.IndexRefusalFix)
	}
	if len(f.blocking) > 0 {
		c.add(FiltersCheck, Fail, "the filters leave out tables that kept objects need: "+listSome(f.blocking, 10),
			"keep those tables' structure without their rows (--schema-only-tables instead of --exclude-tables), or leave out what needs them too")
	}
	if len(f.dependents) > 0 {
		c.add(DependentsCheck, Warn, fmt.Sprintf("%d kept object(s) need tables the filters leave out, and are left out with them: %s", len(f.dependents), listSome(f.dependents, 10)),
			"to keep them, keep those tables' structure without their rows (--schema-only-tables instead of --exclude-tables); to drop this warning, leave them out yourself")
	}
	if len(selected) == 0 {
		c.add("databases", Fail, "no database to copy: the source has only "+strings.Join(si.Databases, ", "),
			"every database except postgres is copied by default; name postgres in --include-databases to copy it")
		return nil
	}
	c.add("databases", OK, fmt.Sprintf("%d database(s) selected: %s", len(selected), listSome(selected, 5)), "")
	if len(f.unreadable) > 0 {
		c.add("source privileges", Fail, fmt.Sprintf("source role %s cannot read %d table(s): %s", si.User, len(f.unreadable), listSome(f.unreadable, 5)),
			"GRANT USAGE ON SCHEMA ... and GRANT SELECT ON ALL TABLES IN SCHEMA ... TO "+pgx.Identifier{si.User}.Sanitize()+", or exclude them")
	} else {
		c.add("source privileges", OK, "every selected table is readable", "")
	}
	if len(f.rls) > 0 {
		c.add("row-level security", Fail, fmt.Sprintf("row-level security would hide rows of %d table(s) from %s: %s", len(f.rls), si.User, listSome(f.rls, 5)),
			"copy as the tables' owner, a superuser, or a role with BYPASSRLS")
	}
	if dst != nil {
		if len(f.neededExt) > 0 {
			c.add("extensions", Fail, "--exclude-extensions leaves out extensions that kept objects need: "+strings.Join(f.neededExt, "; "),
				"install the extension in the target database first (it is then used as it is), or leave out what uses it too")
		}
		if len(f.missingExt) > 0 {
			c.add("extensions", Fail, fmt.Sprintf("not available on the target: %s", listSome(f.missingExt, 5)),
				"install them on the target server (on managed services, check the provider's supported extensions), or leave them out with --exclude-extensions DB.NAME")
		} else if len(f.neededExt) == 0 {
			c.add("extensions", OK, "every source extension is available on the target", "")
		}
	}
	return selected
}

// sourceFindings are what the source databases' checks found.
type sourceFindings struct {
	unreadable, missingExt, neededExt, rls, blocking, badIndexes []string
	// dependents: kept views, keys, policies, triggers and rules on a
	// table the filters leave out; the copy leaves them out with it.
	dependents []string
	schemas    map[string][]string
	seen       []filter.Table
}

// sourceDatabase reads one selected source database: its tables and what the
// filters do to them, who may read them, and (toTarget) its extensions
// against the target's available ones.
func (c *checker) sourceDatabase(ctx context.Context, db string, toTarget bool, available map[string]bool, f *sourceFindings) {
	ep, err := c.opts.Source.WithDatabase(db)
	if err != nil {
		c.add("source database "+db, Fail, err.Error(), "")
		return
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		c.add("source database "+db, Fail, err.Error(), "grant CONNECT on the database, or exclude it with --exclude-databases")
		return
	}
	defer conn.Close(ctx)
	err = catalog.Untimed(ctx, conn)
	var tables []*catalog.Table
	if err == nil {
		tables, err = catalog.Tables(ctx, conn)
	}
	var names []filter.Table
	if err == nil {
		names, _, err = catalog.FilterNames(ctx, conn, db, tables)
	}
	if err != nil {
		c.add("source database "+db, Fail, err.Error(), "")
		return
	}
	f.seen = append(f.seen, names...)
	if c.opts.Filters.FiltersSchemas() {
		if list, err := catalog.Schemas(ctx, conn); err == nil {
			f.schemas[db] = list
		}
	}
	var oids, left []uint32
	for _, t := range tables {
		d := c.opts.Filters.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name)
		if !d.Copy {
			left = append(left, t.OID)
		}
		if !d.Copy || t.Kind != 'r' {
			continue
		}
		c.rep.Tables++
		c.rep.SourceBytes += t.Bytes
		if !d.SchemaOnly {
			oids = append(oids, t.OID)
		}
	}
	if b, err := catalog.Blocking(ctx, conn, left); err == nil {
		for _, x := range b {
			if x.Schema == "" || c.opts.Filters.Schema(db, x.Schema) {
				f.blocking = append(f.blocking, db+": "+x.What)
			}
		}
	}
	if deps, err := keptDependents(ctx, conn, db, left, c.opts.Filters); err == nil {
		f.dependents = append(f.dependents, deps...)
	}
	readAccess(ctx, conn, oids, f)
	if len(c.opts.Filters.ExcludeIndexes) > 0 {
		if ixs, err := catalog.IndexNames(ctx, conn); err == nil {
			f.badIndexes = append(f.badIndexes, catalog.IndexRefusals(ixs, db, c.opts.Filters)...)
		}
	}
	if toTarget {
		missing, needed := c.extensions(ctx, conn, db, available)
		f.missingExt, f.neededExt = append(f.missingExt, missing...), append(f.neededExt, needed...)
	}
}

// readAccess finds the tables the source role may not read, or would read
// only in part under row-level security.
func readAccess(ctx context.Context, conn *pgx.Conn, oids []uint32, f *sourceFindings) {
	rows, err := conn.Query(ctx, `
SELECT format('%s.%I.%I', current_database(), n.nspname, c.relname),
       NOT (has_schema_privilege(n.oid, 'USAGE') AND has_table_privilege(c.oid, 'SELECT')),
       c.relrowsecurity AND NOT (pg_has_role(c.relowner, 'USAGE') OR
         (SELECT rolbypassrls OR rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user))
FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.oid = ANY ($1)`, oids)
	if err != nil {
		return
	}
	defer rows.Close()
	for rows.Next() {
		var name string
		var denied, underRLS bool
		if rows.Scan(&name, &denied, &underRLS) == nil {
			if denied {
				f.unreadable = append(f.unreadable, name)
			}
			if underRLS {
				f.rls = append(f.rls, name)
			}
		}
	}
}

// DependentsCheck names the finding on kept objects that the filters'
// excluded tables take with them.
const DependentsCheck = "left out with a table"

// keptDependents describes the objects of kept relations (views, foreign
// keys, policies, triggers, rules, children) that depend on the relations
// left, which the copy leaves out with them: said before any change, so that
// the user may keep the tables' structure instead.
func keptDependents(ctx context.Context, conn *pgx.Conn, db string, left []uint32, rules *filter.Rules) ([]string, error) {
	if len(left) == 0 {
		return nil, nil
	}
	deps, err := catalog.Dependents(ctx, conn, left)
	if err != nil {
		return nil, err
	}
	var rels []uint32
	for _, d := range deps {
		if d.Relation != 0 {
			rels = append(rels, d.Relation)
		}
	}
	names, err := catalog.RelationNames(ctx, conn, rels)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, d := range deps {
		n, ok := names[d.Relation]
		if !ok {
			continue // a function or type: catalog.Blocking refuses those
		}
		if d.RelKind == 'v' && !rules.Schema(db, n.Schema) || d.RelKind != 'v' && !rules.Table(db, n.Schema, n.Name).Copy {
			continue // left out already
		}
		what := d.Description
		if d.ViewRule { // "rule _RETURN on view v" is how the view itself reads
			what = "view " + n.String()
			if d.RelKind == 'm' {
				what = "materialized view " + n.String()
			}
		}
		out = append(out, db+": "+what)
	}
	slices.Sort(out)
	return slices.Compact(out), nil
}

// FiltersCheck names the findings about patterns that match nothing.
const FiltersCheck = "filters"

// strict reports patterns that match nothing: includes fail, excludes warn.
func (c *checker) strict(warnings []string, err error) {
	var p *problem.Problem
	if errors.As(err, &p) {
		c.add(FiltersCheck, Fail, p.Msg, "check the spelling against the source; quote mixed-case names")
	}
	for _, w := range warnings {
		c.add(FiltersCheck, Warn, w, "")
	}
}

// disk compares the target's free space with the data to copy, where the target
// role may run `df` on the server (superuser or pg_execute_server_program).
func (c *checker) disk(ctx context.Context, dst *pgx.Conn, di *catalog.Server) {
	var allowed bool
	if err := dst.QueryRow(ctx, `SELECT pg_has_role(current_user, 'pg_execute_server_program', 'USAGE')`).Scan(&allowed); err != nil || !(allowed || di.Superuser) {
		c.add("target disk", OK, "free space not checked (needs superuser or pg_execute_server_program on the target); the copy needs about "+bytes(c.rep.SourceBytes)+" plus indexes", "")
		return
	}
	free, err := freeDisk(ctx, dst)
	if err != nil {
		c.add("target disk", OK, "free space not checked: "+err.Error(), "")
		return
	}
	need := c.rep.SourceBytes
	switch {
	case free < need:
		c.add("target disk", Fail, fmt.Sprintf("%s free in the target's data directory, the data alone is %s", bytes(free), bytes(need)), "free space or grow the target's disk")
	case free < need*3/2:
		c.add("target disk", Warn, fmt.Sprintf("%s free, the data is %s before indexes and WAL", bytes(free), bytes(need)), "make room: indexes and WAL need space too")
	default:
		c.add("target disk", OK, fmt.Sprintf("%s free, the data is %s", bytes(free), bytes(need)), "")
	}
}

// freeDisk asks the target server for the free space of its data directory.
// The command is fixed; nothing of the user's goes into it.
func freeDisk(ctx context.Context, dst *pgx.Conn) (int64, error) {
	tx, err := dst.Begin(ctx)
	if err != nil {
		return 0, err
	}
	defer tx.Rollback(ctx)
	if _, err := tx.Exec(ctx, `CREATE TEMP TABLE replicator_df (line text) ON COMMIT DROP`); err != nil {
		return 0, err
	}
	if _, err := tx.Exec(ctx, `COPY replicator_df FROM PROGRAM 'df -Pk .'`); err != nil {
		return 0, err
	}
	var line string
	if err := tx.QueryRow(ctx, `SELECT line FROM replicator_df WHERE line NOT LIKE 'Filesystem%' LIMIT 1`).Scan(&line); err != nil {
		return 0, err
	}
	f := strings.Fields(line)
	if len(f) < 4 {
		return 0, fmt.Errorf("unexpected df output %q", line)
	}
	kb, err := strconv.ParseInt(f[3], 10, 64)
	if err != nil {
		return 0, fmt.Errorf("unexpected df output %q", line)
	}
	return kb << 10, nil
}

// extensions checks a source database's extensions against the target:
// missing ones the copy would create but the target server cannot, and
// excluded ones that kept objects need (unless the target database has
// them already).
func (c *checker) extensions(ctx context.Context, conn *pgx.Conn, db string, available map[string]bool) (missing, needed []string) {
	exts, err := catalog.Extensions(ctx, conn)
	if err != nil {
		return nil, nil
	}
	has := c.targetExtensions(ctx, db)
	for _, x := range exts {
		if !c.opts.Filters.ExtensionExcluded(db, x.Name) {
			if !available[x.Name] && !has[x.Name] {
				missing = append(missing, db+": "+x.Name)
			}
			continue
		}
		users, err := catalog.ExtensionUsers(ctx, conn, x.OID)
		if kept := catalog.KeptUsers(users, db, c.opts.Filters); err == nil && len(kept) > 0 && !has[x.Name] {
			needed = append(needed, fmt.Sprintf("%s.%s is used by %s", db, x.Name, listSome(kept, 10)))
		}
	}
	return missing, needed
}

// targetExtensions are the extensions the target's database db has (none
// when it does not exist or cannot be read).
func (c *checker) targetExtensions(ctx context.Context, db string) map[string]bool {
	has, err := catalog.ExtensionsIn(ctx, c.opts.Target, db)
	if err != nil {
		return map[string]bool{}
	}
	return has
}
