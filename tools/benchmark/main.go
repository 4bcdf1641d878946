// Command benchmark times `replicator init` against `pgcopydb clone` and
// `pg_dump | pg_restore` on the same data, in the same run: it builds the reference
// data set on a throwaway source cluster, copies it into fresh target databases
// several rounds (tools in rotating order), and prints median wall times, ratios
// and replicator's peak RSS. `go tool task bench` runs it.
package main

import (
	"context"
	_ "embed"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

// embeddedDataset is a copy of ../shared/bench/dataset.sh, used when the shared
// one is not beside the checkout.
//
//go:embed dataset.sh
var embeddedDataset []byte

type tool struct {
	name string
	run  func(ctx context.Context) (time.Duration, int64, error)
}

func main() {
	bin := flag.String("bin", "bin/replicator", "replicator binary")
	scale := flag.Int("scale", 50, "data set scale (50 = about 1.3 GB)")
	rounds := flag.Int("rounds", 3, "rounds per tool")
	dataset := flag.String("dataset", "../shared/bench/dataset.sh", "data set script")
	only := flag.String("only", "", "comma-separated tools to run (replicator,pgcopydb,pg_dump)")
	extra := flag.String("replicator-args", "", "extra arguments for replicator init")
	flag.Parse()
	if err := run(*bin, *dataset, *scale, *rounds, *only, *extra); err != nil {
		fmt.Fprintln(os.Stderr, "benchmark:", err)
		os.Exit(1)
	}
}

func run(bin, dataset string, scale, rounds int, only, extra string) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	// The same settings on both sides, for every tool: a modest production-like
	// configuration with durability on.
	settings := map[string]string{
		"shared_buffers": "512MB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
		"max_connections": "100", "max_worker_processes": "16", "log_min_messages": "warning",
	}
	fmt.Println("starting source and target clusters")
	src, dst, err := pgcluster.StartPair(ctx, "bench", pgcluster.Options{Settings: settings}, pgcluster.Options{Settings: settings})
	if err != nil {
		return err
	}
	defer src.Stop()
	defer dst.Stop()
	binDir := src.BinDir

	fmt.Printf("building the data set at scale %d\n", scale)
	if err := src.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
		return err
	}
	script := dataset
	if _, err := os.Stat(script); err != nil {
		f, err := os.CreateTemp("", "dataset-*.sh")
		if err != nil {
			return err
		}
		f.Write(embeddedDataset)
		f.Close()
		defer os.Remove(f.Name())
		script = f.Name()
	}
	load := exec.Command("bash", script, src.URL("bench"), fmt.Sprint(scale))
	load.Env = append(os.Environ(), "PGBIN="+binDir)
	load.Stdout, load.Stderr = os.Stdout, os.Stderr
	if err := load.Run(); err != nil {
		return fmt.Errorf("dataset: %w", err)
	}
	// Settle: a checkpoint so that no tool pays for the load's dirty buffers.
	if err := src.Exec(ctx, "bench", "CHECKPOINT"); err != nil {
		return err
	}

	tools, err := pgtools.Find(ctx, binDir)
	if err != nil {
		return err
	}
	fresh := func(create bool) error {
		if err := dst.Exec(ctx, "postgres", "DROP DATABASE IF EXISTS bench WITH (FORCE)"); err != nil {
			return err
		}
		if create {
			if err := dst.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
				return err
			}
		}
		return dst.Exec(ctx, "postgres", "CHECKPOINT")
	}
	env := []string{"PGPASSWORD=" + src.Password}
	all := []tool{
		{"replicator", func(ctx context.Context) (time.Duration, int64, error) {
			if err := fresh(false); err != nil {
				return 0, 0, err
			}
			args := []string{"init", "--source", src.URL("postgres"), "--target", dst.URL("postgres"),
				"--include-databases", "bench", "--no-roles", "--pg-bin", binDir}
			if extra != "" {
				args = append(args, strings.Fields(extra)...)
			}
			return timed(exec.CommandContext(ctx, bin, args...), nil)
		}},
		{"pgcopydb", func(ctx context.Context) (time.Duration, int64, error) {
			if err := fresh(true); err != nil {
				return 0, 0, err
			}
			dir, _ := os.MkdirTemp("", "pgcopydb-")
			defer os.RemoveAll(dir)
			cmd := exec.CommandContext(ctx, "pgcopydb", "clone", "--source", src.URL("bench"), "--target", dst.URL("bench"),
				"--dir", dir, "--no-owner")
			return timed(cmd, env)
		}},
		{"pg_dump", func(ctx context.Context) (time.Duration, int64, error) {
			if err := fresh(true); err != nil {
				return 0, 0, err
			}
			pipe := fmt.Sprintf("%q -Fc -Z0 --dbname=%q | %q --dbname=%q", tools.Path("pg_dump"), src.URL("bench"), tools.Path("pg_restore"), dst.URL("bench"))
			return timed(exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", pipe), env)
		}},
	}
	var selected []tool
	for _, t := range all {
		if only == "" || strings.Contains(","+only+",", ","+t.name+",") {
			selected = append(selected, t)
		}
	}
	times := map[string][]float64{}
	var peakRSS int64
	for round := 0; round < rounds; round++ {
		for i := range selected {
			t := selected[(i+round)%len(selected)]
			d, rss, err := t.run(ctx)
			if err != nil {
				return fmt.Errorf("%s: %w", t.name, err)
			}
			if err := check(ctx, src, dst); err != nil {
				return fmt.Errorf("%s produced a different copy: %w", t.name, err)
			}
			times[t.name] = append(times[t.name], d.Seconds())
			if t.name == "replicator" && rss > peakRSS {
				peakRSS = rss
			}
			fmt.Printf("round %d  %-10s %6.2fs\n", round+1, t.name, d.Seconds())
		}
	}
	report(times, peakRSS, scale, rounds)
	return nil
}

// timed runs cmd and returns its wall time and peak RSS (bytes, the process and
// the children it waited for).
func timed(cmd *exec.Cmd, env []string) (time.Duration, int64, error) {
	cmd.Env = append(os.Environ(), env...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return 0, 0, fmt.Errorf("%v\n%s", err, tail(out.String(), 3000))
	}
	var rss int64
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		rss = ru.Maxrss * 1024
	}
	return d, rss, nil
}

// check compares row counts of the two big tables: a cheap guard that every tool
// really copied the data.
func check(ctx context.Context, src, dst *pgcluster.Cluster) error {
	q := "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM events), (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')"
	var a, b [3]int64
	for i, c := range []*pgcluster.Cluster{src, dst} {
		conn, err := c.Connect(ctx, "bench")
		if err != nil {
			return err
		}
		v := &a
		if i == 1 {
			v = &b
		}
		err = conn.QueryRow(ctx, q).Scan(&v[0], &v[1], &v[2])
		conn.Close(ctx)
		if err != nil {
			return err
		}
	}
	if a != b {
		return fmt.Errorf("source accounts/events/indexes %v, target %v", a, b)
	}
	return nil
}

func median(v []float64) float64 {
	s := append([]float64(nil), v...)
	sort.Float64s(s)
	if len(s)%2 == 1 {
		return s[len(s)/2]
	}
	return (s[len(s)/2-1] + s[len(s)/2]) / 2
}

func report(times map[string][]float64, peakRSS int64, scale, rounds int) {
	fmt.Printf("\nscale %d, %d rounds, median wall time:\n", scale, rounds)
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprintln(tw, "tool\tmedian\tmin\tmax\t")
	for _, name := range []string{"replicator", "pgcopydb", "pg_dump"} {
		v := times[name]
		if len(v) == 0 {
			continue
		}
		s := append([]float64(nil), v...)
		sort.Float64s(s)
		label := name
		if name == "pg_dump" {
			label = "pg_dump -Fc -Z0 | pg_restore"
		}
		fmt.Fprintf(tw, "%s\t%.2fs\t%.2fs\t%.2fs\t\n", label, median(v), s[0], s[len(s)-1])
	}
	tw.Flush()
	r := median(times["replicator"])
	if p := times["pgcopydb"]; len(p) > 0 && r > 0 {
		fmt.Printf("replicator / pgcopydb:  %.2f  (target <= 0.80)\n", r/median(p))
	}
	if p := times["pg_dump"]; len(p) > 0 && r > 0 {
		fmt.Printf("replicator / pg_dump:   %.2f  (target <= 0.70)\n", r/median(p))
	}
	if peakRSS > 0 {
		fmt.Printf("replicator peak RSS:    %.1f MB  (target < 150 MB)\n", float64(peakRSS)/(1<<20))
	}
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}
