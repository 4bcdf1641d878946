package matrix_test

import (
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

// A cut-over across majors, with pgbench writing to the source until the
// fence: every transaction pgbench committed is on the target. With
// --reverse (16 and later on both sides) the target replicates back from
// the switch on, status shows that direction, and --rollback switches back
// losing none of what was written on the target meanwhile; with --reverse
// again it replicates forward, and a second cut-over lifts the fence the
// rollback left on the target. A 12 source has
// no origin filtering: --reverse is refused there, with the reason, before
// any change.
func TestCutoverAcrossMajors(t *testing.T) {
	for _, p := range []struct{ src, dst int }{{12, 18}, {16, 17}} {
		t.Run(fmt.Sprintf("%d-to-%d", p.src, p.dst), func(t *testing.T) {
			parallel(t)
			src := start(t, "src", p.src, pgtest.LogicalSettings)
			dst := start(t, "dst", p.dst, pgtest.LogicalSettings)
			const db = "shop"
			pgtest.Exec(t, src, "postgres", "CREATE DATABASE "+db)
			pgbench := filepath.Join(pgcluster.SystemBinDir(t), "pgbench")
			if out, err := exec.Command(pgbench, "-i", "-q", "-s", "1", src.URL(db)).CombinedOutput(); err != nil {
				t.Fatalf("pgbench -i: %v %s", err, out)
			}
			pgtest.Exec(t, src, db, "ALTER TABLE pgbench_history ADD COLUMN id bigserial PRIMARY KEY")
			conn := []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", db}
			if r := replicator(t, append([]string{"init", "--sync", "--no-roles"}, conn...)...); r.code != 0 {
				t.Fatalf("init --sync: %d\n%s", r.code, r.stderr)
			}
			// pgbench writes until the fence ends its sessions.
			bench := exec.Command(pgbench, "-n", "-c", "2", "-T", "30", src.URL(db))
			var benchOut strings.Builder
			bench.Stdout, bench.Stderr = &benchOut, &benchOut
			if err := bench.Start(); err != nil {
				t.Fatal(err)
			}
			time.Sleep(2 * time.Second)
			if p.src < 16 {
				r := replicator(t, append([]string{"cutover", "--reverse"}, conn...)...)
				if r.code == 0 || !strings.Contains(r.stderr, "--reverse needs PostgreSQL 16 or later on both sides, for the origin filtering") {
					t.Errorf("--reverse from %d: %d\n%s", p.src, r.code, r.stderr)
				}
			}
			if p.src >= 16 {
				// Replication back subscribes on the source: a role that may
				// not is refused by the guardrails, not at the switch with
				// the source fenced.
				pgtest.Exec(t, src, "postgres", "CREATE ROLE cut_plain LOGIN REPLICATION PASSWORD 'plain-pw'")
				plain := []string{"--source", src.URLAs("cut_plain", "plain-pw", "postgres"), "--target", dst.URL("postgres"), "--include-databases", db}
				r := replicator(t, append([]string{"cutover", "--reverse", "--dry-run"}, plain...)...)
				if r.code == 0 || !strings.Contains(r.stderr, "--reverse subscribes on the source, where source role cut_plain may not create subscriptions") {
					t.Errorf("--reverse as a role that may not subscribe: %d\n%s", r.code, r.stderr)
				}
				pgtest.Exec(t, src, "postgres", "DROP ROLE cut_plain")
			}
			args := []string{"cutover"}
			if p.src >= 16 {
				args = append(args, "--reverse")
			}
			r := replicator(t, append(args, conn...)...)
			bench.Wait()
			if r.code != 0 {
				t.Fatalf("cutover: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			history := "SELECT count(*), max(id) FROM pgbench_history"
			if s, d := pgtest.Query(t, src, db, history), pgtest.Query(t, dst, db, history); !reflect.DeepEqual(s, d) || s[0] == "0|<nil>" {
				t.Fatalf("pgbench's transactions: source %v, target %v", s, d)
			}
			if s, d := pgtest.TableHashes(t, src, db), pgtest.TableHashes(t, dst, db); !reflect.DeepEqual(s, d) {
				t.Fatalf("the sides differ after the switch")
			}
			if p.src < 16 {
				return
			}
			// The application now writes to the target; the source follows.
			if out, err := exec.Command(pgbench, "-n", "-c", "2", "-t", "200", dst.URL(db)).CombinedOutput(); err != nil {
				t.Fatalf("pgbench on the new primary: %v %s", err, out)
			}
			st := replicator(t, append([]string{"status"}, conn...)...)
			if !strings.Contains(st.stdout, "shop (target → source)") {
				t.Errorf("status does not show the reverse direction:\n%s", st.stdout)
			}
			// Back, and replicating forward again from there (--reverse).
			r = replicator(t, append([]string{"cutover", "--rollback", "--reverse"}, conn...)...)
			if r.code != 0 {
				t.Fatalf("cutover --rollback --reverse: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if s, d := pgtest.TableHashes(t, src, db), pgtest.TableHashes(t, dst, db); !reflect.DeepEqual(s, d) {
				t.Fatalf("the sides differ after the rollback")
			}
			// The source is the primary again: writable, its fence lifted;
			// the target is fenced now, and follows the source.
			pgtest.Exec(t, src, db, "INSERT INTO pgbench_history (tid, bid, aid, delta, mtime) VALUES (1, 1, 1, 1, now())")
			fenced := `SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase, unnest(s.setconfig) c WHERE d.datname = 'shop' AND c = 'default_transaction_read_only=on'`
			if s, d := pgtest.Query(t, src, "postgres", fenced), pgtest.Query(t, dst, "postgres", fenced); s[0] != "0" || d[0] != "1" {
				t.Errorf("fences after the rollback: source %v, target %v", s, d)
			}
			// And over once more: the fence the rollback left on the target
			// goes, the source's comes.
			r = replicator(t, append([]string{"cutover"}, conn...)...)
			if r.code != 0 {
				t.Fatalf("cutover after the rollback: %d\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if s, d := pgtest.TableHashes(t, src, db), pgtest.TableHashes(t, dst, db); !reflect.DeepEqual(s, d) {
				t.Fatalf("the sides differ after the second cut-over")
			}
			if s, d := pgtest.Query(t, src, "postgres", fenced), pgtest.Query(t, dst, "postgres", fenced); s[0] != "1" || d[0] != "0" {
				t.Errorf("fences after the second cut-over: source %v, target %v", s, d)
			}
			left := []string{
				pgtest.Query(t, src, "postgres", "SELECT count(*) FROM pg_replication_slots")[0],
				pgtest.Query(t, dst, "postgres", "SELECT count(*) FROM pg_replication_slots")[0],
				pgtest.Query(t, src, "postgres", "SELECT count(*) FROM pg_subscription")[0],
				pgtest.Query(t, dst, "postgres", "SELECT count(*) FROM pg_subscription")[0],
			}
			if !reflect.DeepEqual(left, []string{"0", "0", "0", "0"}) {
				t.Errorf("replication left: %v", left)
			}
		})
	}
}
