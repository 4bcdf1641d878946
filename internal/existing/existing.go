// Package existing judges a target database that is already there before the
// copy: what it holds beyond its template, which of those objects the copy
// may keep (the empty schemas and extensions a managed provider prepares,
// which match the source's), which it leaves untouched (schemas and
// extensions the source does not have), and which conflict with the source
// and refuse the run before anything changes.
package existing

import (
	"context"
	_ "embed"
	"errors"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
)

//go:embed objects.sql
var objectsSQL string

// Object is one user object of a database.
type Object struct {
	// Kind is pg_identify_object's type ("table", "function", "schema",
	// "extension", "large object", ...).
	Kind string
	// Schema is the object's schema, "" for objects without one (schemas
	// themselves, extensions, publications, large objects, ...).
	Schema string
	// Name is set for schemas and extensions (and objects whose name alone
	// identifies them).
	Name     string
	Identity string
	// Version and ExtSchema: an extension's installed version and schema.
	Version, ExtSchema string
	// SourceOID: for a kept object, the OID of the source's (the schema
	// archive names objects by it).
	SourceOID uint32
}

func (o Object) String() string { return o.Kind + " " + o.Identity }

func (o Object) key() string { return o.Kind + "\x00" + o.Identity }

// Objects lists the user objects of the database conn is in: everything made
// after initdb that an extension or the system did not make for another
// object. A table stands for its indexes, constraints, triggers and policies.
func Objects(ctx context.Context, conn *pgx.Conn) ([]Object, error) {
	rows, err := conn.Query(ctx, objectsSQL)
	if err != nil {
		return nil, fmt.Errorf("list the objects of database %s: %w", conn.Config().Database, err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (Object, error) {
		var o Object
		// name is NULL where it alone does not identify the object (a
		// function: its arguments do); identity always does.
		var schema, name, version, extSchema *string
		err := row.Scan(&o.Kind, &schema, &name, &o.Identity, &version, &extSchema)
		o.Schema, o.Name, o.Version, o.ExtSchema = deref(schema), deref(name), deref(version), deref(extSchema)
		return o, err
	})
}

// SchemaNames lists the schemas of the database conn is in.
func SchemaNames(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, "SELECT nspname FROM pg_catalog.pg_namespace")
	if err != nil {
		return nil, fmt.Errorf("list the schemas of database %s: %w", conn.Config().Database, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

func deref(s *string) string {
	if s == nil {
		return ""
	}
	return *s
}

// Beyond returns the objects of db that its template does not have (matched
// by kind and identity): what a user or a provider added.
func Beyond(db, template []Object) []Object {
	base := map[string]bool{}
	for _, o := range template {
		base[o.key()] = true
	}
	var out []Object
	for _, o := range db {
		if !base[o.key()] {
			out = append(out, o)
		}
	}
	return out
}

// Source is what the judgement needs to know of the source database: its
// schemas (those the copy creates) and its extensions.
type Source struct {
	Schemas    []string
	Extensions []Object
}

// Verdict is the judgement of one existing target database.
type Verdict struct {
	// Kept: objects identical to the source's, kept as they are; the copy
	// skips creating them.
	Kept []Object
	// Untouched: schemas and extensions the source does not have, left as
	// they are with everything in them.
	Untouched []Object
	// Conflicts: objects that refuse the copy into this database.
	Conflicts []Conflict
}

// Conflict is an existing object the copy cannot keep, and why.
type Conflict struct {
	Object
	Why string
}

func (c Conflict) String() string {
	if c.Why == "" {
		return c.Object.String()
	}
	return c.Object.String() + " (" + c.Why + ")"
}

// Judge decides about each object that the target database holds beyond its
// template (see Beyond).
//
//   - A schema the source also has is kept when everything in it is kept:
//     empty, or holding only extensions kept with it.
//   - An extension the source also has, in a schema of the same name, is
//     kept (pg_restore's CREATE EXTENSION IF NOT EXISTS keeps the target's
//     version; a different one is said).
//   - A schema or extension the source lacks is left untouched, with what is
//     in it: the copy creates nothing there.
//   - Anything else in a schema the source has, and any other object
//     without a schema (a publication, a cast, a large object, ...), is a
//     conflict: the copy would fail on it, or leave a database that is not
//     the source's.
func Judge(target []Object, src Source) *Verdict {
	v := &Verdict{}
	srcSchema := map[string]bool{}
	for _, s := range src.Schemas {
		srcSchema[s] = true
	}
	srcExt := map[string]Object{}
	for _, e := range src.Extensions {
		srcExt[e.Name] = e
	}
	// Extensions first: a schema holding only kept extensions' members is
	// itself kept (the members are not listed, their extension is).
	var conflictIn = map[string]bool{}
	for _, o := range target {
		switch {
		case o.Kind == "schema":
		case o.Kind == "extension":
			se, ok := srcExt[o.Name]
			switch {
			case !ok:
				v.Untouched = append(v.Untouched, o)
			case se.ExtSchema != o.ExtSchema:
				v.Conflicts = append(v.Conflicts, Conflict{o, fmt.Sprintf("in schema %s here, %s on the source", o.ExtSchema, se.ExtSchema)})
			default:
				v.Kept = append(v.Kept, o)
			}
		case o.Schema != "" && !srcSchema[o.Schema]:
			// Inside a schema the source lacks: untouched with it.
		case o.Schema != "":
			v.Conflicts = append(v.Conflicts, Conflict{Object: o, Why: "the source has one of this schema"})
			conflictIn[o.Schema] = true
		default:
			v.Conflicts = append(v.Conflicts, Conflict{Object: o})
		}
	}
	for _, o := range target {
		if o.Kind != "schema" {
			continue
		}
		switch {
		case !srcSchema[o.Name]:
			v.Untouched = append(v.Untouched, o)
		case !conflictIn[o.Name]:
			v.Kept = append(v.Kept, o)
		}
	}
	slices.SortStableFunc(v.Conflicts, func(a, b Conflict) int { return strings.Compare(a.Object.String(), b.Object.String()) })
	slices.SortStableFunc(v.Kept, func(a, b Object) int { return strings.Compare(a.String(), b.String()) })
	slices.SortStableFunc(v.Untouched, func(a, b Object) int { return strings.Compare(a.String(), b.String()) })
	return v
}

// Notes describes the kept and untouched objects for the run's summary.
func (v *Verdict) Notes() []string {
	var out []string
	for _, o := range v.Kept {
		note := "kept " + o.String() + ", already on the target"
		if o.Kind == "extension" {
			note += " at version " + o.Version
		}
		out = append(out, note)
	}
	for _, o := range v.Untouched {
		out = append(out, "left untouched "+o.String()+" (not on the source)")
	}
	return out
}

// VersionNotes names the kept extensions whose version differs from the
// source's.
func (v *Verdict) VersionNotes(src Source) []string {
	var out []string
	for _, o := range v.Kept {
		for _, e := range src.Extensions {
			if o.Kind == "extension" && e.Name == o.Name && e.Version != o.Version {
				out = append(out, fmt.Sprintf("extension %s is at version %s on the target and %s on the source: the target's is kept (ALTER EXTENSION %s UPDATE TO '%s' on the target if you need the source's)",
					o.Name, o.Version, e.Version, pgx.Identifier{o.Name}.Sanitize(), strings.ReplaceAll(e.Version, "'", "''")))
			}
		}
	}
	return out
}

// Describe names the first conflicts (up to 10, then a count).
func Describe(conflicts []Conflict) string {
	var parts []string
	for i, c := range conflicts {
		if i == 10 {
			parts = append(parts, fmt.Sprintf("and %d more", len(conflicts)-10))
			break
		}
		parts = append(parts, c.String())
	}
	return strings.Join(parts, ", ")
}

// Inspection is the judgement of one existing target database, with what it
// was judged against.
type Inspection struct {
	*Verdict
	Source Source
	// TemplateErr: template1 could not be read, so every object of the
	// database counted as its own (stricter, never laxer).
	TemplateErr error
}

// Inspect reads the target database db and the target's template1, and the
// source database db, and judges what the target database holds beyond its
// template. Only the source's schemas that copied says are the source's
// (not replicator's own, nor those the filters leave out).
func Inspect(ctx context.Context, source, target *conninfo.Endpoint, db string, copied func(schema string) bool) (*Inspection, error) {
	here, err := objectsOf(ctx, target, db)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	in := &Inspection{}
	template, err := objectsOf(ctx, target, "template1")
	if err != nil {
		in.TemplateErr, template = err, nil
	}
	ep, err := source.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := catalog.Untimed(ctx, conn); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	if in.Source.Schemas, err = SchemaNames(ctx, conn); err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	in.Source.Schemas = slices.DeleteFunc(in.Source.Schemas, func(s string) bool { return !copied(s) })
	objs, err := Objects(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	for _, o := range objs {
		if o.Kind == "extension" {
			in.Source.Extensions = append(in.Source.Extensions, o)
		}
	}
	in.Verdict = Judge(Beyond(here, template), in.Source)
	for i, k := range in.Kept {
		q := "SELECT oid FROM pg_catalog.pg_namespace WHERE nspname = $1"
		if k.Kind == "extension" {
			q = "SELECT oid FROM pg_catalog.pg_extension WHERE extname = $1"
		}
		if err := conn.QueryRow(ctx, q, k.Name).Scan(&in.Kept[i].SourceOID); err != nil {
			return nil, fmt.Errorf("source: %s: %w", k, err)
		}
	}
	return in, nil
}

func objectsOf(ctx context.Context, server *conninfo.Endpoint, db string) ([]Object, error) {
	ep, err := server.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		var ce *conninfo.ConnectError
		if errors.As(err, &ce) {
			return nil, fmt.Errorf("check database %s: %w", db, err)
		}
		return nil, err
	}
	defer conn.Close(context.Background())
	if err := catalog.Untimed(ctx, conn); err != nil {
		return nil, err
	}
	return Objects(ctx, conn)
}

// Fix is what a user can do about a conflicting database.
const Fix = "pass --drop-existing to replace the database (asks first), drop or rename those objects on the target, or leave the database out with --exclude-databases"

// Refusal is the one line that refuses the copy into the conflicting
// databases, with the fixes.
func Refusal(conflicts []string) string {
	return strings.Join(conflicts, "; ") + ": nothing was changed; " + Fix
}

// Conflicting is the start of a refusal naming a database's conflicts.
func Conflicting(db string, v *Verdict) string {
	return fmt.Sprintf("database %s already holds %s", db, Describe(v.Conflicts))
}
