package faults_test

import (
	"strings"
	"testing"
	"time"
)

// Every connection of one side cut while the copy is in one of its steps:
// the run retries what broke and ends with the target equal to the source,
// nothing copied twice (pgbench_history has no key: a duplicate row would
// change its count).
func TestConnectionsCut(t *testing.T) {
	for _, phase := range []struct{ name, like string }{
		{"copy", "COPY % FROM STDIN%"},
		{"index-build", "CREATE UNIQUE INDEX pgbench_accounts_pkey%"},
		{"post-data", "%FOREIGN KEY%"},
	} {
		for _, side := range []string{"source", "target"} {
			t.Run(phase.name+"/"+side, func(t *testing.T) {
				db := database(t, "cut_"+strings.ReplaceAll(phase.name, "-", "_")+"_"+side)
				src, dst := proxy(t, pair.Source), proxy(t, pair.Target)
				wait := start(t, "init", "--no-roles", "--include-databases", db, "--stall-timeout", "10s", "-j", "2",
					"--source", via(pair.Source, src, "postgres"), "--target", via(pair.Target, dst, "postgres"))
				waitActivity(t, pair.Target, phase.like, time.Minute)
				cut := src
				if side == "target" {
					cut = dst
				}
				n := cut.Cut()
				r := wait()
				if r.code != 0 {
					t.Fatalf("init after %d %s connections were cut during %s (%d):\n%s", n, side, phase.name, r.code, r.stderr)
				}
				t.Logf("cut %d %s connections during %s; warnings:\n%s", n, side, phase.name, warnings(r.stdout+r.stderr))
				if side == "target" && !strings.Contains(r.stdout+r.stderr, "retrying") {
					t.Errorf("no retry reported after the target's connections were cut:\n%s", r.stderr)
				}
				same(t, pair.Source, pair.Target, db)
			})
		}
	}
}

// warnings picks the warning lines of an output.
func warnings(out string) string {
	var w []string
	for _, l := range strings.Split(out, "\n") {
		if strings.Contains(l, "retrying") || strings.Contains(l, "warning") || strings.Contains(l, "snapshot") {
			w = append(w, l)
		}
	}
	return strings.Join(w, "\n")
}
