package engine

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/internal/catalog"
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
