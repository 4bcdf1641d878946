package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/redact"
)

// IndexName is an index, for --exclude-indexes.
type IndexName struct {
	OID   uint32
	Name  Name
	Table Name
	// Constraint names the constraint the index backs (primary key,
	// unique, exclusion), "" for a plain index.
	Constraint string
	// ReplicaIdentity: the table's REPLICA IDENTITY USING INDEX.
	ReplicaIdentity bool
	// Partitioned: an index of a partitioned table, or a partition's
	// index attached to one.
	Partitioned bool
}

// IndexNames lists the user indexes of the database (extension members
// aside).
func IndexNames(ctx context.Context, q Querier) ([]IndexName, error) {
	rows, err := q.Query(ctx, `
SELECT i.indexrelid, n.nspname, ic.relname, tn.nspname, t.relname,
       COALESCE((SELECT con.conname FROM pg_catalog.pg_constraint con WHERE con.conindid = i.indexrelid AND con.contype IN ('p', 'u', 'x') LIMIT 1), ''),
       i.indisreplident,
       ic.relkind = 'I' OR ic.relispartition
FROM pg_catalog.pg_index i
JOIN pg_catalog.pg_class ic ON ic.oid = i.indexrelid
JOIN pg_catalog.pg_namespace n ON n.oid = ic.relnamespace
JOIN pg_catalog.pg_class t ON t.oid = i.indrelid
JOIN pg_catalog.pg_namespace tn ON tn.oid = t.relnamespace
WHERE n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend d
                  WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.objid = t.oid AND d.deptype = 'e')
ORDER BY 2, 3`)
	if err != nil {
		return nil, fmt.Errorf("list indexes: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (IndexName, error) {
		var ix IndexName
		err := r.Scan(&ix.OID, &ix.Name.Schema, &ix.Name.Name, &ix.Table.Schema, &ix.Table.Name, &ix.Constraint, &ix.ReplicaIdentity, &ix.Partitioned)
		return ix, err
	})
}

// Extension is an installed extension.
type Extension struct {
	OID     uint32
	Name    string
	Version string
	Schema  string
}

// Extensions lists the database's extensions but plpgsql (every database
// has it).
func Extensions(ctx context.Context, q Querier) ([]Extension, error) {
	rows, err := q.Query(ctx, `SELECT x.oid, x.extname, x.extversion, n.nspname
FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
WHERE x.extname <> 'plpgsql' ORDER BY 2`)
	if err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Extension, error) {
		var x Extension
		err := r.Scan(&x.OID, &x.Name, &x.Version, &x.Schema)
		return x, err
	})
}

// ExtensionUsers names (up to limit) the objects outside extension ext that
// depend on its members: columns of its types, indexes with its operator
// classes, functions, views. Without the extension they cannot be created.
func ExtensionUsers(ctx context.Context, q Querier, ext uint32, limit int) ([]string, error) {
	rows, err := q.Query(ctx, `
SELECT DISTINCT pg_catalog.pg_describe_object(d.classid, d.objid, d.objsubid)
FROM pg_catalog.pg_depend m
JOIN pg_catalog.pg_depend d ON d.refclassid = m.classid AND d.refobjid = m.objid AND d.deptype = 'n'
WHERE m.refclassid = 'pg_catalog.pg_extension'::pg_catalog.regclass AND m.refobjid = $1 AND m.deptype = 'e'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_depend x WHERE x.classid = d.classid AND x.objid = d.objid AND x.deptype = 'e')
  -- objects a user makes (operator family members are the extension's own)
  AND d.classid IN ('pg_catalog.pg_class'::pg_catalog.regclass, 'pg_catalog.pg_proc'::pg_catalog.regclass,
                    'pg_catalog.pg_type'::pg_catalog.regclass, 'pg_catalog.pg_constraint'::pg_catalog.regclass,
                    'pg_catalog.pg_trigger'::pg_catalog.regclass, 'pg_catalog.pg_rewrite'::pg_catalog.regclass,
                    'pg_catalog.pg_attrdef'::pg_catalog.regclass, 'pg_catalog.pg_policy'::pg_catalog.regclass,
                    'pg_catalog.pg_operator'::pg_catalog.regclass)
ORDER BY 1 LIMIT $2`, ext, limit)
	if err != nil {
		return nil, fmt.Errorf("objects using extension %d: %w", ext, err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// CheckPredicates makes the server read each --table-filter predicate of
// the database's tables as one expression over its table, with the
// extended query protocol, which takes a single statement: a predicate
// that closes its parenthesis and stacks statements (id < 0)) TO STDOUT;
// CREATE TABLE ...) is refused before anything runs it. The copy, sync and
// verify put predicates inside statements sent with the simple protocol.
func CheckPredicates(ctx context.Context, conn *pgx.Conn, db string, tables []*Table, rules *filter.Rules) error {
	for _, t := range tables {
		pred := rules.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name).Predicate
		if pred == "" || t.ExtensionConfig {
			continue
		}
		sql := "SELECT 1 FROM ONLY " + t.Name.Quoted() + " WHERE (" + pred + ")"
		if _, err := conn.PgConn().Prepare(ctx, "", sql, nil); err != nil {
			return &problem.Problem{Msg: fmt.Sprintf("--table-filter for %s.%s is not one SQL expression over the table: %s", db, t.Name, redact.Truncate(err.Error(), 300)),
				Fix: "write a predicate such as 'id > 1000 AND region = ''eu''' (one expression, no statements)"}
		}
	}
	return nil
}
