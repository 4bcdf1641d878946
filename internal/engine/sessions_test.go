package engine

import (
	"context"
	"fmt"
	osexec "os/exec"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/retry"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// testRun is a run with only what the steps under test use: quick retries,
// the client tools, and what it says (said).
func testRun(t *testing.T) (r *run, said func() string) {
	t.Helper()
	var mu sync.Mutex
	var events []string
	r = &run{opts: Options{
		Retry:              retry.Policy{Initial: 100 * time.Millisecond, Max: 500 * time.Millisecond, Elapsed: 30 * time.Second, Tries: 30},
		MaintenanceWorkMem: "64MB",
		Tools:              pgtest.Tools(t),
		Progress: progress.SinkFunc(func(e progress.Event) {
			mu.Lock()
			events = append(events, e.Message)
			mu.Unlock()
		}),
	}, tracker: progress.NewTracker(), cp: &checkpoints{recs: map[string]checkpoint.Record{}}}
	return r, func() string {
		mu.Lock()
		defer mu.Unlock()
		return strings.Join(events, "\n")
	}
}

// limitedRole creates a role allowed limit sessions at once and a target
// database it owns, holding tables t1..tn (and, on the source, the same
// tables with an index each); dropped at the end.
func limitedRole(t *testing.T, name string, limit, n int) *conninfo.Endpoint {
	t.Helper()
	var tables, indexes strings.Builder
	for i := 1; i <= n; i++ {
		fmt.Fprintf(&tables, "CREATE TABLE t%d (id int, v text); INSERT INTO t%d SELECT g, md5(g::text) FROM generate_series(1, 2000) g;", i, i)
		fmt.Fprintf(&indexes, "CREATE INDEX t%d_v ON t%d (v);", i, i)
	}
	pgtest.Exec(t, TestPair.Target, "postgres", fmt.Sprintf("CREATE ROLE %s LOGIN PASSWORD '%s-pw' CONNECTION LIMIT %d", name, name, limit))
	pgtest.Exec(t, TestPair.Target, "postgres", fmt.Sprintf("CREATE DATABASE %s OWNER %s", name, name))
	pgtest.Exec(t, TestPair.Target, name, "SET ROLE "+name+"; "+tables.String())
	pgtest.Exec(t, TestPair.Source, "postgres", "CREATE DATABASE "+name)
	pgtest.Exec(t, TestPair.Source, name, tables.String()+indexes.String())
	t.Cleanup(func() {
		pgtest.DropDatabases(t, TestPair.Source, name)
		pgtest.DropDatabases(t, TestPair.Target, name)
		pgtest.Exec(t, TestPair.Target, "postgres", "DROP ROLE "+name)
	})
	ep, err := conninfo.Parse("target", TestPair.Target.URLAs(name, name+"-pw", name))
	if err != nil {
		t.Fatal(err)
	}
	return ep
}

func indexCount(t *testing.T, db string) []string {
	return pgtest.Query(t, TestPair.Target, db, "SELECT count(*) FROM pg_indexes WHERE schemaname = 'public'")
}

// A target that has one session to spare for three index workers, taken by
// another client for their first second: two give their task back and leave
// at once (they retried "too many connections" for minutes), and the one
// left retries until the session is free, then builds every index.
func TestIndexWorkersLeaveWhenTheTargetIsFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 6
	dst := limitedRole(t, "ix_one", 1, n)
	r, said := testRun(t)
	w := &dbWork{name: "ix_one", dst: dst}
	ch := make(chan indexTask, 2*n)
	for i := 1; i <= n; i++ {
		name := fmt.Sprintf("t%d", i)
		tw := &tableWork{Table: &catalog.Table{Name: catalog.Name{Schema: "public", Name: name}}, indexes: []catalog.Index{{
			Name: catalog.Name{Schema: "public", Name: name + "_v"}, Def: fmt.Sprintf("CREATE INDEX %s_v ON public.%s USING btree (v)", name, name)}}}
		r.enqueueIndexes(w, tw, ch)
	}
	close(ch)
	other, err := dst.Connect(ctx)
	if err != nil {
		t.Fatal(err)
	}
	go func() {
		time.Sleep(time.Second)
		other.Close(context.Background())
	}()
	feed := newIndexFeed(ch, 3)
	g, gctx := errgroup.WithContext(ctx)
	for range 3 {
		g.Go(func() error { return r.indexWorker(gctx, w, feed, &span{}) })
	}
	if err := g.Wait(); err != nil {
		t.Fatalf("index workers: %v", err)
	}
	for _, want := range []string{"building indexes with 2 connection(s) from now on", "building indexes with 1 connection(s) from now on"} {
		if !strings.Contains(said(), want) {
			t.Errorf("not said: %q in\n%s", want, said())
		}
	}
	if got := indexCount(t, "ix_one"); !reflect.DeepEqual(got, []string{fmt.Sprint(n)}) {
		t.Errorf("indexes built: %v, want %d", got, n)
	}
}

// Post-data's pg_restore --jobs 4 opens 4 sessions at once (its leader's
// is closed while the workers run); a target with 1 to spare refuses its
// workers: the step runs again with half the jobs at once (2, then 1), not
// as many for minutes.
func TestPostDataLowersItsJobsWhenTheTargetIsFull(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), 2*time.Minute)
	defer cancel()
	const n = 6
	dst := limitedRole(t, "pd_one", 1, n)
	r, said := testRun(t)
	r.opts.IndexJobs = 4
	dir := t.TempDir()
	archive := filepath.Join(dir, "archive")
	if out, err := osexec.Command(r.opts.Tools.Path("pg_dump"), "-Fc", "-f", archive, "--dbname", TestPair.Source.URL("pd_one")).CombinedOutput(); err != nil {
		t.Fatalf("pg_dump: %v: %s", err, out)
	}
	w := &dbWork{name: "pd_one", dst: dst}
	resuming := false
	err := retry.Do(ctx, r.opts.Retry, func(err error, _ time.Duration) { t.Logf("retrying: %v", err) }, func() error {
		err := r.restorePostData(ctx, w, archive, dir, resuming)
		resuming = true
		return err
	})
	if err != nil {
		t.Fatalf("post-data: %v", err)
	}
	for _, want := range []string{"restoring with 2 connection(s) from now on", "restoring with 1 connection(s) from now on"} {
		if !strings.Contains(said(), want) {
			t.Errorf("not said: %q in\n%s", want, said())
		}
	}
	if w.postJobs != 1 {
		t.Errorf("post-data jobs %d, want 1", w.postJobs)
	}
	if got := indexCount(t, "pd_one"); !reflect.DeepEqual(got, []string{fmt.Sprint(n)}) {
		t.Errorf("indexes restored: %v, want %d", got, n)
	}
}
