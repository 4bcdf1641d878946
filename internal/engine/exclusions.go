package engine

import (
	"context"
	"fmt"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/problem"
)

// --exclude-indexes and --exclude-extensions, and the extensions the target
// must be able to create: read in preflight (readExclusions, per source
// database), refused there before any change (checkExtensions), applied by
// pre-data (excluded extensions' entries) and inspect (excluded indexes).

// extensionFacts is what preflight learns of one database's extensions.
type extensionFacts struct {
	list []catalog.Extension
	// users of each excluded extension: kept objects that need it.
	users map[string][]string
}

// readExclusions reads a source database's indexes (with --exclude-indexes)
// and extensions, refusing index exclusions that would take a constraint
// or a replica identity with them.
func (r *run) readExclusions(ctx context.Context, conn *pgx.Conn, db string, seen *sourceFacts) error {
	rules := r.opts.Filters
	if len(rules.ExcludeIndexes) > 0 {
		ixs, err := catalog.IndexNames(ctx, conn)
		if err != nil {
			return err
		}
		for _, ix := range ixs {
			seen.indexes[db] = append(seen.indexes[db], [2]string{ix.Name.Schema, ix.Name.Name})
		}
		seen.badIndexes = append(seen.badIndexes, catalog.IndexRefusals(ixs, db, rules)...)
	}
	exts, err := catalog.Extensions(ctx, conn)
	if err != nil {
		return err
	}
	facts := &extensionFacts{list: exts, users: map[string][]string{}}
	for _, x := range exts {
		seen.extensionNames[db] = append(seen.extensionNames[db], [2]string{"", x.Name})
		if !rules.ExtensionExcluded(db, x.Name) {
			continue
		}
		users, err := catalog.ExtensionUsers(ctx, conn, x.OID)
		if err != nil {
			return err
		}
		facts.users[x.Name] = catalog.KeptUsers(users, db, rules)
	}
	seen.extensions[db] = facts
	return nil
}

// checkExclusions refuses, before any change: index exclusions that would
// take more than the index; excluded extensions that kept objects need
// (unless the target database already has them); extensions the copy
// must create and the target server cannot. Excluded extensions are left
// out of pre-data.
func (r *run) checkExclusions(ctx context.Context, p *plan, seen *sourceFacts, dst *pgx.Conn) error {
	rules := r.opts.Filters
	warnings := rules.CheckExcluded("extension", seen.extensionNames)
	if len(rules.ExcludeIndexes) > 0 {
		warnings = append(warnings, rules.CheckExcluded("index", seen.indexes)...)
	}
	for _, w := range warnings {
		r.warn("", "%s", w)
	}
	if len(seen.badIndexes) > 0 {
		return userErrorf("--exclude-indexes names %s: leaving it out would drop more than an index: nothing was changed; %s",
			problem.ListSome(seen.badIndexes, 10), catalog.IndexRefusalFix)
	}
	rows, err := dst.Query(ctx, "SELECT name FROM pg_catalog.pg_available_extensions")
	if err != nil {
		return fmt.Errorf("target: list available extensions: %w", err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target: list available extensions: %w", err)
	}
	available := map[string]bool{}
	for _, n := range names {
		available[n] = true
	}
	var missing, needed []string
	for _, db := range p.databases {
		facts := seen.extensions[db.name]
		if facts == nil {
			continue
		}
		has, err := r.targetExtensions(ctx, db)
		if err != nil {
			return err
		}
		db.extensions = facts.list
		for _, x := range facts.list {
			switch {
			case rules.ExtensionExcluded(db.name, x.Name):
				if users := facts.users[x.Name]; len(users) > 0 && !has[x.Name] {
					needed = append(needed, fmt.Sprintf("%s.%s is used by %s", db.name, x.Name, problem.ListSome(users, 10)))
				}
				if db.skipPre == nil {
					db.skipPre = map[tocKey]bool{}
				}
				db.skipPre[tocKey{pgExtensionOID, x.OID}] = true
				db.skipExtensions = append(db.skipExtensions, x.Name)
			case !available[x.Name] && !has[x.Name]:
				missing = append(missing, fmt.Sprintf("%s (%s, in database %s)", x.Name, x.Version, db.name))
			}
		}
	}
	if len(needed) > 0 {
		return userErrorf("--exclude-extensions leaves out extensions that kept objects need: %s: nothing was changed; install the extension in the target database first (it is then used as it is), or leave out what uses it too",
			strings.Join(needed, "; "))
	}
	if len(missing) > 0 {
		return userErrorf("the target server cannot create extension %s: nothing was changed; install its package on the target server (on a managed service: check that it supports the extension), or leave it out with --exclude-extensions DB.NAME",
			strings.Join(missing, ", "))
	}
	return nil
}

// targetExtensions are the extensions a target database already has (none
// for one the copy creates).
func (r *run) targetExtensions(ctx context.Context, db *dbPlan) (map[string]bool, error) {
	if !db.intoExisting {
		return map[string]bool{}, nil
	}
	has, err := catalog.ExtensionsIn(ctx, r.opts.Target, db.name)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	return has, nil
}

// excludedIndexes marks the indexes --exclude-indexes names to be neither
// built nor restored (inspect), whoever builds them.
func (r *run) excludedIndexes(ctx context.Context, conn *pgx.Conn, w *dbWork) (map[uint32]bool, error) {
	out := map[uint32]bool{}
	if len(r.opts.Filters.ExcludeIndexes) == 0 {
		return out, nil
	}
	ixs, err := catalog.IndexNames(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, ix := range ixs {
		if r.opts.Filters.IndexExcluded(w.name, ix.Name.Schema, ix.Name.Name) {
			out[ix.OID] = true
			w.skipPost[tocKey{pgClassOID, ix.OID}] = true
		}
	}
	return out, nil
}

// extensionComment matches an extension's COMMENT entry in pg_restore
// --list, which has no catalog key of its own ("0 0").
var extensionComment = regexp.MustCompile(`^\d+; 0 0 COMMENT - EXTENSION (.+?) `)

// skipsExtensionComment reports whether a --list line is the comment of an
// extension in names.
func skipsExtensionComment(line string, names []string) bool {
	m := extensionComment.FindStringSubmatch(line)
	if m == nil {
		return false
	}
	for _, n := range names {
		if quoted := (pgx.Identifier{n}).Sanitize(); m[1] == n || m[1] == quoted {
			return true
		}
	}
	return false
}

// createExtensions creates the database's extensions at the source's
// versions before the rest of pre-data: pg_dump's CREATE EXTENSION names
// no version, so the target's default would be created (hstore 1.8 for
// 1.7), and once objects use it there is no way back. The schemas they go
// into are restored first, from the archive; pre-data then skips both.
// A version the target does not have is created at its default, with a
// warning.
func (r *run) createExtensions(ctx context.Context, w *dbWork, db *dbPlan, archive string) error {
	var todo []catalog.Extension
	for _, x := range db.extensions {
		// One in a schema the filters leave out is pg_restore's, as before.
		if !db.skipPre[tocKey{pgExtensionOID, x.OID}] && r.opts.Filters.Schema(w.name, x.Schema) {
			todo = append(todo, x)
		}
	}
	if len(todo) == 0 {
		return nil
	}
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := targetSession(ctx, conn, ""); err != nil {
		return err
	}
	rows, err := conn.Query(ctx, "SELECT nspname FROM pg_catalog.pg_namespace")
	if err != nil {
		return fmt.Errorf("target: list schemas: %w", err)
	}
	present, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target: list schemas: %w", err)
	}
	schemas := map[tocKey]bool{}
	for _, x := range todo {
		if !slices.Contains(present, x.Schema) {
			schemas[tocKey{pgNamespaceOID, x.SchemaOID}] = true
		}
	}
	if len(schemas) > 0 {
		list, err := r.tocList(ctx, archive, filepath.Join(filepath.Dir(archive), "schemas.list"), func(k tocKey, _ string) bool { return !schemas[k] })
		if err != nil {
			return err
		}
		if err := r.pgRestore(ctx, w.name, w.dst, w.dst, []string{"--section=pre-data", "--use-list=" + list, "--dbname=" + w.dst.ToolConnString(), archive}, db.intoExisting && db.redoPreData); err != nil {
			return err
		}
	}
	if db.skipPre == nil {
		db.skipPre = map[tocKey]bool{}
	}
	for k := range schemas {
		db.skipPre[k] = true
	}
	for _, x := range todo {
		var available bool
		if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_available_extension_versions WHERE name = $1 AND version = $2)",
			x.Name, x.Version).Scan(&available); err != nil {
			return fmt.Errorf("target: extension %s: %w", x.Name, err)
		}
		stmt := "CREATE EXTENSION IF NOT EXISTS " + pgx.Identifier{x.Name}.Sanitize() + " WITH SCHEMA " + pgx.Identifier{x.Schema}.Sanitize()
		if available {
			stmt += " VERSION " + quoteLiteral(x.Version)
		} else {
			r.warn(w.name, "extension %s %s is not available on the target: created at the target's default version", x.Name, x.Version)
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return fmt.Errorf("target: create extension %s: %w", x.Name, err)
		}
		db.skipPre[tocKey{pgExtensionOID, x.OID}] = true
	}
	return nil
}
