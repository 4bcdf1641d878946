package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// Dependent is an object outside a set of relations that depends on one of them:
// a view over it, an inheritance child, a foreign key pointing at it, a policy or
// rule mentioning it, a function whose SQL body uses it.
type Dependent struct {
	ClassID  uint32 // pg_class, pg_rewrite, pg_constraint, pg_policy, pg_trigger, pg_proc, ...
	OID      uint32
	On       uint32 // the relation depended upon
	Relation uint32 // the relation the dependent belongs to (0 when none)
	RelKind  byte   // kind of Relation
	// ViewRule: the dependent is the rule that defines view/materialized view Relation.
	ViewRule    bool
	Description string
}

// Dependents lists objects that depend on the relations rels without belonging
// to them.
func Dependents(ctx context.Context, q Querier, rels []uint32) ([]Dependent, error) {
	rows, err := q.Query(ctx, `
WITH d AS (
  SELECT d.classid, d.objid, d.objsubid, d.refobjid,
         COALESCE(rw.ev_class, con.conrelid, pol.polrelid, tg.tgrelid,
                  CASE WHEN d.classid = 'pg_catalog.pg_class'::regclass THEN d.objid END, 0) AS relid,
         COALESCE(rw.rulename = '_RETURN', false) AS viewrule
  FROM pg_catalog.pg_depend d
  LEFT JOIN pg_catalog.pg_rewrite rw ON d.classid = 'pg_catalog.pg_rewrite'::regclass AND rw.oid = d.objid
  LEFT JOIN pg_catalog.pg_constraint con ON d.classid = 'pg_catalog.pg_constraint'::regclass AND con.oid = d.objid
  LEFT JOIN pg_catalog.pg_policy pol ON d.classid = 'pg_catalog.pg_policy'::regclass AND pol.oid = d.objid
  LEFT JOIN pg_catalog.pg_trigger tg ON d.classid = 'pg_catalog.pg_trigger'::regclass AND tg.oid = d.objid
  WHERE d.refclassid = 'pg_catalog.pg_class'::regclass AND d.refobjid = ANY ($1) AND d.deptype = 'n'
)
SELECT DISTINCT d.classid, d.objid, d.refobjid, d.relid, COALESCE(c.relkind, ' '), d.viewrule,
       pg_catalog.pg_describe_object(d.classid, d.objid, 0)
FROM d LEFT JOIN pg_catalog.pg_class c ON c.oid = d.relid
WHERE NOT (d.relid = ANY ($1))`, rels)
	if err != nil {
		return nil, fmt.Errorf("list dependent objects: %w", err)
	}
	defer rows.Close()
	var out []Dependent
	for rows.Next() {
		var d Dependent
		var kind string
		if err := rows.Scan(&d.ClassID, &d.OID, &d.On, &d.Relation, &kind, &d.ViewRule, &d.Description); err != nil {
			return nil, fmt.Errorf("list dependent objects: %w", err)
		}
		d.RelKind = kind[0]
		out = append(out, d)
	}
	return out, rows.Err()
}

// ForeignKey is a foreign key constraint defined on a table (not one cloned onto
// a partition, which pg_dump does not dump separately).
type ForeignKey struct {
	OID        uint32
	Name       string
	Table      uint32
	References uint32
	Def        string
}

// ForeignKeysInto lists foreign keys referencing any of rels.
func ForeignKeysInto(ctx context.Context, q Querier, rels []uint32) ([]ForeignKey, error) {
	rows, err := q.Query(ctx, `
SELECT con.oid, con.conname, con.conrelid, con.confrelid, pg_catalog.pg_get_constraintdef(con.oid)
FROM pg_catalog.pg_constraint con
WHERE con.contype = 'f' AND con.conparentid = 0 AND con.confrelid = ANY ($1)`, rels)
	if err != nil {
		return nil, fmt.Errorf("list foreign keys: %w", err)
	}
	defer rows.Close()
	var out []ForeignKey
	for rows.Next() {
		var fk ForeignKey
		if err := rows.Scan(&fk.OID, &fk.Name, &fk.Table, &fk.References, &fk.Def); err != nil {
			return nil, fmt.Errorf("list foreign keys: %w", err)
		}
		out = append(out, fk)
	}
	return out, rows.Err()
}

// Encoding of the current database.
func Encoding(ctx context.Context, q Querier) (string, error) {
	var enc string
	err := q.QueryRow(ctx, `SELECT pg_catalog.pg_encoding_to_char(encoding) FROM pg_catalog.pg_database WHERE datname = current_database()`).Scan(&enc)
	return enc, err
}

// Blocking lists what would fail to restore without the relations rels (left
// out by the filters), and that the copy cannot leave out with them: functions
// and types that use their row types (RETURNS SETOF t, a column of a
// composite type, a domain over one), columns of other tables of those row
// types, and functions whose SQL-standard body reads them. Views, foreign
// keys, triggers, rules and policies are not listed: the copy leaves those out
// with their table (resolveExclusions). Each entry names the object and the
// relation it needs.
func Blocking(ctx context.Context, q Querier, rels []uint32) ([]Blocker, error) {
	if len(rels) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid) || ' needs ' || r.oid::pg_catalog.regclass::text,
       COALESCE((pg_catalog.pg_identify_object(d.classid, d.objid, d.objsubid)).schema, '')
FROM pg_catalog.pg_class r
JOIN pg_catalog.pg_depend d ON d.deptype = 'n' AND (
       d.refclassid = 'pg_catalog.pg_type'::pg_catalog.regclass AND d.refobjid = r.reltype
    OR d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refobjid = r.oid AND d.classid = 'pg_catalog.pg_proc'::pg_catalog.regclass)
WHERE r.oid = ANY ($1)
  AND d.classid <> 'pg_catalog.pg_rewrite'::pg_catalog.regclass
  AND NOT (d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = ANY ($1))
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = d.classid AND e.objid = d.objid AND e.deptype = 'e')
ORDER BY 1`, rels)
	if err != nil {
		return nil, fmt.Errorf("list objects that need excluded tables: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowToStructByPos[Blocker])
}

// Blocker is an object that needs a relation left out (see Blocking).
type Blocker struct {
	// What: the object, and the relation it needs.
	What string
	// Schema: the object's schema ("" when it has none): one left out
	// with it blocks nothing.
	Schema string
}

// RelationNames maps each relation of rels to its schema and name.
func RelationNames(ctx context.Context, q Querier, rels []uint32) (map[uint32]Name, error) {
	out := map[uint32]Name{}
	if len(rels) == 0 {
		return out, nil
	}
	rows, err := q.Query(ctx, `SELECT c.oid, n.nspname, c.relname FROM pg_catalog.pg_class c
	  JOIN pg_catalog.pg_namespace n ON n.oid OPERATOR(pg_catalog.=) c.relnamespace WHERE c.oid OPERATOR(pg_catalog.=) ANY ($1)`, rels)
	if err != nil {
		return nil, fmt.Errorf("read relation names: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var n Name
		if err := rows.Scan(&oid, &n.Schema, &n.Name); err != nil {
			return nil, fmt.Errorf("read relation names: %w", err)
		}
		out[oid] = n
	}
	return out, rows.Err()
}
