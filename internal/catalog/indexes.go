package catalog

import (
	"context"
	"fmt"
)

// Index is an index, or the index behind a primary key, unique or exclusion
// constraint, that can be built as soon as its table's data is in. The DDL comes
// from pg_get_indexdef/pg_get_constraintdef, the functions pg_dump itself uses.
type Index struct {
	OID   uint32 // pg_class oid of the index
	Table uint32
	Name  Name
	// Def is CREATE [UNIQUE] INDEX ... as pg_get_indexdef prints it.
	Def string
	// Constraint is set when a constraint owns the index.
	Constraint *Constraint
	Bytes      int64
}

// Constraint owning an index.
type Constraint struct {
	OID        uint32
	Name       string
	Type       byte // 'p', 'u' or 'x'
	Deferrable bool
	Deferred   bool
	Def        string // pg_get_constraintdef
}

// Indexes lists the indexes of the given tables that the copy builds itself, in
// parallel, as each table lands. Indexes carrying extras that pg_dump emits in the
// same archive entry (CLUSTER ON, REPLICA IDENTITY, per-column statistics targets,
// a tablespace) are left to pg_restore so that nothing is lost.
func Indexes(ctx context.Context, q Querier, tables []uint32) ([]Index, error) {
	rows, err := q.Query(ctx, `
SELECT i.indexrelid, i.indrelid, n.nspname, ic.relname, pg_catalog.pg_get_indexdef(i.indexrelid),
       pg_catalog.pg_relation_size(i.indexrelid),
       con.oid, con.conname, con.contype, con.condeferrable, con.condeferred,
       CASE WHEN con.oid IS NULL THEN NULL ELSE pg_catalog.pg_get_constraintdef(con.oid) END
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
LEFT JOIN pg_catalog.pg_constraint con
       ON con.conindid = i.indexrelid AND con.conrelid = i.indrelid AND con.contype IN ('p', 'u', 'x')
WHERE i.indrelid = ANY ($1)
  AND ic.relkind = 'i'
  AND i.indisvalid AND i.indislive
  AND NOT i.indisclustered AND NOT i.indisreplident
  AND ic.reltablespace = 0
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_attribute a
                  WHERE a.attrelid = i.indexrelid AND a.attstattarget >= 0)
ORDER BY i.indrelid, ic.relname`, tables)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	defer rows.Close()
	var out []Index
	for rows.Next() {
		var ix Index
		var conOID *uint32
		var conName, conType, conDef *string
		var deferrable, deferred *bool
		if err := rows.Scan(&ix.OID, &ix.Table, &ix.Name.Schema, &ix.Name.Name, &ix.Def, &ix.Bytes,
			&conOID, &conName, &conType, &deferrable, &deferred, &conDef); err != nil {
			return nil, fmt.Errorf("list indexes: %w", err)
		}
		if conOID != nil {
			ix.Constraint = &Constraint{OID: *conOID, Name: *conName, Type: (*conType)[0],
				Deferrable: *deferrable, Deferred: *deferred, Def: *conDef}
		}
		out = append(out, ix)
	}
	return out, rows.Err()
}
