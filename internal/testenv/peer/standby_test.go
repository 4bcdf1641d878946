package peer_test

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/loopback"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

// standbys are the standbys started and not yet stopped: TestMain stops
// what a failed test left running.
var (
	standbysMu sync.Mutex
	standbys   = map[*pgcluster.Cluster]bool{}
)

// asServerOwner runs a server program as the user that owns the clusters'
// files ("postgres" when the tests run as root, as pgcluster does).
func asServerOwner(cmd *exec.Cmd) error {
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
	cmd.Env = append(cmd.Env, "HOME="+u.HomeDir, "USER=postgres")
	return nil
}

// chownServerOwner gives a directory to the clusters' owner.
func chownServerOwner(path string) error {
	if os.Geteuid() != 0 {
		return nil
	}
	u, err := user.Lookup("postgres")
	if err != nil {
		return err
	}
	uid, _ := strconv.Atoi(u.Uid)
	gid, _ := strconv.Atoi(u.Gid)
	return os.Chown(path, uid, gid)
}

// startStandby starts a physical standby of the source cluster: a base
// backup (pg_basebackup -R, streaming) started as a hot standby on a port
// of its own. It is stopped when the test ends.
func startStandby(t *testing.T) *pgcluster.Cluster {
	t.Helper()
	dir, err := os.MkdirTemp("", "replicator-pg-peer-standby-")
	if err != nil {
		t.Fatal(err)
	}
	if err := os.Chmod(dir, 0o755); err != nil {
		t.Fatal(err)
	}
	if err := chownServerOwner(dir); err != nil {
		t.Fatal(err)
	}
	sb := &pgcluster.Cluster{Name: "peer-standby", Dir: dir, BinDir: pair.Source.BinDir, User: pair.Source.User, Password: pair.Source.Password}
	run := func(name string, args ...string) {
		t.Helper()
		ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
		defer cancel()
		cmd := exec.CommandContext(ctx, filepath.Join(sb.BinDir, name), args...)
		cmd.Dir = dir
		if err := asServerOwner(cmd); err != nil {
			t.Fatal(err)
		}
		cmd.Env = append(cmd.Env, "PGPASSWORD="+pair.Source.Password)
		if out, err := cmd.CombinedOutput(); err != nil {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("%s %v: %v\n%s\n%s", name, args, err, out, log)
		}
	}
	run("pg_basebackup", "-D", filepath.Join(dir, "data"), "-R", "-X", "stream", "--checkpoint=fast",
		"-d", fmt.Sprintf("host=127.0.0.1 port=%d user=%s dbname=postgres", pair.Source.Port, pair.Source.User))
	standbysMu.Lock()
	standbys[sb] = true
	standbysMu.Unlock()
	t.Cleanup(func() { stopStandby(sb) })
	for attempt := 0; ; attempt++ {
		port, err := loopback.FreePort()
		if err != nil {
			t.Fatal(err)
		}
		sb.Port = port
		cmd := exec.Command(filepath.Join(sb.BinDir, "pg_ctl"), "start", "-w", "-t", "60", "-D", filepath.Join(dir, "data"),
			"-l", filepath.Join(dir, "server.log"), "-o", fmt.Sprintf("-p %d -k %s -c hot_standby=on -c hot_standby_feedback=on", port, dir))
		cmd.Dir = dir
		if err := asServerOwner(cmd); err != nil {
			t.Fatal(err)
		}
		out, err := cmd.CombinedOutput()
		if err == nil {
			break
		}
		if attempt == 3 {
			log, _ := os.ReadFile(filepath.Join(dir, "server.log"))
			t.Fatalf("start the standby: %v\n%s\n%s", err, out, log)
		}
	}
	expect(t, sb, "postgres", "SELECT pg_is_in_recovery()", "true")
	return sb
}

// stopStandby stops a standby at once and removes its files.
func stopStandby(sb *pgcluster.Cluster) {
	standbysMu.Lock()
	defer standbysMu.Unlock()
	if !standbys[sb] {
		return
	}
	delete(standbys, sb)
	cmd := exec.Command(filepath.Join(sb.BinDir, "pg_ctl"), "stop", "-m", "immediate", "-w", "-D", filepath.Join(sb.Dir, "data"))
	if asServerOwner(cmd) == nil {
		if out, err := cmd.CombinedOutput(); err != nil && !strings.Contains(string(out), "No such file") {
			fmt.Fprintf(os.Stderr, "peer: stop the standby: %v: %s\n", err, out)
		}
	}
	os.RemoveAll(sb.Dir)
}

// stopStandbys stops every standby still running.
func stopStandbys() {
	standbysMu.Lock()
	var all []*pgcluster.Cluster
	for sb := range standbys {
		all = append(all, sb)
	}
	standbysMu.Unlock()
	for _, sb := range all {
		stopStandby(sb)
	}
}

// caughtUp waits until the standby has replayed everything the source has
// written so far.
func caughtUp(t *testing.T, sb *pgcluster.Cluster) {
	t.Helper()
	lsn := one(t, pair.Source, "postgres", "SELECT pg_current_wal_insert_lsn()::text")
	deadline := time.Now().Add(time.Minute)
	for one(t, sb, "postgres", "SELECT pg_last_wal_replay_lsn() >= $1::text::pg_lsn", lsn) != "true" {
		if time.Now().After(deadline) {
			t.Fatalf("the standby has not replayed up to %s in a minute", lsn)
		}
		time.Sleep(50 * time.Millisecond)
	}
}

// pgcopydb tests/pagila-standby: pagila copied from a physical standby of
// the source, with a filter on the partitions of public.payment (pgcopydb:
// [exclude-table] public.~/^payment_p/). replicator refuses a pattern that
// names partitions without their table, and says to use
// --schema-only-tables; with it, and a --table-filter on another
// partition, the partitions' rows are left out or filtered, the others
// copied. The standby's replay is paused before rows are added on the
// primary: the copy has the standby's rows, not the primary's.
func TestPeerStandbyPartitions(t *testing.T) {
	const db = "standby"
	cleanup(t, []string{db})
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	sb := startStandby(t)
	loadPagila(t, pair.Source.URL(db), true)
	caughtUp(t, sb)
	sql(t, sb, "postgres", "SELECT pg_wal_replay_pause()")
	sql(t, pair.Source, db, `INSERT INTO payment (customer_id, staff_id, rental_id, amount, payment_date)
		SELECT 1, 1, 1, 99.99, '2022-05-15' FROM generate_series(1, 10)`)
	expect(t, pair.Source, db, "SELECT count(*) FROM payment_p2022_05", "2687")
	expect(t, sb, db, "SELECT count(*) FROM payment_p2022_05", "2677")

	base := []string{"init", "--source", sb.URL("postgres"), "--target", pair.Target.URL("postgres"), "--no-roles", "--include-databases", db}
	// pgcopydb's filter, as a glob: refused before anything changes.
	r := replicator(t, append(base, "--exclude-tables", db+".public.payment_p*")...)
	refused(t, r, `--exclude-tables "standby.public.payment_p*" names partitions of public.payment`, "but not the table")
	if databaseOnTarget(t, db) {
		t.Fatal("the refused run created the target database")
	}
	// The way the refusal says: their rows left out; and one partition's
	// rows filtered.
	filters := []string{"--schema-only-tables", db + ".public.payment_p2022_01," + db + ".public.payment_p2022_02",
		"--table-filter", db + ".public.payment_p2022_03:amount > 5"}
	r = replicator(t, append(base, filters...)...)
	mustSucceed(t, "init from the standby", r)

	expect(t, pair.Target, db, `SELECT c.relname, c.relkind::text FROM pg_class c JOIN pg_inherits i ON i.inhrelid = c.oid
		WHERE i.inhparent = 'public.payment'::regclass ORDER BY 1`,
		"payment_p2022_01|r", "payment_p2022_02|r", "payment_p2022_03|r", "payment_p2022_04|r", "payment_p2022_05|r", "payment_p2022_06|r", "payment_p2022_07|r")
	expect(t, pair.Target, db, "SELECT relkind::text FROM pg_class WHERE oid = 'public.payment'::regclass", "p")
	expect(t, pair.Target, db, "SELECT count(*) FROM payment_p2022_01", "0")
	expect(t, pair.Target, db, "SELECT count(*) FROM payment_p2022_02", "0")
	expect(t, pair.Target, db, "SELECT count(*) FROM payment_p2022_03 WHERE amount <= 5", "0")
	if s, d := one(t, sb, db, "SELECT count(*) FROM payment_p2022_03 WHERE amount > 5"), one(t, pair.Target, db, "SELECT count(*) FROM payment_p2022_03"); s != d || s == "0" {
		t.Errorf("payment_p2022_03: %s rows on the target, %s on the standby with amount > 5", d, s)
	}
	for _, p := range []string{"payment_p2022_04", "payment_p2022_05", "payment_p2022_06", "payment_p2022_07"} {
		q := "SELECT count(*), md5(string_agg(t::text, ',' ORDER BY t::text)) FROM " + p + " t"
		if s, d := query(t, sb, db, q), query(t, pair.Target, db, q); strings.Join(s, "") != strings.Join(d, "") {
			t.Errorf("%s: standby %v, target %v", p, s, d)
		}
	}
	// The standby's rows, not the primary's.
	expect(t, pair.Target, db, "SELECT count(*) FROM payment_p2022_05", "2677")
	for table, want := range pagilaCounts {
		if !strings.HasPrefix(table, "public.payment_p") {
			expect(t, pair.Target, db, "SELECT count(*) FROM ONLY "+table, want)
		}
	}
	expect(t, pair.Target, db, "SELECT count(*) FROM payment", fmt.Sprint(2713-mustInt(t, one(t, sb, db, "SELECT count(*) FROM payment_p2022_03 WHERE amount <= 5"))+2547+2677+2654+2334))

	// verify, against the standby, with the same filters.
	verify(t, append([]string{"--source", sb.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}, filters...)...)
}

func mustInt(t *testing.T, s string) int {
	t.Helper()
	n, err := strconv.Atoi(s)
	if err != nil {
		t.Fatal(err)
	}
	return n
}
