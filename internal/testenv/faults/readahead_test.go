package faults_test

import (
	"context"
	"strings"
	"testing"
	"time"
)

// The copy reads the source while the target's schema is still being
// restored (a slow target: 100 ms round trips make pre-data take seconds),
// and the source's connections are cut while it does: the parts spooled so
// far are dropped and read again, nothing reaches the target twice, and the
// summary says what was read ahead.
func TestReadAheadSurvivesASourceCut(t *testing.T) {
	db := database(t, "readahead")
	src, dst := proxy(t, pair.Source), proxy(t, pair.Target)
	dst.SetLatency(50 * time.Millisecond)
	wait := start(t, "init", "--no-roles", "--include-databases", db, "-j", "2",
		"--source", via(pair.Source, src, "postgres"), "--target", via(pair.Target, dst, "postgres"))
	waitActivity(t, pair.Source, "COPY % TO STDOUT%", time.Minute)
	var loading int
	ctx := context.Background()
	conn, err := pair.Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM pg_stat_activity WHERE query ILIKE 'COPY % FROM STDIN%'`).Scan(&loading); err != nil {
		t.Fatal(err)
	}
	if loading > 0 {
		t.Fatal("the target was loading rows when the source's first COPY ran: nothing was read ahead")
	}
	n := src.Cut()
	r := wait()
	if r.code != 0 {
		t.Fatalf("init after %d source connections were cut while reading ahead (%d):\n%s", n, r.code, r.stderr)
	}
	out := r.stdout + r.stderr
	if !strings.Contains(out, "retrying") {
		t.Errorf("no retry reported after the source's connections were cut:\n%s", out)
	}
	if !strings.Contains(out, "read ahead") {
		t.Errorf("the summary does not say what was read ahead:\n%s", out)
	}
	t.Logf("%s", out)
	same(t, pair.Source, pair.Target, db)
}
