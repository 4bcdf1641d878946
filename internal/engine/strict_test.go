package engine_test

import (
	"errors"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// An include pattern that matches nothing stops the copy before anything
// changes, naming the closest database; before, "Analytics Db" unquoted
// matched nothing and only shop was copied, successfully.
func TestIncludePatternsMustMatch(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", `CREATE DATABASE strict_shop`)
	pgtest.Exec(t, engine.TestPair.Source, "postgres", `CREATE DATABASE "Analytics Db"`)
	pgtest.Exec(t, engine.TestPair.Source, "strict_shop", `CREATE TABLE orders (id int PRIMARY KEY); CREATE SCHEMA "Sales"; CREATE TABLE "Sales"."Leads" (id int)`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "strict_shop", "Analytics Db")
		pgtest.DropDatabases(t, engine.TestPair.Target, "strict_shop", "Analytics Db")
	})
	before := pgtest.Databases(t, engine.TestPair.Target)
	for _, tc := range []struct {
		spec filter.Spec
		want string
	}{
		{filter.Spec{IncludeDatabases: []string{"strict_shop", "Analytics Db"}}, `--include-databases "Analytics Db" matches no database: did you mean "\"Analytics Db\""? quote mixed-case names`},
		{filter.Spec{IncludeTables: []string{"strict_shop.Sales.Leads"}}, `--include-tables "strict_shop.Sales.Leads" matches no table: did you mean "\"Sales\".\"Leads\""?`},
		{filter.Spec{IncludeDatabases: []string{"strict_shop"}, TableFilters: []string{"strict_shop.public.order:id > 0"}}, `--table-filter "strict_shop.public.order" matches no table: did you mean "public.orders"?`},
	} {
		_, _, err := copyCluster(t, tc.spec, func(o *engine.Options) { o.SkipRoles = true })
		var p *problem.Problem
		if !errors.As(err, &p) || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%+v: got %v, want %q", tc.spec, err, tc.want)
		}
	}
	if after := pgtest.Databases(t, engine.TestPair.Target); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the target changed: %v -> %v", before, after)
	}
	// Quoted, it copies; an exclude that matches nothing only warns.
	_, ev, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{`"Analytics Db"`}, ExcludeTables: []string{"audit_*"}}, func(o *engine.Options) { o.SkipRoles = true })
	if err != nil {
		t.Fatal(err)
	}
	if !ev.has(`--exclude-tables "audit_*" matches no table: nothing is excluded by it`) {
		t.Errorf("no warning for an exclude that matches nothing")
	}
}

// --drop-existing when the target URL names one of the databases replaced:
// the drop and the create go through another database, as dropdb does
// (PostgreSQL cannot drop the database a session is in).
func TestDropTheTargetURLsOwnDatabase(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE mt")
	pgtest.Exec(t, engine.TestPair.Source, "mt", "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 100)")
	pgtest.Exec(t, engine.TestPair.Target, "postgres", "CREATE DATABASE mt")
	pgtest.Exec(t, engine.TestPair.Target, "mt", "CREATE TABLE old (id int); INSERT INTO old VALUES (1)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "mt")
		pgtest.DropDatabases(t, engine.TestPair.Target, "mt")
	})
	_, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"mt"}}, func(o *engine.Options) {
		o.SkipRoles, o.DropExisting = true, true
		o.Confirm = func(string) (bool, error) { return true, nil }
		mt, err := conninfo.Parse("target", engine.TestPair.Target.URL("mt"))
		if err != nil {
			t.Fatal(err)
		}
		o.Target = mt
	})
	if err != nil {
		t.Fatalf("copy into the URL's own database: %v", err)
	}
	assertSameDatabase(t, "mt")
}
