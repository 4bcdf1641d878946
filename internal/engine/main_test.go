package engine

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// TestPair is the source and target cluster every test of the package shares
// (exported to the external tests of package engine_test).
var TestPair *pgtest.Pair

func TestMain(m *testing.M) { pgtest.Main(m, "engine", &TestPair) }

// A part whose checkpoint says "committing" is settled by asking the target
// whether that transaction committed.
func TestTransactionCommitted(t *testing.T) {
	ctx := context.Background()
	conn, err := TestPair.Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var committed, aborted int64
	mustExec := func(sql string) {
		if _, err := conn.Exec(ctx, sql); err != nil {
			t.Fatal(err)
		}
	}
	mustExec("CREATE TEMP TABLE x (i int)")
	mustExec("BEGIN")
	conn.QueryRow(ctx, "INSERT INTO x VALUES (1) RETURNING txid_current()").Scan(&committed)
	mustExec("COMMIT")
	mustExec("BEGIN")
	conn.QueryRow(ctx, "INSERT INTO x VALUES (2) RETURNING txid_current()").Scan(&aborted)
	mustExec("ROLLBACK")
	for xid, want := range map[int64]bool{committed: true, aborted: false} {
		got, err := transactionCommitted(ctx, conn, uint64(xid))
		if err != nil || got != want {
			t.Errorf("xid %d: committed=%v err=%v, want %v", xid, got, err, want)
		}
	}
}
