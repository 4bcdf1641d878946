package main

import (
	"context"
	"fmt"
	"math/rand/v2"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

// benchCapture times a schema migration sent as one query string (as
// golang-migrate and psql -f with a single transaction send them), with
// and without the schema change capture of sync installed, at two sizes:
// the 600-statement string from the issue and 1 MB. The goal is at most
// 1.2x the time without capture. `go run ./tools/benchmark -capture`.
func benchCapture(c config) error {
	ctx := context.Background()
	settings := map[string]string{"wal_level": "logical", "shared_buffers": "512MB", "max_wal_size": "8GB", "log_min_messages": "warning"}
	fmt.Println("starting a source cluster")
	src, err := pgcluster.Start(ctx, pgcluster.Options{Name: "capture", Settings: settings})
	if err != nil {
		return err
	}
	defer src.Stop()
	// Wall time on a small machine swings with the disk (the migration
	// creates thousands of files); the server backend's CPU time does not,
	// so both are shown, medians of -rounds.
	fmt.Println("statements  bytes    wall: without  with    ratio   server CPU: without  with    ratio")
	for _, n := range []int{600, 0} {
		q := migration(n, 1<<20)
		count := strings.Count(q, ";\n")
		var wall, cpu [2][]float64
		for round := 0; round < c.rounds; round++ {
			for _, capture := range []bool{round%2 == 0, round%2 != 0} {
				d, used, err := runMigration(ctx, src, q, capture)
				if err != nil {
					return err
				}
				i := 0
				if capture {
					i = 1
				}
				wall[i] = append(wall[i], d.Seconds())
				cpu[i] = append(cpu[i], used.Seconds())
			}
		}
		w0, w1, c0, c1 := median(wall[0]), median(wall[1]), median(cpu[0]), median(cpu[1])
		fmt.Printf("%10d  %7d  %12.2fs  %5.2fs  %.2fx  %18.2fs  %5.2fs  %.2fx\n", count, len(q), w0, w1, w1/w0, c0, c1, c1/c0)
	}
	return nil
}

// backendCPU is the CPU time (user and system) the server process serving
// conn has used, from /proc (Linux).
func backendCPU(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	var pid int
	if err := conn.QueryRow(ctx, "SELECT pg_catalog.pg_backend_pid()").Scan(&pid); err != nil {
		return 0, err
	}
	b, err := os.ReadFile(fmt.Sprintf("/proc/%d/stat", pid))
	if err != nil {
		return 0, fmt.Errorf("server CPU time: %w", err)
	}
	// Fields after the command name (which may hold spaces): utime and
	// stime are the 14th and 15th of the line, in clock ticks (100 Hz).
	f := strings.Fields(string(b[strings.LastIndexByte(string(b), ')')+2:]))
	ut, _ := strconv.ParseInt(f[11], 10, 64)
	st, _ := strconv.ParseInt(f[12], 10, 64)
	return time.Duration(ut+st) * 10 * time.Millisecond, nil
}

// runMigration runs q in a fresh database, with the capture installed or
// not, and times it: wall time and the server's CPU time.
func runMigration(ctx context.Context, src *pgcluster.Cluster, q string, capture bool) (time.Duration, time.Duration, error) {
	if err := src.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS migrate WITH (FORCE)"); err != nil {
		return 0, 0, err
	}
	if err := src.Exec(ctx, "postgres", "CREATE DATABASE migrate"); err != nil {
		return 0, 0, err
	}
	conn, err := src.Connect(ctx, "migrate")
	if err != nil {
		return 0, 0, err
	}
	defer conn.Close(context.Background())
	if capture {
		if _, err := conn.Exec(ctx, "CREATE PUBLICATION replicator"); err != nil {
			return 0, 0, err
		}
		if err := replication.InstallCapture(ctx, conn, "replicator", true); err != nil {
			return 0, 0, err
		}
	}
	if _, err := conn.Exec(ctx, "CHECKPOINT"); err != nil {
		return 0, 0, err
	}
	cpu0, err := backendCPU(ctx, conn)
	if err != nil {
		return 0, 0, err
	}
	start := time.Now()
	_, err = conn.Exec(ctx, q)
	d := time.Since(start)
	cpu1, cerr := backendCPU(ctx, conn)
	if cerr != nil {
		return 0, 0, cerr
	}
	if err != nil {
		return 0, 0, fmt.Errorf("migration (capture %v): %w", capture, err)
	}
	if capture {
		var queued int
		if err := conn.QueryRow(ctx, "SELECT count(*) FROM replicator_ddl.queue WHERE unreplicated IS NULL").Scan(&queued); err != nil {
			return 0, 0, err
		}
		if queued == 0 {
			return 0, 0, fmt.Errorf("the capture queued nothing")
		}
	}
	return d, cpu1 - cpu0, nil
}

// migration writes a schema migration of n statements (0: as many as fit
// in size bytes): tables with keys, indexes, columns added, comments,
// functions with semicolons in their bodies, grants, a few rows.
func migration(n, size int) string {
	r := rand.New(rand.NewPCG(1, 2))
	var b strings.Builder
	b.WriteString("BEGIN;\n")
	for i := 0; ; i++ {
		if n > 0 && i >= n || n == 0 && b.Len() >= size {
			break
		}
		t := fmt.Sprintf("m_%d", i/6)
		switch i % 6 {
		case 0:
			fmt.Fprintf(&b, "CREATE TABLE %s (id bigint PRIMARY KEY, name text NOT NULL, created_at timestamptz NOT NULL DEFAULT now(), amount numeric(12,2));\n", t)
		case 1:
			fmt.Fprintf(&b, "CREATE INDEX %s_name ON %s (name) WHERE amount > %d;\n", t, t, r.IntN(100))
		case 2:
			fmt.Fprintf(&b, "ALTER TABLE %s ADD COLUMN note text, ADD COLUMN flag boolean NOT NULL DEFAULT false;\n", t)
		case 3:
			fmt.Fprintf(&b, "COMMENT ON TABLE %s IS 'table %d; part of the migration';\n", t, i)
		case 4:
			fmt.Fprintf(&b, "CREATE FUNCTION %s_touch() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN NEW.note := 'touched; again'; RETURN NEW; END $$;\n", t)
		case 5:
			fmt.Fprintf(&b, "INSERT INTO %s (id, name) VALUES (1, 'a'), (2, 'b;c');\n", t)
		}
	}
	b.WriteString("COMMIT;\n")
	return b.String()
}
