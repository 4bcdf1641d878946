// Package catalog reads what the copy needs to know about a source database from
// the system catalogs: tables with their columns and sizes, the indexes and
// constraints that can be built as soon as a table's data is in, sequences, large
// objects, and the objects that depend on tables left out of the copy.
//
// Every query runs in the caller's transaction, so inside an exported snapshot the
// answers are consistent with the data copied.
package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
)

// Querier is what the catalog needs: a connection or a transaction.
type Querier interface {
	Query(ctx context.Context, sql string, args ...any) (pgx.Rows, error)
	QueryRow(ctx context.Context, sql string, args ...any) pgx.Row
}

// Name is a schema-qualified relation name.
type Name struct {
	Schema, Name string
}

// Quoted is the name as SQL: "schema"."table".
func (n Name) Quoted() string { return pgx.Identifier{n.Schema, n.Name}.Sanitize() }

// String is schema.name for people.
func (n Name) String() string { return n.Schema + "." + n.Name }

// Table is a relation whose rows can be copied (relkind r) or that holds
// partitions (relkind p).
type Table struct {
	OID         uint32
	Name        Name
	Kind        byte // 'r' or 'p'
	Unlogged    bool
	IsPartition bool
	// Root is the topmost partitioned table of a partition (its own name otherwise);
	// filters apply to the whole hierarchy through it.
	Root Name
	// InheritsFrom lists the (non-partition) parents of an inheritance child.
	InheritsFrom []uint32
	// Bytes is the size of the heap and TOAST (not indexes): the weight of the table
	// in progress and scheduling.
	Bytes int64
	// Pages is the heap size in blocks, for ctid range splits.
	Pages int64
	// Rows is the planner's estimate (-1 when never analysed).
	Rows int64
	// Columns that COPY transfers: not dropped, not generated.
	Columns []string
	// Binary is true when every column type can travel in COPY's binary format
	// between two clusters (no user-defined array element or composite types).
	Binary bool
	// ExtensionCondition is set for extension configuration tables: only rows
	// matching it are user data (as pg_dump does).
	ExtensionConfig    bool
	ExtensionCondition string
	// Extension is the extension whose configuration table this is.
	Extension string
}

// Tables lists user tables, with their copyable columns.
func Tables(ctx context.Context, q Querier) ([]*Table, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relkind, c.relpersistence = 'u', c.relispartition,
       rn.nspname, rc.relname,
       COALESCE((SELECT array_agg(i.inhparent ORDER BY i.inhseqno) FROM pg_catalog.pg_inherits i
                 WHERE i.inhrelid = c.oid AND NOT c.relispartition), '{}'),
       CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_table_size(c.oid) ELSE 0 END,
       CASE WHEN c.relkind = 'r' THEN pg_catalog.pg_relation_size(c.oid) / current_setting('block_size')::int ELSE 0 END,
       c.reltuples::bigint,
       x.oid IS NOT NULL,
       COALESCE(x.extcondition[array_position(x.extconfig, c.oid)], ''), COALESCE(x.extname, '')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_class rc ON rc.oid = CASE WHEN c.relispartition THEN pg_catalog.pg_partition_root(c.oid) ELSE c.oid END
JOIN pg_catalog.pg_namespace rn ON rn.oid = rc.relnamespace
LEFT JOIN pg_catalog.pg_extension x ON c.oid = ANY (x.extconfig)
WHERE c.relkind IN ('r', 'p')
  AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl'
  AND (x.oid IS NOT NULL OR NOT EXISTS (
        SELECT 1 FROM pg_catalog.pg_depend d
        WHERE d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid AND d.deptype = 'e'))
ORDER BY n.nspname, c.relname`)
	if err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	var tables []*Table
	byOID := map[uint32]*Table{}
	for rows.Next() {
		t := &Table{}
		var kind string
		if err := rows.Scan(&t.OID, &t.Name.Schema, &t.Name.Name, &kind, &t.Unlogged, &t.IsPartition,
			&t.Root.Schema, &t.Root.Name, &t.InheritsFrom, &t.Bytes, &t.Pages, &t.Rows,
			&t.ExtensionConfig, &t.ExtensionCondition, &t.Extension); err != nil {
			rows.Close()
			return nil, fmt.Errorf("list tables: %w", err)
		}
		t.Kind = kind[0]
		tables = append(tables, t)
		byOID[t.OID] = t
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("list tables: %w", err)
	}
	if err := columns(ctx, q, byOID); err != nil {
		return nil, err
	}
	return tables, nil
}

// columns fills Columns and Binary. A type travels in binary only when its send
// and receive functions exist and its binary form carries no type OIDs that differ
// between clusters: arrays embed their element type's OID and composites each
// field's, so arrays of user-defined types and composites go as text.
func columns(ctx context.Context, q Querier, tables map[uint32]*Table) error {
	oids := make([]uint32, 0, len(tables))
	for oid, t := range tables {
		oids = append(oids, oid)
		t.Binary = true
	}
	rows, err := q.Query(ctx, `
WITH RECURSIVE base(orig, oid, depth) AS (
    SELECT t.oid, t.oid, 0 FROM pg_catalog.pg_type t
    UNION ALL
    SELECT b.orig, t.typbasetype, b.depth + 1 FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.oid
    WHERE t.typtype = 'd' AND b.depth < 20
)
SELECT a.attrelid, a.attname,
       NOT EXISTS (
         SELECT 1 FROM base b JOIN pg_catalog.pg_type t ON t.oid = b.oid
         WHERE b.orig = a.atttypid AND (
               t.typtype = 'c'
            OR (t.typtype IN ('b', 'r', 'm', 'e') AND (t.typsend = 0 OR t.typreceive = 0))
            OR (t.typcategory = 'A' AND t.typelem >= 16384)
            OR t.typtype = 'p'))
FROM pg_catalog.pg_attribute a
WHERE a.attrelid = ANY ($1) AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
ORDER BY a.attrelid, a.attnum`, oids)
	if err != nil {
		return fmt.Errorf("list columns: %w", err)
	}
	defer rows.Close()
	for rows.Next() {
		var oid uint32
		var name string
		var binary bool
		if err := rows.Scan(&oid, &name, &binary); err != nil {
			return fmt.Errorf("list columns: %w", err)
		}
		t := tables[oid]
		t.Columns = append(t.Columns, name)
		t.Binary = t.Binary && binary
	}
	return rows.Err()
}

// Sequences lists user sequences (including identity and serial ones).
func Sequences(ctx context.Context, q Querier) ([]Sequence, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, s.seqstart, pg_catalog.pg_sequence_last_value(c.oid),
       d.refobjid, pg_catalog.has_sequence_privilege(c.oid, 'SELECT')
FROM pg_catalog.pg_class c
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
JOIN pg_catalog.pg_sequence s ON s.seqrelid = c.oid
LEFT JOIN pg_catalog.pg_depend d ON d.classid = 'pg_catalog.pg_class'::regclass AND d.objid = c.oid
     AND d.refclassid = 'pg_catalog.pg_class'::regclass AND d.deptype IN ('a', 'i')
WHERE c.relkind = 'S' AND c.relpersistence <> 't'
  AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list sequences: %w", err)
	}
	defer rows.Close()
	var seqs []Sequence
	for rows.Next() {
		var s Sequence
		var last *int64
		var owner *uint32
		var readable bool
		if err := rows.Scan(&s.OID, &s.Name.Schema, &s.Name.Name, &s.Start, &last, &owner, &readable); err != nil {
			return nil, fmt.Errorf("list sequences: %w", err)
		}
		if !readable {
			// Before 18 pg_sequence_last_value fails here; from 18 on it
			// returns NULL, which would read as "never used" and restart
			// the sequence on the target below values already taken.
			return nil, fmt.Errorf("cannot read sequence %s: the role lacks SELECT on it (GRANT SELECT ON SEQUENCE %s TO the role)", s.Name, s.Name.Quoted())
		}
		s.Value, s.IsCalled = s.Start, false
		if last != nil {
			s.Value, s.IsCalled = *last, true
		}
		if owner != nil {
			s.OwnedBy = *owner
		}
		seqs = append(seqs, s)
	}
	return seqs, rows.Err()
}

// Sequence and its current state. Sequences are not transactional: like pg_dump,
// this reads the value at the time of the query.
type Sequence struct {
	OID      uint32
	Name     Name
	Start    int64
	Value    int64
	IsCalled bool
	// OwnedBy is the table owning the sequence (serial or identity), 0 if none.
	OwnedBy uint32
}

// LargeObjects lists large object OIDs.
func LargeObjects(ctx context.Context, q Querier) ([]uint32, error) {
	rows, err := q.Query(ctx, `SELECT oid FROM pg_catalog.pg_largeobject_metadata ORDER BY oid`)
	if err != nil {
		return nil, fmt.Errorf("list large objects: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[uint32])
}

// CheckFilters checks the filters' table and schema patterns against the
// tables, materialized views and schemas of databases dbs of a server
// (filter.Rules.CheckTables and CheckSchemas): an include pattern that
// matches nothing is the error, the warnings are for the user.
func CheckFilters(ctx context.Context, server *conninfo.Endpoint, dbs []string, rules *filter.Rules) (warnings []string, err error) {
	var all []filter.Table
	schemas := map[string][]string{}
	for _, db := range dbs {
		ep, err := server.WithDatabase(db)
		if err != nil {
			return nil, err
		}
		conn, err := ep.Connect(ctx)
		if err != nil {
			return nil, err
		}
		err = Untimed(ctx, conn)
		var tables []*Table
		if err == nil {
			tables, err = Tables(ctx, conn)
		}
		if err == nil {
			err = CheckPredicates(ctx, conn, db, tables, rules)
		}
		var names []filter.Table
		if err == nil {
			names, _, err = FilterNames(ctx, conn, db, tables)
		}
		if err == nil && rules.FiltersSchemas() {
			schemas[db], err = Schemas(ctx, conn)
		}
		conn.Close(context.Background())
		if err != nil {
			return nil, fmt.Errorf("source database %s: %w", db, err)
		}
		all = append(all, names...)
	}
	if warnings, err = rules.CheckTables(all); err != nil || !rules.FiltersSchemas() {
		return warnings, err
	}
	more, err := rules.CheckSchemas(schemas)
	return append(warnings, more...), err
}

// Matview is a materialized view.
type Matview struct {
	OID  uint32
	Name Name
	// Populated: it holds data (not created or refreshed WITH NO DATA).
	Populated bool
}

// Matviews lists the user materialized views, whether they hold data (not
// created or refreshed WITH NO DATA) or not.
func Matviews(ctx context.Context, q Querier) ([]Matview, error) {
	rows, err := q.Query(ctx, `
SELECT c.oid, n.nspname, c.relname, c.relispopulated FROM pg_catalog.pg_class c JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'm' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_class'::regclass AND e.objid = c.oid AND e.deptype = 'e')
ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list materialized views: %w", err)
	}
	defer rows.Close()
	var out []Matview
	for rows.Next() {
		var m Matview
		if err := rows.Scan(&m.OID, &m.Name.Schema, &m.Name.Name, &m.Populated); err != nil {
			return nil, fmt.Errorf("list materialized views: %w", err)
		}
		out = append(out, m)
	}
	return out, rows.Err()
}

// FilterNames are the names filters are checked against (CheckTables): the
// tables, partitions and materialized views of database db; mvs are the
// materialized views read, for a caller that needs them too.
func FilterNames(ctx context.Context, q Querier, db string, tables []*Table) (names []filter.Table, mvs []Matview, err error) {
	for _, t := range tables {
		names = append(names, filter.Table{DB: db, Schema: t.Name.Schema, Name: t.Name.Name, RootSchema: t.Root.Schema, RootName: t.Root.Name})
	}
	if mvs, err = Matviews(ctx, q); err != nil {
		return nil, nil, err
	}
	for _, m := range mvs {
		names = append(names, filter.Table{DB: db, Schema: m.Name.Schema, Name: m.Name.Name, Matview: true})
	}
	return names, mvs, nil
}

// Schemas lists the user schemas (not the system's, nor those of
// extensions, nor replicator's own).
func Schemas(ctx context.Context, q Querier) ([]string, error) {
	rows, err := q.Query(ctx, `SELECT n.nspname FROM pg_catalog.pg_namespace n
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend e
                  WHERE e.classid = 'pg_catalog.pg_namespace'::regclass AND e.objid = n.oid AND e.deptype = 'e')
ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list schemas: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
