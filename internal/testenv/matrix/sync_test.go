package matrix_test

import (
	"encoding/json"
	"fmt"
	"os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// init --sync across majors with pgbench writing throughout, for the
// near-zero-downtime upgrades sync exists for: 12 into 17, 14 into 16, and
// 17 into 18 (a source that records since when a slot has had no reader).
// A schema change made while it replicates reaches the target before the
// rows that use it (event triggers, on every major).
// The source has a partitioned table (12 cannot publish one: its partitions
// are published instead) and a sequence; once the subscription catches up
// the two sides hold the same rows, status reads both servers, and sync
// --stop removes every replication object.
func TestSyncAcrossMajors(t *testing.T) {
	for _, p := range []struct{ src, dst int }{{12, 17}, {14, 16}, {17, 18}} {
		t.Run(fmt.Sprintf("%d-to-%d", p.src, p.dst), func(t *testing.T) {
			parallel(t)
			src := start(t, "src", p.src, pgtest.LogicalSettings)
			dst := start(t, "dst", p.dst, nil)
			const db = "bench"
			pgtest.Exec(t, src, "postgres", "CREATE DATABASE "+db)
			pgbench := filepath.Join(pgcluster.SystemBinDir(t), "pgbench")
			if out, err := exec.Command(pgbench, "-i", "-q", "-s", "2", src.URL(db)).CombinedOutput(); err != nil {
				t.Fatalf("pgbench -i: %v %s", err, out)
			}
			pgtest.Exec(t, src, db, `
				CREATE TABLE events (id bigserial, at date NOT NULL DEFAULT current_date, v text, PRIMARY KEY (id, at)) PARTITION BY RANGE (at);
				CREATE TABLE events_old PARTITION OF events FOR VALUES FROM ('2000-01-01') TO ('2025-01-01');
				CREATE TABLE events_new PARTITION OF events FOR VALUES FROM ('2025-01-01') TO ('2100-01-01');
				INSERT INTO events (at, v) SELECT '2024-06-01'::date + g % 400, 'seed' FROM generate_series(1, 1000) g`)
			script := pgtest.WriteFile(t, "events.sql", "INSERT INTO events (v) VALUES (md5(random()::text));\nUPDATE events SET v = 'u' WHERE id = (SELECT max(id) - 5 FROM events);\n", 0o644)
			bench := exec.Command(pgbench, "-n", "-c", "2", "-T", "12", src.URL(db))
			events := exec.Command(pgbench, "-n", "-c", "1", "-T", "12", "-f", script, src.URL(db))
			var benchOut strings.Builder
			bench.Stdout, bench.Stderr = &benchOut, &benchOut
			for _, c := range []*exec.Cmd{bench, events} {
				if err := c.Start(); err != nil {
					t.Fatal(err)
				}
			}
			time.Sleep(time.Second)
			conn := []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", db}
			r := replicator(t, append([]string{"init", "--sync", "--replica-identity-full", "--no-roles"}, conn...)...)
			bench.Wait()
			events.Wait()
			if r.code != 0 {
				t.Fatalf("init --sync (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(benchOut.String(), "tps") {
				t.Fatalf("pgbench did not run: %s", benchOut.String())
			}
			pgtest.Exec(t, src, db, "ALTER TABLE pgbench_accounts ADD COLUMN note text")
			pgtest.Exec(t, src, db, "UPDATE pgbench_accounts SET note = 'after the change' WHERE aid <= 100")
			lsn := pgtest.Query(t, src, "postgres", "SELECT pg_current_wal_insert_lsn()::text")[0]
			deadline := time.Now().Add(time.Minute)
			for {
				rows := pgtest.Query(t, src, "postgres", "SELECT confirmed_flush_lsn >= $1::pg_lsn FROM pg_replication_slots", lsn)
				if len(rows) == 1 && rows[0] == "true" {
					break
				}
				if time.Now().After(deadline) {
					t.Fatalf("the subscription did not catch up: %v", rows)
				}
				time.Sleep(50 * time.Millisecond)
			}
			if s, d := pgtest.TableHashes(t, src, db), pgtest.TableHashes(t, dst, db); !reflect.DeepEqual(s, d) {
				t.Fatalf("target differs after catch-up:\nsource %v\ntarget %v", s, d)
			}
			if n := pgtest.Query(t, dst, db, "SELECT count(*) > 100 FROM pgbench_history"); n[0] != "true" {
				t.Errorf("no pgbench transactions replicated")
			}
			r = replicator(t, append([]string{"status", "--json"}, conn...)...)
			var st struct {
				Databases []struct {
					State  string                          `json:"state"`
					Tables []struct{ Table, State string } `json:"tables"`
				} `json:"databases"`
			}
			if err := json.Unmarshal([]byte(r.stdout), &st); err != nil || len(st.Databases) != 1 || st.Databases[0].State != "streaming" {
				t.Fatalf("status --json (%v): %s %s", err, r.stdout, r.stderr)
			}
			if p.src >= 17 {
				// Stopped: status says since when the slot has had no reader.
				pgtest.Exec(t, dst, db, "ALTER SUBSCRIPTION replicator DISABLE")
				deadline := time.Now().Add(30 * time.Second)
				for !strings.Contains(replicator(t, append([]string{"status"}, conn...)...).stdout, "the source's slot has had no reader since") {
					if time.Now().After(deadline) {
						t.Fatalf("status does not say since when the slot is idle")
					}
					time.Sleep(200 * time.Millisecond)
				}
				pgtest.Exec(t, dst, db, "ALTER SUBSCRIPTION replicator ENABLE")
			}
			r = replicator(t, append([]string{"sync", "--stop", "--sequences"}, conn...)...)
			if r.code != 0 {
				t.Fatalf("sync --stop: %d %s %s", r.code, r.stdout, r.stderr)
			}
			if s, d := pgtest.Query(t, src, db, "SELECT last_value FROM events_id_seq"), pgtest.Query(t, dst, db, "SELECT last_value FROM events_id_seq"); !reflect.DeepEqual(s, d) {
				t.Errorf("sequence at cut-over: source %v, target %v", s, d)
			}
			left := []string{
				pgtest.Query(t, src, "postgres", "SELECT count(*) FROM pg_replication_slots")[0],
				pgtest.Query(t, src, db, "SELECT count(*) FROM pg_publication")[0],
				pgtest.Query(t, dst, "postgres", "SELECT count(*) FROM pg_subscription")[0],
			}
			if !reflect.DeepEqual(left, []string{"0", "0", "0"}) {
				t.Errorf("slots, publications, subscriptions left: %v", left)
			}
		})
	}
}
