// Package pgtest helps tests that need real PostgreSQL servers: it starts
// throwaway clusters and compares a source and a target the way the copy's
// promise is stated (schema dumps equal, per-table row counts and content hashes
// equal). Missing PostgreSQL is a failure, never a skip: CI must notice.
package pgtest

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strings"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

// Pair is a source and a target cluster.
type Pair struct {
	Source, Target *pgcluster.Cluster
}

// LogicalSettings let a test source publish (logical replication).
var LogicalSettings = map[string]string{"wal_level": "logical", "max_replication_slots": "20", "max_wal_senders": "20"}

// StartPair starts two clusters for a package's tests (call from TestMain);
// sourceExtra settings apply to the source only.
func StartPair(name string, sourceExtra ...map[string]string) (*Pair, error) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	settings := map[string]string{}
	for k, v := range pgcluster.TestSettings {
		settings[k] = v
	}
	for _, extra := range sourceExtra {
		for k, v := range extra {
			settings[k] = v
		}
	}
	src, dst, err := pgcluster.StartPair(ctx, name,
		pgcluster.Options{Password: "src-pw-" + name, Settings: settings},
		pgcluster.Options{Password: "dst-pw-" + name, Settings: pgcluster.TestSettings})
	if err != nil {
		return nil, err
	}
	return &Pair{Source: src, Target: dst}, nil
}

// Stop stops both clusters.
func (p *Pair) Stop() {
	if p != nil {
		p.Source.Stop()
		p.Target.Stop()
	}
}

// Main runs a package's tests around a started pair; it fails loudly when
// PostgreSQL cannot start.
func Main(m *testing.M, name string, pair **Pair, sourceExtra ...map[string]string) {
	p, err := StartPair(name, sourceExtra...)
	if err != nil {
		fmt.Fprintf(os.Stderr, "pgtest: cannot start PostgreSQL clusters: %v\n", err)
		os.Exit(1)
	}
	*pair = p
	code := m.Run()
	p.Stop()
	os.Exit(code)
}

// Exec runs SQL in db as the superuser, failing the test on error.
func Exec(t testing.TB, c *pgcluster.Cluster, db, sql string) {
	t.Helper()
	if err := c.Exec(context.Background(), db, sql); err != nil {
		t.Fatalf("exec in %s: %v\nSQL: %.300s", db, err, sql)
	}
}

// Tools finds the client tools or fails.
func Tools(t testing.TB) *pgtools.Tools {
	t.Helper()
	tools, err := pgtools.Find(context.Background(), "")
	if err != nil {
		t.Fatal(err)
	}
	return tools
}

var dumpNoise = regexp.MustCompile(`^(--.*|SET .*|SELECT pg_catalog\.set_config.*|\\(un)?restrict .*|(CREATE|ALTER) EVENT TRIGGER replicator_ddl_.*|   EXECUTE FUNCTION replicator_ddl\.capture\(\);|)$`)

// SchemaDump is `pg_dump --schema-only --create` of db without comments, SET lines
// and blank lines: what must compare equal between source and target.
func SchemaDump(t testing.TB, c *pgcluster.Cluster, db string) string {
	t.Helper()
	tools := Tools(t)
	// Without replicator's own schema change capture (sync), which differs
	// between the sides by design.
	cmd := exec.Command(tools.Path("pg_dump"), "--schema-only", "--create", "--exclude-schema=replicator_ddl", "--dbname="+c.URL(db))
	out, err := cmd.Output()
	if err != nil {
		var stderr string
		if ee, ok := err.(*exec.ExitError); ok {
			stderr = string(ee.Stderr)
		}
		t.Fatalf("pg_dump %s: %v %s", db, err, stderr)
	}
	var kept []string
	for _, line := range strings.Split(string(out), "\n") {
		if !dumpNoise.MatchString(line) {
			kept = append(kept, line)
		}
	}
	return strings.Join(kept, "\n")
}

// WithoutReplication drops replication's own publication and subscription
// from a schema dump: the source has the first, the target the second, by
// design.
func WithoutReplication(dump string) string {
	var kept []string
	for _, l := range strings.Split(dump, "\n") {
		if !strings.Contains(l, " PUBLICATION replicator") && !strings.Contains(l, " SUBSCRIPTION replicator") {
			kept = append(kept, l)
		}
	}
	return strings.Join(kept, "\n")
}

// Diff lists the lines only in a (-) and only in b (+), for a failure
// message about two dumps.
func Diff(a, b string) string {
	count := map[string]int{}
	for _, l := range strings.Split(a, "\n") {
		count[l]++
	}
	for _, l := range strings.Split(b, "\n") {
		count[l]--
	}
	var out []string
	for _, l := range strings.Split(a, "\n") {
		if count[l] > 0 {
			out = append(out, "- "+l)
		}
	}
	for _, l := range strings.Split(b, "\n") {
		if count[l] < 0 {
			out = append(out, "+ "+l)
		}
	}
	return strings.Join(out, "\n")
}

// TableHashes returns, per user table, "rows:md5 of the rows as text in order".
func TableHashes(t testing.TB, c *pgcluster.Cluster, db string) map[string]string {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, `
SELECT c.oid::regclass::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
WHERE c.relkind = 'r' AND n.nspname <> 'information_schema' AND n.nspname !~ '^pg_' AND n.nspname <> 'replicator_ddl' ORDER BY 1`)
	if err != nil {
		t.Fatal(err)
	}
	names, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		t.Fatal(err)
	}
	out := map[string]string{}
	for _, name := range names {
		var n int64
		var h string
		err := conn.QueryRow(ctx, fmt.Sprintf(
			`SELECT count(*), md5(coalesce(string_agg(x.r, E'\n' ORDER BY x.r COLLATE "C"), '')) FROM (SELECT t::text AS r FROM ONLY %s t) x`, name)).Scan(&n, &h)
		if err != nil {
			t.Fatalf("hash %s: %v", name, err)
		}
		out[name] = fmt.Sprintf("%d:%s", n, h)
	}
	return out
}

// Query returns the rows of a query as strings, one line per row.
func Query(t testing.TB, c *pgcluster.Cluster, db, sql string, args ...any) []string {
	t.Helper()
	ctx := context.Background()
	conn, err := c.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	rows, err := conn.Query(ctx, sql, args...)
	if err != nil {
		t.Fatalf("query %q: %v", sql, err)
	}
	defer rows.Close()
	var out []string
	for rows.Next() {
		vals, err := rows.Values()
		if err != nil {
			t.Fatal(err)
		}
		parts := make([]string, len(vals))
		for i, v := range vals {
			parts[i] = fmt.Sprint(v)
		}
		out = append(out, strings.Join(parts, "|"))
	}
	if err := rows.Err(); err != nil {
		t.Fatal(err)
	}
	return out
}

// Databases lists the non-template databases of a cluster.
func Databases(t testing.TB, c *pgcluster.Cluster) []string {
	out := Query(t, c, "postgres", `SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1`)
	sort.Strings(out)
	return out
}

// WaitIdle waits until no session is connected to a database. A backend
// ends a moment after its client disconnects, so a test that counts sessions
// right after a command may otherwise see the command's last one.
func WaitIdle(t testing.TB, c *pgcluster.Cluster, db string) {
	t.Helper()
	for deadline := time.Now().Add(30 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		n := Query(t, c, "postgres", "SELECT count(*) FROM pg_stat_activity WHERE datname = $1", db)
		if len(n) == 1 && n[0] == "0" {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("database %s still has %v session(s) after 30 s", db, n)
		}
	}
}

// DropDatabases removes the named databases from a cluster (cleanup between tests).
func DropDatabases(t testing.TB, c *pgcluster.Cluster, names ...string) {
	t.Helper()
	for _, n := range names {
		Exec(t, c, "postgres", "DROP DATABASE IF EXISTS "+pgx.Identifier{n}.Sanitize()+" WITH (FORCE)")
	}
}

// WriteFile writes a file into the test's temp dir and returns its path.
func WriteFile(t testing.TB, name, content string, mode os.FileMode) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	if err := os.WriteFile(p, []byte(content), mode); err != nil {
		t.Fatal(err)
	}
	return p
}

// Major is the server's major version (server_version_num / 10000).
func Major(t testing.TB, c *pgcluster.Cluster) int {
	t.Helper()
	var n int
	if _, err := fmt.Sscan(Query(t, c, "postgres", "SHOW server_version_num")[0], &n); err != nil {
		t.Fatal(err)
	}
	return n / 10000
}
