package faults_test

import (
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// A connection that goes silent mid-COPY without closing (reads stall for 2
// minutes: what a client sees when the other end vanished behind a NAT, and
// which TCP does not notice while the client only waits to read) is noticed
// after --stall-timeout, said, cut and retried. (How long the copy takes is
// not asserted: on a loaded machine another connection of the proxy, an index
// build or a commit that had streamed before, can be caught in the stall and
// wait for TCP, which the proxy's kernel keeps answering.)
//
// The proxy's kernel still acknowledges packets, so keepalives cannot see
// this stall: it is the stall watchdog on the COPY stream that must.
func TestHalfOpenConnection(t *testing.T) {
	for _, side := range []string{"source", "target"} {
		t.Run(side, func(t *testing.T) {
			db := database(t, "halfopen_"+side)
			src, dst := proxy(t, pair.Source), proxy(t, pair.Target)
			if side == "source" {
				// The copy reads the source ahead while the target's schema is
				// restored: slowed down, the source is still streaming when
				// the target's COPY begins, and the stall cuts into it.
				src.SetBandwidth(20 << 20)
			}
			wait := start(t, "init", "--no-roles", "--include-databases", db, "--stall-timeout", "3s", "-j", "2",
				"--source", via(pair.Source, src, "postgres"), "--target", via(pair.Target, dst, "postgres"))
			waitActivity(t, pair.Target, "COPY % FROM STDIN%", time.Minute)
			stalled := src
			if side == "target" {
				stalled = dst
			}
			// The connections streaming the big table: an index build or a
			// commit on another stalled connection would wait for TCP, which
			// the proxy's kernel keeps answering (see the README).
			for deadline := time.Now().Add(time.Minute); stalled.StallBusy(2*time.Minute, 4<<20) == 0; time.Sleep(5 * time.Millisecond) {
				if time.Now().After(deadline) {
					t.Fatal("no connection streamed 4 MB")
				}
			}
			r := wait()
			if r.code != 0 {
				t.Fatalf("init (%d):\n%s", r.code, r.stderr)
			}
			if !strings.Contains(r.stderr, "the "+side+" stopped answering") || !strings.Contains(r.stderr, "retrying") {
				t.Errorf("the stalled %s was not reported and retried:\n%s", side, r.stderr)
			}
			same(t, pair.Source, pair.Target, db)
		})
	}
}

// The target restarted (pg_ctl restart -m fast) in the middle of the copy,
// and, separately, refusing connections for 30 s after a cut: the run waits
// and retries without a manual step.
func TestTargetRestartAndRefusal(t *testing.T) {
	t.Run("restart", func(t *testing.T) {
		db := database(t, "restart")
		dst := ownTarget(t, "restart")
		wait := start(t, "init", "--no-roles", "--include-databases", db, "-j", "2",
			"--source", pair.Source.URL("postgres"), "--target", dst.URL("postgres"))
		waitActivity(t, dst, "COPY % FROM STDIN%", time.Minute)
		if err := dst.Restart(context.Background()); err != nil {
			t.Fatal(err)
		}
		r := wait()
		if r.code != 0 || !strings.Contains(r.stderr, "retrying") {
			t.Fatalf("init across a target restart (%d):\n%s", r.code, r.stderr)
		}
		same(t, pair.Source, dst, db)
	})
	t.Run("refused", func(t *testing.T) {
		db := database(t, "refused")
		dst := proxy(t, pair.Target)
		wait := start(t, "init", "--no-roles", "--include-databases", db, "-j", "2",
			"--source", pair.Source.URL("postgres"), "--target", via(pair.Target, dst, "postgres"))
		waitActivity(t, pair.Target, "COPY % FROM STDIN%", time.Minute)
		dst.Refuse(30 * time.Second)
		dst.Cut()
		r := wait()
		if r.code != 0 || !strings.Contains(r.stderr, "retrying") {
			t.Fatalf("init across 30 s of refused connections (%d):\n%s", r.code, r.stderr)
		}
		same(t, pair.Source, pair.Target, db)
	})
}

// ownTarget starts a target cluster for one test (one that restarts it).
func ownTarget(t *testing.T, name string) *pgcluster.Cluster {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	c, err := pgcluster.Start(ctx, pgcluster.Options{Name: "faults-" + name, Password: "own-pw-" + name, Settings: pgcluster.TestSettings})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Stop() })
	return c
}

var (
	_ = os.Getenv
	_ = exec.Command
	_ = filepath.Join
	_ = pgtest.Exec
)
