package engine_test

import (
	"context"
	"errors"
	"os"
	"os/user"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/replicatorhq/replicator/internal/catalog"
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
		{filter.Spec{IncludeDatabases: []string{"strict_shop", "Analytics Db"}}, `--include-databases "Analytics Db" matches no database: unquoted names are folded to lower case; to match "Analytics Db", quote it: --include-databases '"Analytics Db"'`},
		{filter.Spec{IncludeTables: []string{"strict_shop.Sales.Leads"}}, `--include-tables "strict_shop.Sales.Leads" matches no table: unquoted names are folded to lower case; to match "Sales.Leads", quote it: --include-tables 'strict_shop."Sales"."Leads"'`},
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

// A target that takes no writes is refused before anything starts; it once
// failed at the first CREATE DATABASE.
func TestReadOnlyTargetIsRefused(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE ro_src")
	pgtest.Exec(t, engine.TestPair.Target, "postgres", "CREATE ROLE ro_target LOGIN CREATEDB PASSWORD 'ro-pw'")
	pgtest.Exec(t, engine.TestPair.Target, "postgres", "ALTER ROLE ro_target SET default_transaction_read_only = on")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "ro_src")
		pgtest.Exec(t, engine.TestPair.Target, "postgres", "DROP ROLE ro_target")
	})
	before := pgtest.Databases(t, engine.TestPair.Target)
	_, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"ro_src"}}, func(o *engine.Options) {
		o.SkipRoles = true
		o.Target = mustParse(t, "target", engine.TestPair.Target.URLAs("ro_target", "ro-pw", "postgres"))
	})
	if err == nil || !strings.Contains(err.Error(), "the target's sessions are read-only") || !strings.Contains(err.Error(), `ALTER ROLE "ro_target" SET default_transaction_read_only = off`) {
		t.Errorf("got %v", err)
	}
	if after := pgtest.Databases(t, engine.TestPair.Target); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the target changed: %v -> %v", before, after)
	}
}

// A tablespace the target lacks is named before anything is created; the
// restore once failed on SET default_tablespace part-way through.
func TestMissingTablespaceIsRefused(t *testing.T) {
	// The server (user postgres) writes there: not under t.TempDir, whose
	// parent only root may enter.
	dir, err := os.MkdirTemp("", "replicator-tablespace-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { os.RemoveAll(dir) }) // after the tablespace is dropped
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			t.Fatal(err)
		}
		uid, _ := strconv.Atoi(u.Uid)
		gid, _ := strconv.Atoi(u.Gid)
		if err := os.Chown(dir, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE TABLESPACE ts_probe LOCATION '"+dir+"'")
	pgtest.Exec(t, engine.TestPair.Source, "postgres", "CREATE DATABASE ts_db")
	pgtest.Exec(t, engine.TestPair.Source, "ts_db", "CREATE TABLE fast (id int) TABLESPACE ts_probe; CREATE TABLE normal (id int)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, engine.TestPair.Source, "ts_db")
		pgtest.DropDatabases(t, engine.TestPair.Target, "ts_db")
		pgtest.Exec(t, engine.TestPair.Source, "postgres", "DROP TABLESPACE ts_probe")
	})
	_, _, err = copyCluster(t, filter.Spec{IncludeDatabases: []string{"ts_db"}}, func(o *engine.Options) { o.SkipRoles = true })
	if err == nil || !strings.Contains(err.Error(), "the target has no tablespace ts_probe (database ts_db): nothing was changed") {
		t.Errorf("got %v", err)
	}
	if slices.Contains(pgtest.Databases(t, engine.TestPair.Target), "ts_db") {
		t.Error("the database was created before the refusal")
	}
}

// The locale probe: a locale the server lacks is reported, one it has is not,
// and the probe leaves nothing behind.
func TestLocaleProbe(t *testing.T) {
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, engine.TestPair.Target.URL("postgres"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := catalog.LocaleAvailable(ctx, conn, catalog.Locale{Provider: "libc", Collate: "xx_YY.UTF-8", Ctype: "C"}); err == nil || !strings.Contains(err.Error(), `libc locale "xx_YY.UTF-8" is not available on the target`) {
		t.Errorf("missing locale: %v", err)
	}
	for _, l := range []catalog.Locale{{Provider: "libc", Collate: "C.UTF-8", Ctype: "C.UTF-8"}, {Provider: "icu", Collate: "C", Ctype: "C", ICU: "en-US"}} {
		if err := catalog.LocaleAvailable(ctx, conn, l); err != nil {
			t.Errorf("%+v: %v", l, err)
		}
	}
	l, err := catalog.ReadLocale(ctx, conn, "postgres")
	if err != nil || l.Provider == "" || l.Collate == "" {
		t.Errorf("ReadLocale: %+v %v", l, err)
	}
	var n int
	conn.QueryRow(ctx, "SELECT count(*) FROM pg_collation WHERE collname LIKE 'replicator_locale_probe%'").Scan(&n)
	if n != 0 {
		t.Errorf("%d probe collations left", n)
	}
}

func mustParse(t *testing.T, side, raw string) *conninfo.Endpoint {
	t.Helper()
	ep, err := conninfo.Parse(side, raw)
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

// The first database's snapshot and schema dump start during preflight (they
// only read the source); when the run does not go ahead (Ready, which the
// runner answers from validate, says no), pg_dump is stopped, its archive
// removed, the snapshot's session closed, and the target is untouched.
func TestEarlyDumpIsAbandonedWhenNotReady(t *testing.T) {
	pgtest.Exec(t, engine.TestPair.Source, "postgres", `CREATE DATABASE early_db`)
	pgtest.Exec(t, engine.TestPair.Source, "early_db", `CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t SELECT generate_series(1, 1000)`)
	t.Cleanup(func() { pgtest.DropDatabases(t, engine.TestPair.Source, "early_db") })
	before := pgtest.Databases(t, engine.TestPair.Target)
	tmp := t.TempDir()
	refused := errors.New("validate found a problem")
	started := false
	_, _, err := copyCluster(t, filter.Spec{IncludeDatabases: []string{"early_db"}}, func(o *engine.Options) {
		o.TempDir = tmp
		o.Ready = func(ctx context.Context) error {
			// Wait for the early dump's archive: it started before the gate.
			for deadline := time.Now().Add(20 * time.Second); time.Now().Before(deadline); time.Sleep(20 * time.Millisecond) {
				if m, _ := filepath.Glob(filepath.Join(tmp, "*", "*.dump")); len(m) > 0 {
					started = true
					break
				}
			}
			return refused
		}
	})
	if !errors.Is(err, refused) {
		t.Fatalf("run: %v, want the Ready error", err)
	}
	if !started {
		t.Error("no schema dump started before Ready")
	}
	if left, _ := os.ReadDir(tmp); len(left) > 0 {
		t.Errorf("left in the temporary directory: %v", left)
	}
	if s := pgtest.Query(t, engine.TestPair.Source, "postgres", `SELECT application_name FROM pg_stat_activity WHERE datname = 'early_db'`); len(s) > 0 {
		t.Errorf("sessions left on the source: %v", s)
	}
	if after := pgtest.Databases(t, engine.TestPair.Target); strings.Join(after, ",") != strings.Join(before, ",") {
		t.Errorf("the target changed: %v -> %v", before, after)
	}
}
