package matrix_test

import (
	"fmt"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/fixture"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// The upgrades users run, each with the fidelity fixture: every major from 12
// into 17, 12 into 15 and 15 into 18. The target then holds the same rows,
// sequences, large objects, roles and objects (compared through the catalogs:
// pg_dump's text differs between majors), and verify, which compares rows as
// each server prints them, finds no difference.
func TestInitAcrossMajors(t *testing.T) {
	for _, p := range []struct{ src, dst int }{
		{12, 17}, {13, 17}, {14, 17}, {15, 17}, {16, 17}, {12, 15}, {15, 18}, {12, 14}, {17, 18},
	} {
		t.Run(fmt.Sprintf("%d-to-%d", p.src, p.dst), func(t *testing.T) {
			parallel(t)
			src := fidelitySource(t, p.src)
			dst := start(t, "dst", p.dst, nil)
			conn := []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", "fidelity"}
			r := replicator(t, append([]string{"validate"}, conn...)...)
			if r.code != 0 {
				t.Fatalf("validate (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			r = replicator(t, append([]string{"init"}, conn...)...)
			if r.code != 0 {
				t.Fatalf("init (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			r = replicator(t, append([]string{"verify"}, conn...)...)
			if r.code != 0 || strings.Contains(r.stdout, "DIFFERENT") {
				t.Errorf("verify (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if p.src >= 17 {
				// The copy and verify ran under the source's short
				// transaction_timeout, which the target now has too; the
				// comparisons below need longer.
				if got := pgtest.Query(t, dst, "postgres", `SELECT count(*) FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase
					WHERE d.datname = 'fidelity' AND 'transaction_timeout=100ms' = ANY (s.setconfig)`); got[0] != "1" {
					t.Errorf("the database's transaction_timeout was not copied")
				}
				for _, c := range []*pgcluster.Cluster{src, dst} {
					pgtest.Exec(t, c, "postgres", "ALTER DATABASE fidelity RESET transaction_timeout")
				}
			}
			fixture.Compare(t, src, dst, "fidelity")
			fixture.CompareRoles(t, src, dst)
			if n := len(fixture.Inventory(t, src, "fidelity", true)); n < 150 {
				t.Errorf("the inventory lists %d objects: too few to mean anything", n)
			}
		})
	}
}
