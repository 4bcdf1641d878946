// Command demo runs `replicator init` on a throwaway pair of local clusters with
// sample data, then shows that source and target agree. `go tool task demo` runs
// it; nothing outside a temporary directory is touched.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/devstack"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

//go:embed shop.sql
var shopSQL string

func main() {
	bin := flag.String("bin", "bin/replicator", "replicator binary to run")
	worker := flag.String("worker", "bin/worker", "worker binary for the emulated remote platform (\"\" skips the remote part)")
	scale := flag.Int("scale", 10, "pgbench scale of the sample 'bench' database (10 = 1M rows)")
	keep := flag.Bool("keep", false, "keep the clusters running until Ctrl-C")
	flag.Parse()
	if err := run(*bin, *worker, *scale, *keep); err != nil {
		fmt.Fprintln(os.Stderr, "demo:", err)
		os.Exit(1)
	}
}

func run(bin, worker string, scale int, keep bool) error {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt)
	defer stop()
	step := func(format string, args ...any) { fmt.Printf("\n==> "+format+"\n", args...) }

	step("starting two throwaway PostgreSQL clusters")
	settings := map[string]string{"max_wal_size": "2GB", "shared_buffers": "256MB", "fsync": "off"}
	src, dst, err := pgcluster.StartPair(ctx, "demo",
		pgcluster.Options{Password: "demo-source-pw", Settings: settings}, pgcluster.Options{Password: "demo-target-pw", Settings: settings})
	if err != nil {
		return err
	}
	defer src.Stop()
	defer dst.Stop()
	fmt.Printf("    source on 127.0.0.1:%d, target on 127.0.0.1:%d\n", src.Port, dst.Port)

	step("loading sample data: a 'shop' database (enums, FKs, views, partitions, large objects) and pgbench at scale %d", scale)
	for _, stmt := range []string{"CREATE ROLE shop_owner LOGIN PASSWORD 'shop-owner-pw'", "CREATE DATABASE shop OWNER shop_owner", "CREATE DATABASE bench"} {
		if err := src.Exec(ctx, "postgres", stmt); err != nil {
			return err
		}
	}
	if err := src.Exec(ctx, "shop", shopSQL); err != nil {
		return fmt.Errorf("load shop: %w", err)
	}
	pgbench := exec.CommandContext(ctx, filepath.Join(src.BinDir, "pgbench"), "-i", "-q", "-s", fmt.Sprint(scale), src.URL("bench"))
	if out, err := pgbench.CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v: %s", err, out)
	}

	step("replicator init --source %s --target %s", redacted(src), redacted(dst))
	cmd := exec.CommandContext(ctx, bin, "init", "--yes")
	cmd.Env = append(os.Environ(), "REPLICATOR_SOURCE="+src.URL("postgres"), "REPLICATOR_TARGET="+dst.URL("postgres"))
	cmd.Stdin, cmd.Stdout, cmd.Stderr = os.Stdin, os.Stdout, os.Stderr
	start := time.Now()
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("replicator init: %w", err)
	}
	fmt.Printf("    (took %s)\n", time.Since(start).Round(10*time.Millisecond))

	step("comparing source and target")
	if err := compare(ctx, src, dst); err != nil {
		return err
	}
	if worker != "" {
		if err := remote(ctx, bin, worker, src, dst, step, keep); err != nil {
			return err
		}
	} else if keep {
		envFile, err := writeEnv([]string{"REPLICATOR_SOURCE=" + src.URL("postgres"), "REPLICATOR_TARGET=" + dst.URL("postgres")})
		if err != nil {
			return err
		}
		defer os.Remove(envFile)
		step("clusters are running; Ctrl-C to stop them. From another shell: source %s\n    (source %s, target %s)", envFile, redacted(src), redacted(dst))
		<-ctx.Done()
	}
	step("done; the clusters are removed")
	return nil
}

func redacted(c *pgcluster.Cluster) string {
	return fmt.Sprintf("postgres://%s@127.0.0.1:%d/postgres", c.User, c.Port)
}

// compare prints per-table row counts and content hashes on both sides.
func compare(ctx context.Context, src, dst *pgcluster.Cluster) error {
	const q = `SELECT c.oid::regclass::text, (xpath('/row/c/text()', query_to_xml(format('SELECT count(*) AS c FROM ONLY %s', c.oid::regclass), false, true, '')))[1]::text,
	  (xpath('/row/h/text()', query_to_xml(format('SELECT md5(coalesce(string_agg(t::text, '''' ORDER BY t::text), '''')) AS h FROM ONLY %s t', c.oid::regclass), false, true, '')))[1]::text
	  FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
	  WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') ORDER BY 1`
	bad := 0
	for _, db := range []string{"shop", "bench"} {
		s, err := rows(ctx, src, db, q)
		if err != nil {
			return err
		}
		d, err := rows(ctx, dst, db, q)
		if err != nil {
			return err
		}
		names := make([]string, 0, len(s))
		for name := range s {
			names = append(names, name)
		}
		sort.Strings(names)
		for _, name := range names {
			sv := s[name]
			mark := "ok"
			if d[name] != sv {
				mark = "DIFFERENT"
				bad++
			}
			fmt.Printf("    %-8s %-32s %12s rows  %s\n", db, name, sv[0], mark)
		}
	}
	if bad > 0 {
		return fmt.Errorf("%d tables differ", bad)
	}
	fmt.Println("    every table has the same row count and content hash on both sides")
	return nil
}

func rows(ctx context.Context, c *pgcluster.Cluster, db, q string) (map[string][2]string, error) {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return nil, err
	}
	defer conn.Close(ctx)
	r, err := conn.Query(ctx, q)
	if err != nil {
		return nil, err
	}
	defer r.Close()
	out := map[string][2]string{}
	for r.Next() {
		var name, n, h string
		if err := r.Scan(&name, &n, &h); err != nil {
			return nil, err
		}
		out[name] = [2]string{n, h}
	}
	return out, r.Err()
}

// remote runs the same copy as a remote job on the emulated AWS platform: the
// CLI submits and watches; a worker process (standing in for an EC2 instance)
// copies.
func remote(ctx context.Context, bin, worker string, src, dst *pgcluster.Cluster, step func(string, ...any), keep bool) error {
	step("the same copy as a remote job: an emulated AWS account on loopback (moto_server for DynamoDB, Secrets Manager, EC2,\n    CloudWatch Logs, STS; the real Lambda handler behind a local SigV4-checking API; the real worker binary per instance)")
	worker, _ = filepath.Abs(worker)
	stack, err := devstack.Start(ctx, devstack.Options{WorkerBin: worker})
	if err != nil {
		return err
	}
	defer stack.Stop()
	fmt.Printf("    API %s, moto %s\n", stack.API.URL, stack.Gate.URL)
	step("replicator init --remote --include-databases shop --drop-existing --yes")
	run := func(args ...string) error {
		cmd := exec.CommandContext(ctx, bin, args...)
		cmd.Env = append(append(os.Environ(), stack.CallerEnv("alice")...),
			"REPLICATOR_SOURCE="+src.URL("postgres"), "REPLICATOR_TARGET="+dst.URL("postgres"))
		cmd.Stdout, cmd.Stderr = os.Stdout, os.Stderr
		return cmd.Run()
	}
	if err := run("init", "--remote", "--include-databases", "shop", "--drop-existing", "--yes", "--verify"); err != nil {
		return fmt.Errorf("replicator init --remote: %w", err)
	}
	step("replicator jobs list")
	if err := run("jobs", "list"); err != nil {
		return err
	}
	if keep {
		// The URLs hold the clusters' passwords: they go into a file only
		// this user reads, not on the screen.
		envFile, err := writeEnv(append(stack.CallerEnv("alice"), "REPLICATOR_SOURCE="+src.URL("postgres"), "REPLICATOR_TARGET="+dst.URL("postgres")))
		if err != nil {
			return err
		}
		defer os.Remove(envFile)
		step("the clusters and the emulated platform are running; Ctrl-C to stop them. From another shell:\n"+
			"    source %s     # the API, moto, alice's credentials, the source and target\n"+
			"    %s jobs list\n    %s init --remote --include-databases bench --drop-existing --yes\n"+
			"    (source %s, target %s; API %s, moto %s)", envFile, bin, bin, redacted(src), redacted(dst), stack.API.URL, stack.Gate.URL)
		<-ctx.Done()
	}
	return nil
}

// writeEnv writes shell exports of kvs into a file of this user's only.
func writeEnv(kvs []string) (string, error) {
	f, err := os.CreateTemp("", "replicator-demo-*.env")
	if err != nil {
		return "", err
	}
	defer f.Close()
	for _, kv := range kvs {
		k, v, _ := strings.Cut(kv, "=")
		fmt.Fprintf(f, "export %s=%q\n", k, v)
	}
	return f.Name(), f.Chmod(0o600)
}
