// Command lagbench measures replication apply lag: it copies a pgbench database
// with `replicator init --sync` between two throwaway clusters, runs pgbench at a
// fixed rate on the source, and times heartbeats from their commit on the
// source to their arrival on the target. `go tool task bench:lag` runs it.
package main

import (
	"context"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

func main() {
	bin := flag.String("bin", "bin/replicator", "replicator binary")
	rate := flag.Int("rate", 500, "pgbench transactions per second")
	seconds := flag.Int("seconds", 60, "how long to measure")
	scale := flag.Int("scale", 10, "pgbench scale")
	flag.Parse()
	if err := run(*bin, *rate, *seconds, *scale); err != nil {
		fmt.Fprintln(os.Stderr, "lagbench:", err)
		os.Exit(1)
	}
}

func run(bin string, rate, seconds, scale int) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	common := map[string]string{"shared_buffers": "256MB", "max_wal_size": "4GB", "log_min_messages": "warning"}
	srcSettings := map[string]string{"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10"}
	for k, v := range common {
		srcSettings[k] = v
	}
	fmt.Println("starting source and target clusters")
	src, dst, err := pgcluster.StartPair(ctx, "lag", pgcluster.Options{Settings: srcSettings}, pgcluster.Options{Settings: common})
	if err != nil {
		return err
	}
	defer src.Stop()
	defer dst.Stop()
	if err := src.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	pgbench := filepath.Join(src.BinDir, "pgbench")
	if out, err := exec.Command(pgbench, "-i", "-q", "-s", fmt.Sprint(scale), src.URL("bench")).CombinedOutput(); err != nil {
		return fmt.Errorf("pgbench -i: %v %s", err, out)
	}
	if err := src.Exec(ctx, "bench", "CREATE TABLE heartbeat (id int PRIMARY KEY, sent timestamptz NOT NULL)"); err != nil {
		return err
	}
	fmt.Println("replicator init --sync")
	cmd := exec.Command(bin, "init", "--sync", "--replica-identity-full", "--no-roles", "--include-databases", "bench",
		"--source", src.URL("postgres"), "--target", dst.URL("postgres"))
	if out, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("init --sync: %v\n%s", err, out)
	}

	fmt.Printf("pgbench at %d tps for %ds, heartbeats every 100ms\n", rate, seconds)
	load := exec.Command(pgbench, "-n", "-c", "8", "-j", "2", "-R", fmt.Sprint(rate), "-T", fmt.Sprint(seconds), src.URL("bench"))
	loadOut := &strings.Builder{}
	load.Stdout, load.Stderr = loadOut, loadOut
	if err := load.Start(); err != nil {
		return err
	}
	sc, err := src.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	defer sc.Close(ctx)
	dc, err := dst.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	defer dc.Close(ctx)

	// sent[i] is when heartbeat i committed on the source; seen[i] when the
	// target first showed it (polled every 10ms).
	sent := map[int]time.Time{}
	var lags []float64
	end := time.Now().Add(time.Duration(seconds) * time.Second)
	next, id, seenUpTo := time.Now(), 0, 0
	for time.Now().Before(end) || seenUpTo < id {
		if time.Now().After(end.Add(30 * time.Second)) {
			return fmt.Errorf("heartbeat %d never arrived", seenUpTo+1)
		}
		if time.Now().After(next) && time.Now().Before(end) {
			id++
			if _, err := sc.Exec(ctx, "INSERT INTO heartbeat VALUES ($1, clock_timestamp())", id); err != nil {
				return err
			}
			sent[id] = time.Now()
			next = next.Add(100 * time.Millisecond)
		}
		var max *int
		if err := dc.QueryRow(ctx, "SELECT max(id) FROM heartbeat").Scan(&max); err != nil && err != pgx.ErrNoRows {
			return err
		}
		now := time.Now()
		for max != nil && seenUpTo < *max {
			seenUpTo++
			lags = append(lags, now.Sub(sent[seenUpTo]).Seconds())
		}
		time.Sleep(10 * time.Millisecond)
	}
	load.Wait()
	tps := "?"
	for _, l := range strings.Split(loadOut.String(), "\n") {
		if strings.HasPrefix(l, "tps = ") {
			tps = strings.Fields(l)[2]
		}
	}
	sort.Float64s(lags)
	pct := func(p float64) float64 { return lags[min(len(lags)-1, int(p*float64(len(lags))))] }
	fmt.Printf("\npgbench: %s tps achieved (asked %d), %d heartbeats\n", tps, rate, len(lags))
	fmt.Printf("apply lag: median %.1f ms, p99 %.1f ms, max %.1f ms (%.4f s / %.4f s)\n", 1000*pct(0.5), 1000*pct(0.99), 1000*lags[len(lags)-1], pct(0.5), pct(0.99))
	return nil
}
