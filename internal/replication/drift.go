package replication

import (
	"context"
	"fmt"
	"sort"

	"github.com/jackc/pgx/v5"
)

// Drift is a difference between a published table on the source and the
// target that stops (or will stop) its changes from applying, with the
// statement that fixes it on the target.
type Drift struct {
	Table   string `json:"table"`
	Column  string `json:"column,omitempty"`
	Problem string `json:"problem"`
	Fix     string `json:"fix"`
}

type column struct{ schema, table, name, typ string }

// published reads the columns the publication sends (a column list, 15+,
// restricts them; generated columns are not sent).
func published(ctx context.Context, src *pgx.Conn, pub string) ([]column, error) {
	listed := "true"
	if serverMajor(src) >= 15 {
		listed = "a.attname = ANY (pt.attnames)"
	}
	rows, err := src.Query(ctx, `
SELECT pt.schemaname::text, pt.tablename::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM pg_catalog.pg_publication_tables pt
JOIN pg_catalog.pg_namespace n ON n.nspname = pt.schemaname
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = pt.tablename
JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped AND a.attgenerated = ''
WHERE pt.pubname = $1 AND `+listed+`
ORDER BY 1, 2, a.attnum`, pub)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, func(r pgx.CollectableRow) (column, error) {
		var c column
		err := r.Scan(&c.schema, &c.table, &c.name, &c.typ)
		return c, err
	})
}

// columnsOn reads the target's columns of the given tables.
func columnsOn(ctx context.Context, dst *pgx.Conn, schemas, tables []string) (map[[2]string]map[string]string, error) {
	rows, err := dst.Query(ctx, `
SELECT n.nspname::text, c.relname::text, a.attname::text, pg_catalog.format_type(a.atttypid, a.atttypmod)
FROM unnest($1::text[], $2::text[]) AS w(s, t)
JOIN pg_catalog.pg_namespace n ON n.nspname = w.s
JOIN pg_catalog.pg_class c ON c.relnamespace = n.oid AND c.relname = w.t
LEFT JOIN pg_catalog.pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped`, schemas, tables)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	out := map[[2]string]map[string]string{}
	for rows.Next() {
		var s, t string
		var name, typ *string
		if err := rows.Scan(&s, &t, &name, &typ); err != nil {
			return nil, err
		}
		k := [2]string{s, t}
		if out[k] == nil {
			out[k] = map[string]string{}
		}
		if name != nil {
			out[k][*name] = *typ
		}
	}
	return out, rows.Err()
}

// ReadDrift compares the published tables' columns on both sides: a table
// or column the target lacks, or a column of another type, is drift (a
// column only the target has is not: it receives no changes).
func ReadDrift(ctx context.Context, src, dst *pgx.Conn, n Names) ([]Drift, error) {
	cols, err := published(ctx, src, n.Publication)
	if err != nil {
		return nil, fmt.Errorf("source: %w", err)
	}
	var schemas, tables []string
	seen := map[[2]string]bool{}
	for _, c := range cols {
		if k := [2]string{c.schema, c.table}; !seen[k] {
			seen[k] = true
			schemas, tables = append(schemas, c.schema), append(tables, c.table)
		}
	}
	on, err := columnsOn(ctx, dst, schemas, tables)
	if err != nil {
		return nil, fmt.Errorf("target: %w", err)
	}
	var out []Drift
	missing := map[[2]string]bool{}
	for _, c := range cols {
		k := [2]string{c.schema, c.table}
		table := pgx.Identifier{c.schema, c.table}.Sanitize()
		have, ok := on[k]
		switch {
		case !ok:
			if !missing[k] {
				missing[k] = true
				out = append(out, Drift{Table: table, Problem: "is published but missing on the target",
					Fix: fmt.Sprintf("create it on the target (pg_dump --schema-only --table %s SOURCE | psql TARGET), then ALTER SUBSCRIPTION %s REFRESH PUBLICATION", quoteShell(table), pgx.Identifier{n.Subscription}.Sanitize())})
			}
		case have[c.name] == "":
			out = append(out, Drift{Table: table, Column: c.name, Problem: "column missing on the target",
				Fix: fmt.Sprintf("ALTER TABLE %s ADD COLUMN %s %s;", table, pgx.Identifier{c.name}.Sanitize(), c.typ)})
		case have[c.name] != c.typ:
			out = append(out, Drift{Table: table, Column: c.name, Problem: fmt.Sprintf("column is %s on the source, %s on the target", c.typ, have[c.name]),
				Fix: fmt.Sprintf("ALTER TABLE %s ALTER COLUMN %s TYPE %s;", table, pgx.Identifier{c.name}.Sanitize(), c.typ)})
		}
	}
	sort.SliceStable(out, func(i, j int) bool { return out[i].Table < out[j].Table })
	return out, nil
}

// quoteShell quotes s for a POSIX shell command line.
func quoteShell(s string) string {
	q := "'"
	for _, r := range s {
		if r == '\'' {
			q += `'\''`
		} else {
			q += string(r)
		}
	}
	return q + "'"
}

// Unkeyed lists published tables that have lost their primary key or
// replica identity since they were published (ALTER TABLE ... DROP
// CONSTRAINT, REPLICA IDENTITY NOTHING, a replica identity index dropped):
// PostgreSQL then refuses their UPDATEs and DELETEs on the source.
func Unkeyed(ctx context.Context, src *pgx.Conn, pub string) ([]string, error) {
	rows, err := src.Query(ctx, `
SELECT format('%I.%I', n.nspname, c.relname)
FROM pg_catalog.pg_publication_rel pr
JOIN pg_catalog.pg_publication p ON p.oid = pr.prpubid
JOIN pg_catalog.pg_class c ON c.oid = pr.prrelid
JOIN pg_catalog.pg_namespace n ON n.oid = c.relnamespace
WHERE p.pubname = $1 AND c.relkind = 'r' AND c.relreplident <> 'f'
  AND NOT EXISTS (SELECT 1 FROM pg_catalog.pg_index i WHERE i.indrelid = c.oid
                  AND (i.indisprimary AND c.relreplident = 'd' OR i.indisreplident AND c.relreplident = 'i'))
ORDER BY 1`, pub)
	if err != nil {
		return nil, err
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}
