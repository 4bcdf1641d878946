package catalog

import (
	"context"
	"fmt"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
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

// IndexRefusals names the indexes --exclude-indexes may not leave out in
// database db: one that backs a constraint (primary key, unique,
// exclusion), a table's replica identity, or one of a partitioned index
// (leaving it out would take more than the index).
func IndexRefusals(ixs []IndexName, db string, rules *filter.Rules) []string {
	var out []string
	for _, ix := range ixs {
		if !rules.IndexExcluded(db, ix.Name.Schema, ix.Name.Name) || !rules.Table(db, ix.Table.Schema, ix.Table.Name).Copy {
			continue
		}
		switch {
		case ix.Constraint != "":
			out = append(out, fmt.Sprintf("%s.%s backs constraint %s of %s", db, ix.Name, pgx.Identifier{ix.Constraint}.Sanitize(), ix.Table))
		case ix.ReplicaIdentity:
			out = append(out, fmt.Sprintf("%s.%s is the replica identity of %s", db, ix.Name, ix.Table))
		case ix.Partitioned:
			out = append(out, fmt.Sprintf("%s.%s is part of a partitioned table's index", db, ix.Name))
		}
	}
	return out
}

// IndexRefusalFix is the fix of IndexRefusals.
const IndexRefusalFix = "take it out of --exclude-indexes (drop the constraint on the target afterwards if you must)"

// Extension is an installed extension.
type Extension struct {
	OID       uint32
	Name      string
	Version   string
	Schema    string
	SchemaOID uint32
}

// Extensions lists the database's extensions but plpgsql (every database
// has it).
func Extensions(ctx context.Context, q Querier) ([]Extension, error) {
	// In creation order: an extension comes after those it requires.
	rows, err := q.Query(ctx, `SELECT x.oid, x.extname, x.extversion, n.nspname, n.oid
FROM pg_catalog.pg_extension x JOIN pg_catalog.pg_namespace n ON n.oid = x.extnamespace
WHERE x.extname <> 'plpgsql' ORDER BY x.oid`)
	if err != nil {
		return nil, fmt.Errorf("list extensions: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (Extension, error) {
		var x Extension
		err := r.Scan(&x.OID, &x.Name, &x.Version, &x.Schema, &x.SchemaOID)
		return x, err
	})
}

// ExtensionsIn names the extensions database db of server has.
func ExtensionsIn(ctx context.Context, server *conninfo.Endpoint, db string) (map[string]bool, error) {
	ep, err := server.WithDatabase(db)
	if err != nil {
		return nil, err
	}
	conn, err := ep.Connect(ctx)
	if err != nil {
		return nil, err
	}
	defer conn.Close(context.Background())
	exts, err := Extensions(ctx, conn)
	if err != nil {
		return nil, fmt.Errorf("database %s: %w", db, err)
	}
	has := map[string]bool{}
	for _, x := range exts {
		has[x.Name] = true
	}
	return has, nil
}

// ExtensionUser is an object outside an extension that depends on one of
// its members. Relation is the table it belongs to (a column, an index, a
// constraint, a view), "" for a function, type or operator.
type ExtensionUser struct {
	What             string
	Schema, Relation string
}

// ExtensionUsers lists (up to 1000) the objects outside extension ext that
// depend on its members: columns of its types, indexes with its operator
// classes, functions, views. Without the extension they cannot be created.
func ExtensionUsers(ctx context.Context, q Querier, ext uint32) ([]ExtensionUser, error) {
	rows, err := q.Query(ctx, `
WITH users AS (
  SELECT DISTINCT d.classid, d.objid, d.objsubid
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
), related AS (
  SELECT u.*, CASE u.classid
      WHEN 'pg_catalog.pg_class'::pg_catalog.regclass THEN COALESCE((SELECT i.indrelid FROM pg_catalog.pg_index i WHERE i.indexrelid = u.objid), u.objid)
      WHEN 'pg_catalog.pg_attrdef'::pg_catalog.regclass THEN (SELECT a.adrelid FROM pg_catalog.pg_attrdef a WHERE a.oid = u.objid)
      WHEN 'pg_catalog.pg_constraint'::pg_catalog.regclass THEN (SELECT NULLIF(c.conrelid, 0) FROM pg_catalog.pg_constraint c WHERE c.oid = u.objid)
      WHEN 'pg_catalog.pg_trigger'::pg_catalog.regclass THEN (SELECT t.tgrelid FROM pg_catalog.pg_trigger t WHERE t.oid = u.objid)
      WHEN 'pg_catalog.pg_rewrite'::pg_catalog.regclass THEN (SELECT r.ev_class FROM pg_catalog.pg_rewrite r WHERE r.oid = u.objid)
      WHEN 'pg_catalog.pg_policy'::pg_catalog.regclass THEN (SELECT p.polrelid FROM pg_catalog.pg_policy p WHERE p.oid = u.objid)
    END AS rel
  FROM users u
)
SELECT pg_catalog.pg_describe_object(r.classid, r.objid, r.objsubid),
       COALESCE(n.nspname, (pg_catalog.pg_identify_object(r.classid, r.objid, r.objsubid)).schema, ''),
       COALESCE(c.relname, '')
FROM related r
LEFT JOIN pg_catalog.pg_class c ON c.oid = r.rel
LEFT JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
ORDER BY 1 LIMIT 1000`, ext)
	if err != nil {
		return nil, fmt.Errorf("objects using extension %d: %w", ext, err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (ExtensionUser, error) {
		var u ExtensionUser
		err := r.Scan(&u.What, &u.Schema, &u.Relation)
		return u, err
	})
}

// KeptUsers names the users the filters keep in database db (a column of
// a table left out does not need the extension).
func KeptUsers(users []ExtensionUser, db string, rules *filter.Rules) []string {
	var out []string
	for _, u := range users {
		kept := rules.Schema(db, u.Schema)
		if u.Relation != "" {
			kept = rules.Table(db, u.Schema, u.Relation).Copy
		}
		if kept {
			out = append(out, u.What)
		}
	}
	return out
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
		if pred == "" {
			continue // an extension's own condition is the catalog's, not a caller's
		}
		sql := "SELECT 1 FROM ONLY " + t.Name.Quoted() + " WHERE (" + pred + ")"
		if _, err := conn.PgConn().Prepare(ctx, "", sql, nil); err != nil {
			return &problem.Problem{Msg: fmt.Sprintf("--table-filter for %s.%s is not one SQL expression over the table: %s", db, t.Name, redact.Truncate(err.Error(), 300)),
				Fix: "write a predicate such as 'id > 1000 AND region = ''eu''' (one expression, no statements)"}
		}
	}
	return nil
}

// OwnedSequence is a sequence a table owns (serial, OWNED BY).
type OwnedSequence struct {
	OID  uint32
	Name Name
}

// OwnedSequences lists the sequences owned by the given tables that no
// column default of another table uses: they go where their table goes
// (pg_dump -T leaves them in). Identity sequences are part of their table.
func OwnedSequences(ctx context.Context, q Querier, tables []uint32) ([]OwnedSequence, error) {
	if len(tables) == 0 {
		return nil, nil
	}
	rows, err := q.Query(ctx, `
SELECT s.oid, n.nspname, s.relname
FROM pg_catalog.pg_depend d
JOIN pg_catalog.pg_class s ON s.oid = d.objid AND s.relkind = 'S'
JOIN pg_catalog.pg_namespace n ON n.oid = s.relnamespace
WHERE d.classid = 'pg_catalog.pg_class'::pg_catalog.regclass AND d.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
  AND d.deptype = 'a' AND d.refobjid = ANY ($1)
  AND NOT EXISTS (
    SELECT 1 FROM pg_catalog.pg_depend u JOIN pg_catalog.pg_attrdef ad ON ad.oid = u.objid
    WHERE u.classid = 'pg_catalog.pg_attrdef'::pg_catalog.regclass AND u.refclassid = 'pg_catalog.pg_class'::pg_catalog.regclass
      AND u.refobjid = s.oid AND NOT ad.adrelid = ANY ($1))
ORDER BY 2, 3`, tables)
	if err != nil {
		return nil, fmt.Errorf("sequences owned by excluded tables: %w", err)
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (OwnedSequence, error) {
		var s OwnedSequence
		err := r.Scan(&s.OID, &s.Name.Schema, &s.Name.Name)
		return s, err
	})
}
