package catalog

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Where a database's data lives and how it sorts: what CREATE DATABASE and
// pg_restore need the target to have (a tablespace, a locale), found before
// anything is created rather than in the middle of a run.

// Locale is a database's locale, as CREATE DATABASE takes it.
type Locale struct {
	// Provider is "libc" or "icu" (PostgreSQL 15 and later may use ICU).
	Provider       string
	Collate, Ctype string
	// ICU is the ICU locale when Provider is "icu".
	ICU string
}

// ReadLocale reads database db's locale (any database's, from pg_database).
func ReadLocale(ctx context.Context, conn *pgx.Conn, db string) (Locale, error) {
	var l Locale
	icu := `NULL::text`
	var num int
	if err := conn.QueryRow(ctx, `SELECT current_setting('server_version_num')::int`).Scan(&num); err != nil {
		return l, err
	}
	switch {
	case num >= 170000:
		icu = `d.datlocale`
	case num >= 150000:
		icu = `d.daticulocale`
	}
	provider := `'c'`
	if num >= 150000 {
		provider = `d.datlocprovider::text`
	}
	var p string
	var loc *string
	err := conn.QueryRow(ctx, `SELECT `+provider+`, d.datcollate, d.datctype, `+icu+`
FROM pg_catalog.pg_database d WHERE d.datname = $1`, db).Scan(&p, &l.Collate, &l.Ctype, &loc)
	if err != nil {
		return l, fmt.Errorf("read the locale of database %s: %w", db, err)
	}
	l.Provider = map[string]string{"c": "libc", "i": "icu", "b": "builtin"}[p]
	if loc != nil {
		l.ICU = *loc
	}
	return l, nil
}

// LocaleAvailable checks, on conn's server, that a database with locale l
// can be created: it creates a temporary collation of each locale in a
// transaction it rolls back (PostgreSQL checks a locale the same way in both),
// so nothing is left behind.
func LocaleAvailable(ctx context.Context, conn *pgx.Conn, l Locale) error {
	type probe struct{ provider, locale string }
	probes := []probe{{"libc", l.Collate}, {"libc", l.Ctype}}
	switch l.Provider {
	case "icu":
		probes = append(probes, probe{"icu", l.ICU})
	case "builtin":
		probes = nil // PostgreSQL 17's builtin provider: every server has it
	}
	tx, err := conn.Begin(ctx)
	if err != nil {
		return err
	}
	defer tx.Rollback(context.Background())
	for i, p := range probes {
		if p.locale == "" || p.locale == "C" || p.locale == "POSIX" {
			continue
		}
		name := pgx.Identifier{"pg_temp", fmt.Sprintf("replicator_locale_probe_%d", i)}.Sanitize()
		if _, err := tx.Exec(ctx, "SAVEPOINT probe"); err != nil {
			return err
		}
		_, err := tx.Exec(ctx, fmt.Sprintf("CREATE COLLATION %s (provider = %s, locale = %s)", name, p.provider, quoteLiteral(p.locale)))
		var pgErr *pgconn.PgError
		if err != nil && !errors.As(err, &pgErr) {
			return err
		}
		if pgErr != nil && pgErr.Code != "42501" { // no privilege: cannot tell, the create will say
			return fmt.Errorf("%s locale %q is not available on the target: %s", p.provider, p.locale, pgErr.Message)
		}
		if _, err := tx.Exec(ctx, "ROLLBACK TO SAVEPOINT probe"); err != nil {
			return err
		}
	}
	return nil
}

// UsedTablespaces are the tablespaces the database conn is connected to
// uses: its default one and those of its relations, pg_default and pg_global
// aside.
func UsedTablespaces(ctx context.Context, conn *pgx.Conn) ([]string, error) {
	rows, err := conn.Query(ctx, `
SELECT spcname::text FROM pg_catalog.pg_tablespace
WHERE spcname NOT IN ('pg_default', 'pg_global')
  AND oid IN (SELECT reltablespace FROM pg_catalog.pg_class
              UNION SELECT dattablespace FROM pg_catalog.pg_database WHERE datname = current_database())
ORDER BY 1`)
	if err != nil {
		return nil, fmt.Errorf("list tablespaces: %w", err)
	}
	return pgx.CollectRows(rows, pgx.RowTo[string])
}

// quoteLiteral quotes s as an SQL string literal, whatever
// standard_conforming_strings is.
func quoteLiteral(s string) string {
	q := "'" + strings.ReplaceAll(s, "'", "''") + "'"
	if strings.Contains(s, `\`) {
		q = "E" + strings.ReplaceAll(q, `\`, `\\`)
	}
	return q
}
