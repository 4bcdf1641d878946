package main_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// init analyzes each table once its rows and indexes are in, so that the
// target has planner statistics when the copy says it is done (pgcopydb's
// clone does VACUUM ANALYZE); --skip-analyze leaves them out, and says so.
func TestInitAnalyzes(t *testing.T) {
	t.Parallel()
	const db = "analyzed"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	pgtest.Exec(t, pair.Source, db, `CREATE TABLE a (id int PRIMARY KEY, v text); INSERT INTO a SELECT g, md5(g::text) FROM generate_series(1, 5000) g;
	  CREATE INDEX a_lower ON a (lower(v)); CREATE TABLE b (id int); INSERT INTO b SELECT generate_series(1, 100)`)
	t.Cleanup(func() {
		pgtest.DropDatabases(t, pair.Source, db)
		pgtest.DropDatabases(t, pair.Target, db)
	})
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db, "--no-roles"}
	// analyze_count counts ANALYZE run by hand (or by us), not autovacuum's.
	counts := `SELECT relname || '=' || analyze_count FROM pg_stat_user_tables ORDER BY 1`
	r := replicator(t, nil, append([]string{"init"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "  analyze") || !strings.Contains(r.stdout, "Every copied table was analyzed") {
		t.Fatalf("init: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, counts); !reflect.DeepEqual(got, []string{"a=1", "b=1"}) {
		t.Errorf("analyzed tables: %v", got)
	}
	// The expression index has its statistics: ANALYZE ran after it was built.
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) > 0 FROM pg_stats WHERE tablename = 'a_lower'"); !reflect.DeepEqual(got, []string{"true"}) {
		t.Errorf("no statistics for the expression index: %v", got)
	}
	r = replicator(t, nil, append([]string{"init", "--skip-analyze", "--drop-existing", "--yes"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "Planner statistics are not copied (--skip-analyze)") {
		t.Fatalf("init --skip-analyze: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, counts); !reflect.DeepEqual(got, []string{"a=0", "b=0"}) {
		t.Errorf("--skip-analyze analyzed: %v", got)
	}
}
