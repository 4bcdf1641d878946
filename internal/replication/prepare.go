package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/problem"
)

// Published lists what the publication of database db carries under the
// filters: every selected table with rows, with its row filter. A
// partitioned table's partitions are published one by one, never the table
// itself, on every major (12 cannot publish a partitioned table at all):
// a partition attached later joins only when it has a key of its own (a
// published root would take in a keyless one, whose UPDATEs would then
// fail on the source), and a partition detached later goes on replicating.
// With publish_via_partition_root off, the target sees the same changes
// either way. Unlogged tables cannot be published.
func Published(tables []*catalog.Table, db string, rules *filter.Rules) (pub []Table, unlogged []string) {
	for _, t := range tables {
		d := rules.Relation(db, t.Name.Schema, t.Name.Name, t.Root.Schema, t.Root.Name)
		if !d.Copy || d.SchemaOnly || t.ExtensionConfig || t.Kind == 'p' {
			continue
		}
		if t.Unlogged {
			unlogged = append(unlogged, t.Name.String())
			continue
		}
		pub = append(pub, Table{Name: t.Name, Predicate: d.Predicate})
	}
	return pub, unlogged
}

// Prepare checks that the selected tables of the source database (conn) can be
// published and creates or updates the publication. With fix, tables without a
// usable replica identity get REPLICA IDENTITY FULL instead of a refusal.
// It returns warnings for the user.
func Prepare(ctx context.Context, conn *pgx.Conn, db string, rules *filter.Rules, fix bool) ([]string, error) {
	tables, err := catalog.Tables(ctx, conn)
	if err != nil {
		return nil, err
	}
	var num int
	if err := conn.QueryRow(ctx, "SELECT current_setting('server_version_num')::int").Scan(&num); err != nil {
		return nil, err
	}
	pub, unlogged := Published(tables, db, rules)
	var warnings []string
	for _, u := range unlogged {
		warnings = append(warnings, fmt.Sprintf("unlogged table %s is copied but not replicated (PostgreSQL does not publish unlogged tables)", u))
	}
	for _, t := range pub {
		if t.Predicate != "" && num < 150000 {
			return warnings, &problem.Problem{Msg: fmt.Sprintf("row filters (--table-filter) are replicated from PostgreSQL 15 on; the source is %s", pgtools.VersionFromNum(num)),
				Fix: "drop --table-filter, or upgrade the source"}
		}
	}
	var blobs bool
	if err := conn.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata)").Scan(&blobs); err == nil && blobs {
		warnings = append(warnings, "large objects are copied but not replicated (logical replication does not carry them)")
	}
	if err := CheckTables(ctx, conn, pub, "source"); err != nil {
		var p *problem.Problem
		if !errors.As(err, &p) || !fix {
			return warnings, err
		}
		for _, stmt := range p.Statements {
			if _, err := conn.Exec(ctx, stmt); err != nil {
				return warnings, fmt.Errorf("%s: %w", stmt, err)
			}
		}
		warnings = append(warnings, "set REPLICA IDENTITY FULL on the source for tables without a key (their updates and deletes now log whole rows): "+
			strings.Join(p.Statements, "; "))
	}
	return warnings, EnsurePublication(ctx, conn, NamesFor(db).Publication, pub)
}
