package engine

import (
	"context"
	"fmt"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/retry"
	"github.com/replicatorhq/replicator/internal/testenv/faultproxy"
)

// ANALYZE by a role that does not own the table only warns and skips it, so
// the copy asks first (and says so) rather than count a table it did not
// analyze: the owner's members and superusers may, others may not.
func TestMayAnalyze(t *testing.T) {
	ctx := context.Background()
	conn, err := TestPair.Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	exec := func(sql string) {
		t.Helper()
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	exec(`CREATE ROLE ana_owner; CREATE ROLE ana_member IN ROLE ana_owner; CREATE ROLE ana_other;
	  CREATE TABLE ana_t (i int); ALTER TABLE ana_t OWNER TO ana_owner; GRANT SELECT ON ana_t TO ana_other`)
	// Before the deferred Close (a t.Cleanup would find it closed): the
	// other tests copy the target's postgres database and its roles.
	defer func() {
		if _, err := conn.Exec(context.Background(), "RESET ROLE; DROP TABLE ana_t; DROP ROLE ana_member, ana_other, ana_owner"); err != nil {
			t.Errorf("clean up: %v", err)
		}
	}()
	for _, c := range []struct {
		role string
		want bool
	}{{"ana_other", false}, {"ana_member", true}, {"ana_owner", true}, {"", true}} {
		exec("RESET ROLE")
		if c.role != "" {
			exec("SET ROLE " + c.role)
		}
		got, err := catalog.MayAnalyze(ctx, conn, `public."ana_t"`)
		if err != nil || got != c.want {
			t.Errorf("role %q: may analyze %v (%v), want %v", c.role, got, err, c.want)
		}
	}
	exec("RESET ROLE")
	// A table that is gone is left to ANALYZE to report.
	if got, err := catalog.MayAnalyze(ctx, conn, "public.no_such_table"); err != nil || !got {
		t.Errorf("missing table: %v %v", got, err)
	}
}

// The analyzer's session to the target is retried as a copier's is: a target
// restarting (refusing connections) when the analyzer first connects was a
// failed copy (found by TestTargetRestartAndRefusal, now and then).
func TestAnalyzerRetriesItsConnection(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	conn, err := TestPair.Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "CREATE TABLE ana_retry (i int); INSERT INTO ana_retry SELECT generate_series(1, 100)"); err != nil {
		t.Fatal(err)
	}
	defer func() {
		if _, err := conn.Exec(context.Background(), "DROP TABLE ana_retry"); err != nil {
			t.Errorf("clean up: %v", err)
		}
	}()
	p, dst := proxiedTarget(t)
	r, said := testRun(t)
	w := &dbWork{name: "postgres", dst: dst, analyze: make(chan *tableWork, 1)}
	w.analyze <- &tableWork{Table: &catalog.Table{Name: catalog.Name{Schema: "public", Name: "ana_retry"}}}
	close(w.analyze)
	p.Refuse(1500 * time.Millisecond)
	var count int
	var sum float64
	if err := r.analyzer(ctx, w, &span{}, &count, &sum); err != nil {
		t.Fatalf("analyzer: %v", err)
	}
	if count != 1 || p.Accepted() < 2 {
		t.Errorf("analyzed %d table(s) after %d connection attempt(s); want 1 after a refused one", count, p.Accepted())
	}
	if !strings.Contains(said(), "retrying") {
		t.Errorf("the refused connection was not said to be retried:\n%s", said())
	}
	var analyzed int
	if err := conn.QueryRow(ctx, "SELECT analyze_count FROM pg_stat_user_tables WHERE relname = 'ana_retry'").Scan(&analyzed); err != nil || analyzed != 1 {
		t.Errorf("analyze_count %d (%v), want 1", analyzed, err)
	}
}

// A target that stays away past the retry policy fails the copy (a resumed
// run analyzes what is left), rather than each table left waiting as long
// and being skipped with a warning.
func TestAnalyzerFailsWhenTheTargetStaysAway(t *testing.T) {
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	p, dst := proxiedTarget(t)
	r, said := testRun(t)
	r.opts.Retry = retry.Policy{Initial: 20 * time.Millisecond, Max: 50 * time.Millisecond, Elapsed: 10 * time.Second, Tries: 3}
	w := &dbWork{name: "postgres", dst: dst, analyze: make(chan *tableWork, 2)}
	for _, n := range []string{"gone_a", "gone_b"} {
		w.analyze <- &tableWork{Table: &catalog.Table{Name: catalog.Name{Schema: "public", Name: n}}}
	}
	close(w.analyze)
	p.Refuse(time.Minute)
	var count int
	var sum float64
	err := r.analyzer(ctx, w, &span{}, &count, &sum)
	if err == nil || !strings.HasPrefix(err.Error(), "ANALYZE public.gone_a: ") || count != 0 {
		t.Errorf("analyzer: %v (%d analyzed), want ANALYZE public.gone_a's connection failure", err, count)
	}
	if strings.Contains(said(), "gone_b") {
		t.Errorf("the next table waited too:\n%s", said())
	}
}

// proxiedTarget is the target's postgres database through a fault proxy,
// closed at the end of the test.
func proxiedTarget(t *testing.T) (*faultproxy.Proxy, *conninfo.Endpoint) {
	t.Helper()
	p, err := faultproxy.Start(fmt.Sprintf("127.0.0.1:%d", TestPair.Target.Port))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(p.Close)
	u, _ := url.Parse(TestPair.Target.URL("postgres"))
	u.Host = fmt.Sprintf("127.0.0.1:%d", p.Port())
	dst, err := conninfo.Parse("target", u.String())
	if err != nil {
		t.Fatal(err)
	}
	return p, dst
}
