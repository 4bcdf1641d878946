package engine

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/internal/catalog"
)

// On RDS and Aurora no role may be given REPLICATION: membership of
// rds_replication grants logical replication instead (AWS: "Performing
// logical replication for Amazon RDS for PostgreSQL"), and validate's own fix
// says GRANT rds_replication. The role must count as able to replicate.
func TestRDSReplicationRoleCounts(t *testing.T) {
	ctx := context.Background()
	conn, err := TestPair.Target.Connect(ctx, "postgres")
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, "CREATE ROLE rds_replication; CREATE ROLE rds_user; CREATE ROLE rds_other"); err != nil {
		t.Fatal(err)
	}
	defer func() { // before the deferred Close
		if _, err := conn.Exec(context.Background(), "RESET ROLE; DROP ROLE rds_user, rds_other, rds_replication"); err != nil {
			t.Errorf("clean up: %v", err)
		}
	}()
	if _, err := conn.Exec(ctx, "GRANT rds_replication TO rds_user"); err != nil {
		t.Fatal(err)
	}
	for role, want := range map[string]bool{"rds_user": true, "rds_other": false} {
		if _, err := conn.Exec(ctx, "SET ROLE "+role); err != nil {
			t.Fatal(err)
		}
		s, err := catalog.ReadServer(ctx, conn)
		if err != nil || s.Replication != want {
			t.Errorf("%s: replication %v (%v), want %v", role, s != nil && s.Replication, err, want)
		}
		conn.Exec(ctx, "RESET ROLE")
	}
}
