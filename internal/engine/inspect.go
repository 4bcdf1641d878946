package engine

import (
	"context"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/filter"
)

// inspect reads the catalog inside the snapshot and decides, table by table, what
// the copy does; it also finds what depends on tables left out, so the schema
// restore never trips over them.
func (r *run) inspect(ctx context.Context, conn *pgx.Conn, w *dbWork) error {
	var err error
	if w.encoding, err = catalog.Encoding(ctx, conn); err != nil {
		return fmt.Errorf("read encoding: %w", err)
	}
	tables, err := catalog.Tables(ctx, conn)
	if err != nil {
		return err
	}
	byOID := map[uint32]*tableWork{}
	excluded := map[uint32]bool{}
	var dataOIDs, partial []uint32
	for _, t := range tables {
		if t.ExtensionConfig && r.opts.Filters.ExtensionExcluded(w.name, t.Extension) {
			continue // created by an extension the copy leaves out
		}
		d := r.decide(w.name, t)
		if !d.Copy {
			excluded[t.OID] = true
			w.excluded = append(w.excluded, t.Name)
			continue
		}
		tw := &tableWork{Table: t, decision: d, copyData: t.Kind == 'r' && !d.SchemaOnly}
		w.tables = append(w.tables, tw)
		byOID[t.OID] = tw
		if tw.copyData {
			tw.progress = r.tracker.Register(w.name, t.Name.String(), t.Rows, t.Bytes)
			dataOIDs = append(dataOIDs, t.OID)
		}
		if d.SchemaOnly || d.Predicate != "" && !t.ExtensionConfig {
			partial = append(partial, t.OID)
		}
	}
	if w.schemasOut, err = r.schemasLeftOut(ctx, conn, w.name); err != nil {
		return err
	}
	mvs, err := r.leaveOutWithTables(ctx, conn, w, excluded)
	if err != nil {
		return err
	}
	if err := r.resolveExclusions(ctx, conn, w, excluded); err != nil {
		return err
	}
	// Inheritance children of excluded parents were dropped above; forget them.
	kept := w.tables[:0]
	for _, t := range w.tables {
		if !excluded[t.OID] {
			kept = append(kept, t)
		} else {
			delete(byOID, t.OID)
		}
	}
	w.tables = kept
	for _, n := range w.excluded {
		r.tracker.Remove(w.name, n.String())
	}

	if err := r.partialForeignKeys(ctx, conn, w, byOID, partial); err != nil {
		return err
	}

	oids := make([]uint32, 0, len(byOID))
	for oid := range byOID {
		oids = append(oids, oid)
	}
	indexes, err := catalog.Indexes(ctx, conn, oids)
	if err != nil {
		return err
	}
	leftOut, err := r.excludedIndexes(ctx, conn, w)
	if err != nil {
		return err
	}
	for _, ix := range indexes {
		t := byOID[ix.Table]
		if t == nil || t.Kind != 'r' || leftOut[ix.OID] {
			continue
		}
		t.indexes = append(t.indexes, ix)
		w.skipPost[tocKey{pgClassOID, ix.OID}] = true
		if ix.Constraint != nil {
			w.skipPost[tocKey{pgConstraintOID, ix.Constraint.OID}] = true
		}
	}
	seqs, err := catalog.Sequences(ctx, conn)
	if err != nil {
		return err
	}
	for _, s := range seqs {
		if !excluded[s.OID] && r.opts.Filters.Schema(w.name, s.Name.Schema) {
			w.sequences = append(w.sequences, s)
		}
	}
	if w.blobs, err = catalog.LargeObjects(ctx, conn); err != nil {
		return err
	}
	w.matviews = populatedMatviews(mvs, excluded, r.opts.Filters, w.name)
	// Always: a source may carry a replication another run set up.
	return r.skipOwnPublication(ctx, conn, w)
}

// decide is what the copy does with table t of database db: the filters'
// decision, with an extension configuration table's own condition on its
// rows (pg_dump's).
func (r *run) decide(db string, t *catalog.Table) filter.Decision {
	d := r.opts.Filters.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name)
	if t.ExtensionConfig && t.ExtensionCondition != "" {
		cond := strings.TrimSpace(t.ExtensionCondition)
		cond = strings.TrimSpace(strings.TrimPrefix(strings.TrimPrefix(cond, "WHERE"), "where"))
		if d.Predicate != "" {
			d.Predicate = "(" + cond + ") AND " + d.Predicate
		} else {
			d.Predicate = "(" + cond + ")"
		}
	}
	return d
}

// schemasLeftOut are the schemas of database db the schema filters leave
// out (none without schema filters).
func (r *run) schemasLeftOut(ctx context.Context, conn *pgx.Conn, db string) ([]string, error) {
	if !r.opts.Filters.FiltersSchemas() {
		return nil, nil
	}
	schemas, err := catalog.Schemas(ctx, conn)
	if err != nil {
		return nil, err
	}
	var out []string
	for _, s := range schemas {
		if !r.opts.Filters.Schema(db, s) {
			out = append(out, s)
		}
	}
	return out, nil
}

// leaveOutWithTables adds to the excluded relations what goes with the
// filters' tables, and returns the materialized views. Materialized views
// are filtered as tables are: one left out is not created (nor what
// depends on it); a schema-only one is created WITH NO DATA (not refreshed,
// see populatedMatviews). A sequence a left-out table owns goes with it,
// unless a kept table's default uses it (pg_dump -T would keep it, empty
// of purpose).
func (r *run) leaveOutWithTables(ctx context.Context, conn *pgx.Conn, w *dbWork, excluded map[uint32]bool) ([]catalog.Matview, error) {
	mvs, err := catalog.Matviews(ctx, conn)
	if err != nil {
		return nil, err
	}
	for _, mv := range mvs {
		if !r.opts.Filters.Table(w.name, mv.Name.Schema, mv.Name.Name).Copy {
			excluded[mv.OID] = true
			w.excluded = append(w.excluded, mv.Name)
		}
	}
	var out []uint32
	for oid := range excluded {
		out = append(out, oid)
	}
	owned, err := catalog.OwnedSequences(ctx, conn, out)
	if err != nil {
		return nil, err
	}
	for _, s := range owned {
		excluded[s.OID] = true
		w.excluded = append(w.excluded, s.Name)
	}
	return mvs, nil
}

// resolveExclusions grows the excluded set with what cannot exist without it
// (views over excluded tables, inheritance children) and marks post-data objects
// that point at excluded tables (foreign keys, policies, rules, triggers) to be
// skipped. Each is reported: the user asked for the table to go, not these.
func (r *run) resolveExclusions(ctx context.Context, conn *pgx.Conn, w *dbWork, excluded map[uint32]bool) error {
	frontier := make([]uint32, 0, len(excluded))
	for oid := range excluded {
		frontier = append(frontier, oid)
	}
	for len(frontier) > 0 {
		deps, err := catalog.Dependents(ctx, conn, frontier)
		if err != nil {
			return err
		}
		frontier = frontier[:0]
		for _, d := range deps {
			if excluded[d.Relation] {
				continue
			}
			switch {
			case d.ClassID == pgRewriteOID && d.ViewRule, d.ClassID == pgClassOID && strings.ContainsRune("rpvmf", rune(d.RelKind)):
				excluded[d.Relation] = true
				frontier = append(frontier, d.Relation)
				name, err := relationName(ctx, conn, d.Relation)
				if err != nil {
					return err
				}
				w.excluded = append(w.excluded, name)
				r.warn(w.name, "%s left out: it depends on a table excluded by the filters", name)
			case d.ClassID == pgConstraintOID || d.ClassID == pgPolicyOID || d.ClassID == pgRewriteOID || d.ClassID == pgTriggerOID:
				w.skipPost[tocKey{d.ClassID, d.OID}] = true
				r.warn(w.name, "%s skipped: it depends on a table excluded by the filters", d.Description)
			default:
				r.warn(w.name, "%s depends on a table excluded by the filters; it is copied but may fail when used", d.Description)
			}
		}
	}
	return nil
}

// partialForeignKeys handles foreign keys into tables whose rows are not all
// copied (schema-only or row-filtered): validating them would fail, so they are
// added NOT VALID (existing rows unchecked, new rows checked) or, where PostgreSQL
// cannot do that (partitioned tables), skipped.
func (r *run) partialForeignKeys(ctx context.Context, conn *pgx.Conn, w *dbWork, tables map[uint32]*tableWork, partial []uint32) error {
	if len(partial) == 0 {
		return nil
	}
	fks, err := catalog.ForeignKeysInto(ctx, conn, partial)
	if err != nil {
		return err
	}
	for _, fk := range fks {
		from, to := tables[fk.Table], tables[fk.References]
		if from == nil || to == nil || !from.copyData && (from.Kind == 'r' || from.decision.SchemaOnly) {
			continue // excluded already, or no rows to validate
		}
		w.skipPost[tocKey{pgConstraintOID, fk.OID}] = true
		if from.Kind != 'r' {
			r.warn(w.name, "foreign key %s on %s skipped: %s is not copied in full and PostgreSQL cannot add it NOT VALID on a partitioned table", fk.Name, from.Name, to.Name)
			continue
		}
		def := fk.Def
		if !strings.HasSuffix(def, "NOT VALID") {
			def += " NOT VALID"
		}
		w.afterPost = append(w.afterPost, fmt.Sprintf("ALTER TABLE ONLY %s ADD CONSTRAINT %s %s",
			from.Name.Quoted(), pgx.Identifier{fk.Name}.Sanitize(), def))
		r.warn(w.name, "foreign key %s on %s added NOT VALID: %s is not copied in full (validate later with ALTER TABLE %s VALIDATE CONSTRAINT %s)",
			fk.Name, from.Name, to.Name, from.Name.Quoted(), pgx.Identifier{fk.Name}.Sanitize())
	}
	return nil
}

func relationName(ctx context.Context, conn *pgx.Conn, oid uint32) (catalog.Name, error) {
	var n catalog.Name
	err := conn.QueryRow(ctx, `SELECT n.nspname, c.relname FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace WHERE c.oid = $1`, oid).Scan(&n.Schema, &n.Name)
	if err != nil {
		return n, fmt.Errorf("name of relation %d: %w", oid, err)
	}
	return n, nil
}

// populatedMatviews are the materialized views with data on the source,
// but those left out or schema-only, which post-data refreshes on the target.
func populatedMatviews(mvs []catalog.Matview, excluded map[uint32]bool, rules *filter.Rules, db string) []catalog.Name {
	var out []catalog.Name
	for _, mv := range mvs {
		if mv.Populated && !excluded[mv.OID] && !rules.Table(db, mv.Name.Schema, mv.Name.Name).SchemaOnly {
			out = append(out, mv.Name)
		}
	}
	return out
}
