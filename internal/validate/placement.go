package validate

import (
	"context"
	"fmt"
	"slices"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
)

// writable fails a target that takes no writes (a standby, or read-only
// sessions): the copy's first CREATE DATABASE would.
func (c *checker) writable(di *catalog.Server) {
	switch {
	case di.InRecovery:
		c.add("target writable", Fail, "the target is a standby (in recovery)", "point --target at the primary")
	case di.ReadOnly:
		c.add("target writable", Fail, fmt.Sprintf("the target's sessions are read-only (default_transaction_read_only is on for role %s, its database or the server)", di.User),
			fmt.Sprintf("ALTER ROLE %s SET default_transaction_read_only = off, or connect as another role", pgx.Identifier{di.User}.Sanitize()))
	default:
		c.add("target writable", OK, "the target takes writes", "")
	}
}

// placement checks that the target has the tablespaces the selected
// databases use and the locales of those it will create.
func (c *checker) placement(ctx context.Context, selected []string, src, dst *pgx.Conn, di *catalog.Server) {
	var missingTS, badLocale []string
	for _, db := range selected {
		if ep, err := c.opts.Source.WithDatabase(db); err == nil {
			if conn, err := ep.Connect(ctx); err == nil {
				used, _ := catalog.UsedTablespaces(ctx, conn)
				conn.Close(context.Background())
				for _, ts := range used {
					if !slices.Contains(di.Tablespaces, ts) {
						missingTS = append(missingTS, fmt.Sprintf("%s (database %s)", ts, db))
					}
				}
			}
		}
		if slices.Contains(di.Databases, db) {
			continue // restored into or replaced: its locale is the target's own
		}
		if l, err := catalog.ReadLocale(ctx, src, db); err == nil {
			if err := catalog.LocaleAvailable(ctx, dst, l); err != nil {
				badLocale = append(badLocale, db+": "+err.Error())
			}
		}
	}
	if len(missingTS) > 0 {
		c.add("tablespaces", Fail, "the target has no tablespace "+strings.Join(missingTS, ", "),
			"create it on the target (CREATE TABLESPACE ... LOCATION ...), or move the objects to pg_default on the source")
	} else {
		c.add("tablespaces", OK, "the target has every tablespace used", "")
	}
	if len(badLocale) > 0 {
		c.add("locales", Fail, listSome(badLocale, 3), "install the locale on the target's server, or create the database there yourself with a locale it has")
	} else {
		c.add("locales", OK, "the target has the locales of the databases to create", "")
	}
}
