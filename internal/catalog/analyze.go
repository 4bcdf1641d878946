package catalog

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
)

// MayAnalyze says whether the session's role may ANALYZE the table (quoted):
// a superuser, or a member of its owner (PostgreSQL 17 also lets holders of
// MAINTAIN). Anyone else's ANALYZE only warns and skips the table, and a run
// would say it analyzed what it did not.
func MayAnalyze(ctx context.Context, q Querier, quoted string) (bool, error) {
	var may bool
	err := q.QueryRow(ctx, `SELECT r.rolsuper OR pg_catalog.pg_has_role(c.relowner, 'USAGE')
	  OR CASE WHEN pg_catalog.current_setting('server_version_num')::int OPERATOR(pg_catalog.>=) 170000
	      THEN pg_catalog.has_table_privilege(c.oid, 'MAINTAIN') ELSE false END
	FROM pg_catalog.pg_class c, pg_catalog.pg_roles r
	WHERE c.oid OPERATOR(pg_catalog.=) pg_catalog.to_regclass($1) AND r.rolname OPERATOR(pg_catalog.=) CURRENT_USER`, quoted).Scan(&may)
	if errors.Is(err, pgx.ErrNoRows) {
		return true, nil // gone: ANALYZE itself says so
	}
	if err != nil {
		return false, fmt.Errorf("may analyze %s: %w", quoted, err)
	}
	return may, nil
}
