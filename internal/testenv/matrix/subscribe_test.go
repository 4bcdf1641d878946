package matrix_test

import (
	"context"

	"strings"
	"testing"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// Who may create a subscription differs by major: before 16 only a
// superuser (or, on RDS and Aurora, a member of rds_superuser, by their own
// hook); from 16 on also a member of pg_create_subscription that may CREATE
// in the database, both required.
func TestWhoMaySubscribe(t *testing.T) {
	parallel(t)
	check := func(c *pgcluster.Cluster, role string) error {
		t.Helper()
		ctx := context.Background()
		conn, err := connectAs(ctx, c, role)
		if err != nil {
			t.Fatal(err)
		}
		defer conn.Close(ctx)
		di, err := catalog.ReadServer(ctx, conn)
		if err != nil {
			t.Fatal(err)
		}
		return replication.CheckTarget(ctx, conn, di)
	}
	c16 := start(t, "dst", 16, nil)
	pgtest.Exec(t, c16, "postgres", `CREATE ROLE subber LOGIN PASSWORD 'subber-pw' IN ROLE pg_create_subscription; CREATE ROLE plain LOGIN PASSWORD 'plain-pw';
		REVOKE CREATE ON DATABASE postgres FROM PUBLIC`)
	if err := check(c16, "subber"); err == nil || !strings.Contains(err.Error(), `GRANT CREATE ON DATABASE "postgres" TO "subber"`) {
		t.Errorf("16, pg_create_subscription without CREATE: %v", err)
	}
	pgtest.Exec(t, c16, "postgres", "GRANT CREATE ON DATABASE postgres TO subber")
	if err := check(c16, "subber"); err != nil {
		t.Errorf("16, pg_create_subscription with CREATE: %v", err)
	}
	if err := check(c16, "plain"); err == nil || !strings.Contains(err.Error(), "GRANT pg_create_subscription TO the role") {
		t.Errorf("16, an ordinary role: %v", err)
	}
	// Before 16: an ordinary role is refused; a member of rds_superuser (a
	// role of that name stands in for RDS's here) is let through.
	c14 := start(t, "dst", 14, nil)
	pgtest.Exec(t, c14, "postgres", `CREATE ROLE rds_superuser; CREATE ROLE rdsadmin LOGIN PASSWORD 'rdsadmin-pw' IN ROLE rds_superuser;
		CREATE ROLE plain LOGIN PASSWORD 'plain-pw'`)
	if err := check(c14, "plain"); err == nil || strings.Contains(err.Error(), "pg_create_subscription") {
		t.Errorf("14, an ordinary role: %v", err)
	}
	if err := check(c14, "rdsadmin"); err != nil {
		t.Errorf("14, a member of rds_superuser: %v", err)
	}
}

// connectAs connects to c's postgres database as role (password role-pw).
func connectAs(ctx context.Context, c *pgcluster.Cluster, role string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.URLAs(role, role+"-pw", "postgres"))
}

// A partitioned table is published whole from 13 on, but its partitions'
// updates and deletes need each partition's own replica identity: a keyless
// partition is named before anything changes.
func TestKeylessPartitionIsNamed(t *testing.T) {
	parallel(t)
	src := start(t, "src", 14, pgtest.LogicalSettings)
	dst := start(t, "dst", 16, nil)
	for _, c := range []*pgcluster.Cluster{src, dst} {
		pgtest.Exec(t, c, "postgres", "CREATE DATABASE parts")
		pgtest.Exec(t, c, "parts", `CREATE TABLE log (at date NOT NULL, msg text) PARTITION BY RANGE (at);
			CREATE TABLE log_2024 PARTITION OF log FOR VALUES FROM ('2024-01-01') TO ('2025-01-01')`)
	}
	r := replicator(t, "sync", "--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", "parts")
	if r.code == 0 || !strings.Contains(r.stderr, "public.log_2024") || !strings.Contains(r.stderr, "ALTER TABLE public.log_2024 REPLICA IDENTITY FULL") {
		t.Fatalf("sync with a keyless partition (%d):\n%s", r.code, r.stderr)
	}
	if got := pgtest.Query(t, src, "parts", "SELECT count(*) FROM pg_publication"); got[0] != "0" {
		t.Errorf("a publication was created: %v", got)
	}
}
