package verify_test

import (
	"context"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
	"github.com/replicatorhq/replicator/internal/verify"
)

var pair *pgtest.Pair

func TestMain(m *testing.M) { pgtest.Main(m, "verify", &pair) }

func run(t *testing.T, spec filter.Spec) (*verify.Result, error) {
	t.Helper()
	src, _ := conninfo.Parse("source", pair.Source.URL("postgres"))
	dst, _ := conninfo.Parse("target", pair.Target.URL("postgres"))
	rules, err := spec.Compile()
	if err != nil {
		t.Fatal(err)
	}
	return verify.Run(context.Background(), verify.Options{Source: src, Target: dst, Filters: rules, Jobs: 3})
}

func byTable(res *verify.Result) map[string]verify.TableResult {
	m := map[string]verify.TableResult{}
	for _, t := range res.Tables {
		m[t.Table] = t
	}
	return m
}

// both runs the same SQL on source and target.
func both(t *testing.T, db, sql string) {
	pgtest.Exec(t, pair.Source, db, sql)
	pgtest.Exec(t, pair.Target, db, sql)
}

// A single changed byte in a 5-million-row table is found and located.
func TestFindsOneChangedByteInFiveMillionRows(t *testing.T) {
	for _, c := range []interface {
		Exec(context.Context, string, string) error
	}{pair.Source, pair.Target} {
		if err := c.Exec(context.Background(), "postgres", "CREATE DATABASE big"); err != nil {
			t.Fatal(err)
		}
	}
	start := time.Now()
	both(t, "big", `CREATE UNLOGGED TABLE accounts (aid int NOT NULL, bid int, abalance int, filler text);
INSERT INTO accounts SELECT g, g / 100000, 0, 'filler ' || g FROM generate_series(1, 5000000) g;
ALTER TABLE accounts ADD PRIMARY KEY (aid); ANALYZE accounts;`)
	t.Logf("5M rows on both sides in %s", time.Since(start))
	start = time.Now()
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "big")
		pgtest.DropDatabases(t, pair.Target, "big")
	})
	spec := filter.Spec{IncludeDatabases: []string{"big"}}
	res, err := run(t, spec)
	if err != nil || res.Different != 0 || len(res.Tables) != 1 || res.Tables[0].SourceRows != 5000000 {
		t.Fatalf("identical tables: %v %+v", err, res)
	}

	t.Logf("verified identical tables in %s", time.Since(start))
	pgtest.Exec(t, pair.Target, "big", "UPDATE accounts SET filler = overlay(filler placing 'X' from 3 for 1) WHERE aid = 4242424")
	start = time.Now()
	res, err = run(t, spec)
	t.Logf("found the difference in %s", time.Since(start))
	var diff *verify.ErrDifferent
	if !errors.As(err, &diff) || diff.Tables != 1 {
		t.Fatalf("want 1 differing table, got %v", err)
	}
	tr := res.Tables[0]
	if tr.Match || len(tr.Diffs) != 1 || tr.SourceRows != tr.TargetRows {
		t.Fatalf("result %+v", tr)
	}
	d := tr.Diffs[0]
	if !strings.HasPrefix(d.Range, "aid in [") || len(d.Keys) != 1 || d.Keys[0] != "4242424 (differs)" {
		t.Errorf("difference not located: %+v", d)
	}
}

func TestDifferencesOfEveryShape(t *testing.T) {
	for _, c := range []interface {
		Exec(context.Context, string, string) error
	}{pair.Source, pair.Target} {
		if err := c.Exec(context.Background(), "postgres", "CREATE DATABASE shapes"); err != nil {
			t.Fatal(err)
		}
	}
	both(t, "shapes", `
CREATE TABLE same (id bigint PRIMARY KEY, v jsonb, f float8, ts timestamptz, m money);
INSERT INTO same SELECT g, jsonb_build_object('g', g), g / 3.0, '2024-01-01'::timestamptz + g * interval '1 s', g FROM generate_series(1, 1000) g;
CREATE TABLE textkey (code text PRIMARY KEY, n int);
INSERT INTO textkey SELECT 'c' || g, g FROM generate_series(1, 1000) g;
CREATE TABLE nokey (a int, b text);
INSERT INTO nokey SELECT g % 10, 'x' FROM generate_series(1, 100) g;
CREATE TABLE extra (id int PRIMARY KEY);
INSERT INTO extra SELECT generate_series(1, 100);
CREATE TABLE filtered (id int PRIMARY KEY, keep bool);
INSERT INTO filtered SELECT g, g % 2 = 0 FROM generate_series(1, 100) g;
CREATE TABLE empty (id int);`)
	pgtest.Exec(t, pair.Source, "shapes", "CREATE TABLE only_source (id int); INSERT INTO only_source VALUES (1)")
	pgtest.Exec(t, pair.Target, "shapes", `
UPDATE textkey SET n = -1 WHERE code = 'c500';
DELETE FROM nokey WHERE a = 3 AND ctid = (SELECT min(ctid) FROM nokey WHERE a = 3);
INSERT INTO extra VALUES (1000);
DELETE FROM filtered WHERE NOT keep;`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "shapes")
		pgtest.DropDatabases(t, pair.Target, "shapes")
	})
	res, err := run(t, filter.Spec{IncludeDatabases: []string{"shapes"}, TableFilters: []string{"filtered:keep"}, SchemaOnlyTables: []string{"empty"}})
	var diff *verify.ErrDifferent
	if !errors.As(err, &diff) {
		t.Fatalf("want differences, got %v", err)
	}
	got := byTable(res)
	for name, want := range map[string]bool{"public.same": true, "public.filtered": true, "public.empty": true,
		"public.textkey": false, "public.nokey": false, "public.extra": false, "public.only_source": false} {
		if got[name].Match != want {
			t.Errorf("%s: match %v, want %v (%+v)", name, got[name].Match, want, got[name])
		}
	}
	if d := got["public.textkey"].Diffs; len(d) != 1 || len(d[0].Keys) != 1 || d[0].Keys[0] != "c500 (differs)" {
		t.Errorf("textkey diffs %+v", d)
	}
	if d := got["public.extra"].Diffs; len(d) != 1 || d[0].Range != "id > 100" || d[0].Keys[0] != "1000 (only on target)" {
		t.Errorf("extra diffs %+v", d)
	}
	if tr := got["public.nokey"]; tr.SourceRows != 100 || tr.TargetRows != 99 || !strings.Contains(tr.Diffs[0].Range, "no key") {
		t.Errorf("nokey %+v", tr)
	}
	if got["public.only_source"].Note != "missing on the target" {
		t.Errorf("only_source %+v", got["public.only_source"])
	}
	if diff.Tables != 4 {
		t.Errorf("%d tables differ, want 4", diff.Tables)
	}
}
