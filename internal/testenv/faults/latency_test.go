package faults_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// The latency hint's model, checked against real pg_dumps through the fault
// proxy: pg_dump 15 spends a round trip per table on the schema dump (its
// LOCK TABLEs), which the estimate (tables × round trip) is, and pg_dump 16
// and newer do not. validate says so, with the fix, for the old tools over a
// distance, and stays quiet with the new ones.
func TestLatencyHintForOldClientTools(t *testing.T) {
	const db, tables = "farschema", 300
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	t.Cleanup(func() { pgtest.DropDatabases(t, pair.Source, db) })
	pgtest.Exec(t, pair.Source, db, fmt.Sprintf(`DO $$ BEGIN FOR i IN 1..%d LOOP
	  EXECUTE pg_catalog.format('CREATE TABLE t%%s (id int PRIMARY KEY, v text)', i); END LOOP; END $$`, tables))
	old := pair.Source.BinDir // this machine's PostgreSQL 15
	newer, err := pgcluster.ClientBinDir()
	if err != nil {
		t.Fatalf("pg_dump %d for the comparison: %v (go tool task deps:pgmajors)", pgcluster.ClientMajor, err)
	}
	p := proxy(t, pair.Source)
	src := via(pair.Source, p, db)

	tripsOf := func(bin string) (pgtools.Version, int64) {
		t.Helper()
		tools, err := pgtools.Find(context.Background(), bin)
		if err != nil {
			t.Fatal(err)
		}
		p.ResetRoundTrips()
		cmd := exec.Command(filepath.Join(bin, "pg_dump"), "--schema-only", "-f", os.DevNull, "-d", src)
		cmd.Env = append(os.Environ(), "PGPASSWORD="+pair.Source.Password)
		if out, err := cmd.CombinedOutput(); err != nil {
			t.Fatalf("pg_dump %s: %v\n%s", tools.Version, err, out)
		}
		return tools.Version, p.RoundTrips()
	}
	oldV, oldTrips := tripsOf(old)
	newV, newTrips := tripsOf(newer)
	t.Logf("schema dump of %d tables: pg_dump %s %d round trips, pg_dump %s %d", tables, oldV, oldTrips, newV, newTrips)
	if oldV.Major >= pgtools.LockBatchSince || newV.Major < pgtools.LockBatchSince {
		t.Fatalf("the comparison needs a pg_dump before %d and one from it: have %s and %s", pgtools.LockBatchSince, oldV, newV)
	}
	// The estimate counts one round trip per table on top of what a
	// batched pg_dump needs: within a tenth, either way.
	if extra := oldTrips - newTrips; extra < tables*9/10 || extra > tables*11/10 {
		t.Errorf("pg_dump %s took %d round trips more than pg_dump %s for %d tables: the estimate's one per table is off", oldV, extra, newV, tables)
	}

	// 20 ms each way: 40 ms a round trip, 300 tables, 12 s estimated.
	p.SetLatency(20 * time.Millisecond)
	target := pair.Target.URL("postgres")
	r := start(t, "validate", "--source", src, "--target", target, "--include-databases", db, "--pg-bin", old)()
	if r.code != 0 || !strings.Contains(r.stdout, fmt.Sprintf("pg_dump %s locks its %d tables one round trip at a time", oldV, tables)) ||
		!strings.Contains(r.stdout, "point --pg-bin at newer client tools") {
		t.Errorf("validate with pg_dump %s 40 ms away: %d\n%s\n%s", oldV, r.code, r.stdout, r.stderr)
	}
	r = start(t, "validate", "--source", src, "--target", target, "--include-databases", db, "--pg-bin", newer)()
	if r.code != 0 || strings.Contains(r.stdout, "one round trip at a time") || !strings.Contains(r.stdout, "to the source") {
		t.Errorf("validate with pg_dump %s 40 ms away: %d\n%s\n%s", newV, r.code, r.stdout, r.stderr)
	}
}
