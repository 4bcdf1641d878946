package main_test

import (
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// Strict names in every command that takes filters: an include pattern that
// matches nothing stops it before it changes anything, naming the pattern and
// what was probably meant; an exclude pattern that matches nothing is a
// warning. "Analytics Db" unquoted folds to "analytics db" and matched
// nothing, and init copied the other database only and succeeded.
func TestStrictNamesInEveryCommand(t *testing.T) {
	t.Parallel()
	pgtest.Exec(t, pair.Source, "postgres", `CREATE DATABASE strict_cli`)
	pgtest.Exec(t, pair.Source, "postgres", `CREATE DATABASE "Strict Analytics"`)
	pgtest.Exec(t, pair.Source, "strict_cli", "CREATE TABLE orders (id int PRIMARY KEY); INSERT INTO orders VALUES (1)")
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, "strict_cli", "Strict Analytics")
		pgtest.DropDatabases(t, pair.Target, "strict_cli", "Strict Analytics")
	})
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres")}
	// Only this test's databases: tests in parallel create their own on the
	// same target.
	ours := func() (got []string) {
		for _, d := range pgtest.Databases(t, pair.Target) {
			if d == "strict_cli" || d == "Strict Analytics" {
				got = append(got, d)
			}
		}
		return got
	}
	const folded = `--include-databases "Strict Analytics" matches no database: unquoted names are folded to lower case; to match "Strict Analytics", quote it: --include-databases '"Strict Analytics"'`
	for _, args := range [][]string{
		{"init", "--no-roles", "--include-databases", "strict_cli,Strict Analytics"},
		{"sync", "--include-databases", "strict_cli,Strict Analytics"},
		{"verify", "--include-databases", "strict_cli,Strict Analytics"},
	} {
		r := replicator(t, nil, append(args, conn...)...)
		assertOneLineError(t, r, folded)
	}
	r := replicator(t, nil, append([]string{"validate", "--include-databases", "strict_cli,Strict Analytics"}, conn...)...)
	if r.code == 0 || !strings.Contains(r.stdout+r.stderr, folded) {
		t.Errorf("validate: exit %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	r = replicator(t, nil, append([]string{"verify", "--include-databases", "strict_cli", "--include-tables", "order"}, conn...)...)
	assertOneLineError(t, r, `--include-tables "order" matches no table: did you mean "public.orders"?`)
	if after := ours(); len(after) != 0 {
		t.Errorf("the target changed: it has %v", after)
	}

	// An exclude that matches nothing warns, once, and the copy goes on.
	r = replicator(t, nil, append([]string{"init", "--no-roles", "--include-databases", `strict_cli,"Strict Analytics"`, "--exclude-tables", "audit_*"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init: %s", r.stderr)
	}
	if n := strings.Count(r.stderr, `--exclude-tables "audit_*" matches no table: nothing is excluded by it`); n != 1 {
		t.Errorf("the exclude warning is said %d times:\n%s", n, r.stderr)
	}
	if got := pgtest.Databases(t, pair.Target); !strings.Contains(strings.Join(got, ","), "Strict Analytics") {
		t.Errorf("the quoted name was not copied: %v", got)
	}
}
