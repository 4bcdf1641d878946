package faults_test

import (
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"strconv"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// The target's disk fills mid-copy: one clear line naming the table and the
// file it could not extend, a non-zero exit; once there is room, the same
// command resumes and finishes.
//
// How it is simulated: the table lives in a tablespace that, on the target,
// is a 24 MB tmpfs (mounted by the test, which needs root; CI runs as root),
// and the table holds about 60 MB. The rest of the target is on the normal
// disk, so the server itself keeps running, as when a tablespace's volume
// fills. Freeing space is remounting the tmpfs larger.
func TestTargetDiskFull(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("mounting a small tmpfs for the target's tablespace needs root (CI runs as root)")
	}
	src, dst := ownTarget(t, "disk-src"), ownTarget(t, "disk-dst")
	pg, err := user.Lookup("postgres")
	if err != nil {
		t.Fatal(err)
	}
	uid, _ := strconv.Atoi(pg.Uid)
	gid, _ := strconv.Atoi(pg.Gid)
	base, err := os.MkdirTemp("", "replicator-disk-")
	if err != nil {
		t.Fatal(err)
	}
	os.Chmod(base, 0o755) // the postgres user goes through it
	srcSpace, dstSpace := filepath.Join(base, "src-space"), filepath.Join(base, "dst-space")
	for _, d := range []string{srcSpace, dstSpace} {
		if err := os.MkdirAll(d, 0o700); err != nil {
			t.Fatal(err)
		}
	}
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size=24m,mode=0700", "tmpfs", dstSpace).CombinedOutput(); err != nil {
		t.Fatalf("mount a tmpfs: %v %s", err, out)
	}
	t.Cleanup(func() {
		dst.Stop() // before the unmount: the server has files there
		exec.Command("umount", "-l", dstSpace).Run()
		os.RemoveAll(base)
	})
	for _, d := range []string{srcSpace, dstSpace} {
		if err := os.Chown(d, uid, gid); err != nil {
			t.Fatal(err)
		}
	}
	pgtest.Exec(t, src, "postgres", "CREATE TABLESPACE small LOCATION '"+srcSpace+"'")
	pgtest.Exec(t, dst, "postgres", "CREATE TABLESPACE small LOCATION '"+dstSpace+"'")
	pgtest.Exec(t, src, "postgres", "CREATE DATABASE shop")
	pgtest.Exec(t, src, "shop", `CREATE TABLE orders (id int PRIMARY KEY, note text);
		INSERT INTO orders SELECT g, 'o' || g FROM generate_series(1, 1000) g;
		CREATE TABLE big (id int PRIMARY KEY, payload text) TABLESPACE small;
		INSERT INTO big SELECT g, repeat(md5(g::text), 6) FROM generate_series(1, 250000) g`)

	args := []string{"init", "--no-roles", "--include-databases", "shop", "--source", src.URL("postgres"), "--target", dst.URL("postgres")}
	r := start(t, args...)()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	last := lines[len(lines)-1]
	if r.code == 0 || !strings.Contains(last, "the target ran out of disk space while copying public.big") ||
		!strings.Contains(last, "No space left on device") || !strings.Contains(last, "run the same command again") {
		t.Fatalf("init on a full disk (%d): want one line naming the table, the file and the fix:\n%s", r.code, r.stderr)
	}
	t.Logf("full: %s", last)
	// Room again: the same command resumes.
	if out, err := exec.Command("mount", "-o", "remount,size=256m", dstSpace).CombinedOutput(); err != nil {
		t.Fatalf("grow the tmpfs: %v %s", err, out)
	}
	r = start(t, args...)()
	if r.code != 0 || !strings.Contains(r.stderr+r.stdout, "resum") {
		t.Fatalf("the same command after freeing space (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if s, d := pgtest.TableHashes(t, src, "shop"), pgtest.TableHashes(t, dst, "shop"); len(s) != 2 || s["public.big"] != d["public.big"] || s["public.orders"] != d["public.orders"] {
		t.Errorf("rows differ:\nsource %v\ntarget %v", s, d)
	}
}
