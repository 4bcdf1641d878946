package pgtools

import (
	"strings"
	"testing"
	"time"
)

// The hint is for pg_dump before 16 (which locks table by table) over a
// distance that makes it cost: the measured case, 2000 tables 50 ms away,
// estimated at 100 s against the 104 s pg_dump 15 took.
func TestLatencyHint(t *testing.T) {
	old, batched := &Tools{Version: Version{15, 4}}, &Tools{Version: Version{16, 0}}
	if got := old.SchemaDumpWait(2000, 50*time.Millisecond); got != 100*time.Second {
		t.Errorf("estimate %s, want 100s", got)
	}
	msg, fix := old.LatencyHint(2000, 50*time.Millisecond, false)
	if !strings.Contains(msg, "pg_dump 15.4 locks its 2000 tables one round trip at a time") || !strings.Contains(msg, "about 1m40s") ||
		!strings.Contains(fix, "--pg-bin") || !strings.Contains(fix, "--remote") {
		t.Errorf("hint: %q: %q", msg, fix)
	}
	if _, fix := old.LatencyHint(2000, 50*time.Millisecond, true); strings.Contains(fix, "--remote") {
		t.Errorf("a worker's hint offers --remote: %q", fix)
	}
	for _, c := range []struct {
		tools  *Tools
		tables int
		rtt    time.Duration
	}{{batched, 2000, 50 * time.Millisecond}, {old, 2000, 200 * time.Microsecond}, {old, 50, 50 * time.Millisecond}} {
		if msg, _ := c.tools.LatencyHint(c.tables, c.rtt, false); msg != "" {
			t.Errorf("pg_dump %s, %d tables, %s: %q", c.tools.Version, c.tables, c.rtt, msg)
		}
	}
}
