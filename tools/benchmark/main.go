// Command benchmark times `replicator init` against `pgcopydb clone` and
// `pg_dump | pg_restore` on the same data, in the same run: it builds a data
// set on a throwaway source cluster, copies it into fresh target databases
// several rounds (tools in rotating order), and prints median wall times,
// ratios and replicator's peak RSS. `go tool task bench` runs it.
//
// With -latency, every tool also copies through a proxy that delays each
// direction of the source connection by half that round trip (a worker
// reading a source in another region), in the same rounds; the report adds
// each tool's time against its own loopback time and the round trips it made
// per table. -shape tenants replaces the reference data set with 2000 small
// tables in 100 schemas (a multi-tenant shape, where round trips dominate).
// -capture times schema migrations with and without sync's schema change
// capture instead (capture.go).
package main

import (
	"cmp"
	"context"
	_ "embed"
	"encoding/json"
	"flag"
	"fmt"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"runtime"
	"sort"
	"strconv"
	"strings"
	"syscall"
	"text/tabwriter"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/remote/cost"
	"github.com/replicatorhq/replicator/internal/testenv/faultproxy"
	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

// verbose prints each tool's output (-v).
var verbose bool

// embeddedDataset is a copy of ../shared/bench/dataset.sh, used when the shared
// one is not beside the checkout.
//
//go:embed dataset.sh
var embeddedDataset []byte

type config struct {
	bin, dataset, only, extra, shape, pgBin string
	scale, rounds                           int
	latency                                 time.Duration
	capture                                 bool
}

func main() {
	var c config
	flag.StringVar(&c.bin, "bin", "bin/replicator", "replicator binary")
	flag.IntVar(&c.scale, "scale", 50, "reference data set scale (50 = about 1.3 GB)")
	flag.IntVar(&c.rounds, "rounds", 3, "rounds per tool")
	flag.StringVar(&c.dataset, "dataset", "../shared/bench/dataset.sh", "reference data set script")
	flag.StringVar(&c.only, "only", "", "comma-separated tools to run (replicator,replicator-skip-analyze,pgcopydb,pg_dump,pg_dump-analyze)")
	flag.StringVar(&c.extra, "replicator-args", "", "extra arguments for replicator init")
	flag.DurationVar(&c.latency, "latency", 0, "also copy through a proxy adding this round trip to the source (e.g. 50ms)")
	flag.StringVar(&c.shape, "shape", "reference", "data set: reference (pgbench and events, -scale) or tenants (2000 small tables)")
	flag.StringVar(&c.pgBin, "pg-bin", "", "client tools for every tool (default: the newest installed, as a user's)")
	flag.BoolVar(&verbose, "v", false, "print each tool's output")
	flag.BoolVar(&c.capture, "capture", false, "time a schema migration sent as one string with and without sync's schema change capture, instead of copies")
	flag.Parse()
	do := run
	if c.capture {
		do = benchCapture
	}
	if err := do(c); err != nil {
		fmt.Fprintln(os.Stderr, "benchmark:", err)
		os.Exit(1)
	}
}

// tool copies the source database bench (at srcURL's server) into a fresh
// target database; stats says how it leaves the target's planner statistics
// ("" for none), which the run checks, so that tools are compared like for
// like.
type tool struct {
	name, label, stats string
	run                func(ctx context.Context, srcURL func(db string) string) (time.Duration, usage, error)
}

// The tools, in the report's order: with planner statistics, then without.
var toolOrder = []string{"replicator", "pgcopydb", "pg_dump-analyze", "replicator-skip-analyze", "pg_dump"}

// sample is one timed copy.
type sample struct {
	seconds    float64
	roundTrips int64
	// steps are replicator's step times (its --json summary).
	steps map[string]float64
}

func run(c config) error {
	ctx := context.Background()
	bin, _ := filepath.Abs(c.bin)
	// The same settings on both sides, for every tool: a modest production-like
	// configuration with durability on.
	settings := map[string]string{
		"shared_buffers": "512MB", "max_wal_size": "8GB", "checkpoint_timeout": "30min",
		"max_connections": "200", "max_worker_processes": "16", "log_min_messages": "warning",
		"max_locks_per_transaction": "256",
	}
	fmt.Println("starting source and target clusters")
	src, dst, err := pgcluster.StartPair(ctx, "bench", pgcluster.Options{Settings: settings}, pgcluster.Options{Settings: settings})
	if err != nil {
		return err
	}
	defer src.Stop()
	defer dst.Stop()
	tables, err := load(ctx, c, src)
	if err != nil {
		return err
	}
	tools, err := pgtools.Find(ctx, c.pgBin)
	if err != nil {
		return err
	}
	fmt.Printf("client tools: pg_dump %s in %s\n", tools.Version, tools.Dir)

	all := copiers(ctx, c, bin, tools, src, dst)
	var selected []tool
	for _, t := range all {
		if c.only == "" || strings.Contains(","+c.only+",", ","+t.name+",") {
			selected = append(selected, t)
		}
	}

	// Every copy goes through a proxy, so that round trips are counted; it
	// delays only in the latency runs.
	proxy, err := faultproxy.Start("127.0.0.1:" + strconv.Itoa(src.Port))
	if err != nil {
		return err
	}
	defer proxy.Close()
	through := func(db string) string {
		u, _ := url.Parse(src.URL(db))
		u.Host = "127.0.0.1:" + strconv.Itoa(proxy.Port())
		return u.String()
	}
	modes := []time.Duration{0}
	if c.latency > 0 {
		modes = append(modes, c.latency)
	}
	samples := map[string]map[time.Duration][]sample{}
	var peakRSS int64
	var cpu []float64 // replicator's CPU seconds on loopback
	for round := 0; round < c.rounds; round++ {
		for i := range selected {
			t := selected[(i+round)%len(selected)]
			for _, lat := range modes {
				proxy.SetLatency(lat / 2)
				proxy.ResetRoundTrips()
				d, use, err := t.run(ctx, through)
				if err != nil {
					return fmt.Errorf("%s: %w", t.name, err)
				}
				rt := proxy.RoundTrips()
				if err := check(ctx, c.shape, src, dst); err != nil {
					return fmt.Errorf("%s produced a different copy: %w", t.name, err)
				}
				if t.stats != "" {
					if err := analyzed(ctx, dst); err != nil {
						return fmt.Errorf("%s (%s): %w", t.name, t.stats, err)
					}
				}
				if samples[t.name] == nil {
					samples[t.name] = map[time.Duration][]sample{}
				}
				samples[t.name][lat] = append(samples[t.name][lat], sample{d.Seconds(), rt, steps(use.out)})
				if t.name == "replicator" {
					peakRSS = max(peakRSS, use.rss)
					if lat == 0 {
						cpu = append(cpu, use.cpu.Seconds())
					}
				}
				fmt.Printf("round %d  %-10s %-9s %7.2fs  %7d round trips\n", round+1, t.name, label(lat), d.Seconds(), rt)
			}
		}
	}
	report(c, all, samples, modes, tables, peakRSS)
	if len(cpu) == 0 {
		return nil
	}
	size, err := databaseSize(ctx, src)
	if err != nil {
		return err
	}
	costModel(size, median(cpu), samples)
	return nil
}

// databaseSize is the source's bench database size.
func databaseSize(ctx context.Context, src *pgcluster.Cluster) (int64, error) {
	conn, err := src.Connect(ctx, "bench")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var size int64
	err = conn.QueryRow(ctx, "SELECT pg_catalog.pg_database_size('bench')").Scan(&size)
	return size, err
}

// copiers are the three tools, each copying the source database bench into
// a fresh target database with the same client tools.
func copiers(ctx context.Context, c config, bin string, tools *pgtools.Tools, src, dst *pgcluster.Cluster) []tool {
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
	replicator := func(extra ...string) func(ctx context.Context, srcURL func(string) string) (time.Duration, usage, error) {
		return func(ctx context.Context, srcURL func(string) string) (time.Duration, usage, error) {
			if err := fresh(false); err != nil {
				return 0, usage{}, err
			}
			args := []string{"init", "--source", srcURL("postgres"), "--target", dst.URL("postgres"),
				"--include-databases", "bench", "--no-roles", "--pg-bin", tools.Dir, "--json"}
			args = append(args, extra...)
			if c.extra != "" {
				args = append(args, strings.Fields(c.extra)...)
			}
			return timed(exec.CommandContext(ctx, bin, args...), nil)
		}
	}
	pgDump := func(analyze bool) func(ctx context.Context, srcURL func(string) string) (time.Duration, usage, error) {
		return func(ctx context.Context, srcURL func(string) string) (time.Duration, usage, error) {
			if err := fresh(true); err != nil {
				return 0, usage{}, err
			}
			pipe := fmt.Sprintf("%q -Fc -Z0 --dbname=%q | %q --dbname=%q", tools.Path("pg_dump"), srcURL("bench"), tools.Path("pg_restore"), dst.URL("bench"))
			if analyze {
				// As many jobs as replicator's default: one per CPU.
				pipe = fmt.Sprintf("{ %s; r=$?; } ; %q --analyze-only --jobs=%d --dbname=%q && exit $r", pipe, vacuumdb(tools), runtime.NumCPU(), dst.URL("bench"))
			}
			d, use, err := timed(exec.CommandContext(ctx, "bash", "-o", "pipefail", "-c", pipe), env)
			// pg_restore 17 and newer set transaction_timeout, which an older
			// target refuses; it goes on, and exits 1 for that one error.
			if err != nil && strings.Contains(err.Error(), `unrecognized configuration parameter "transaction_timeout"`) &&
				strings.Contains(err.Error(), "errors ignored on restore: 1\n") {
				return d, use, nil
			}
			return d, use, err
		}
	}
	return []tool{
		{"replicator", "replicator init", "ANALYZE per table, during the copy", replicator()},
		{"replicator-skip-analyze", "replicator init --skip-analyze", "", replicator("--skip-analyze")},
		{"pg_dump", "pg_dump -Fc -Z0 | pg_restore", "", pgDump(false)},
		{"pg_dump-analyze", "pg_dump -Fc -Z0 | pg_restore; vacuumdb --analyze-only", "vacuumdb --analyze-only after the restore", pgDump(true)},
		{"pgcopydb", "pgcopydb 0.10 clone", "VACUUM ANALYZE per table, during the copy (0.10 cannot skip it)", func(ctx context.Context, srcURL func(string) string) (time.Duration, usage, error) {
			if err := fresh(true); err != nil {
				return 0, usage{}, err
			}
			dir, _ := os.MkdirTemp("", "pgcopydb-")
			defer os.RemoveAll(dir)
			cmd := exec.CommandContext(ctx, "pgcopydb", "clone", "--source", srcURL("bench"), "--target", dst.URL("bench"),
				"--dir", dir, "--no-owner")
			// pgcopydb runs the pg_dump it finds on PATH: the same as the others'.
			return timed(cmd, append(env, "PATH="+tools.Dir+":"+os.Getenv("PATH")))
		}},
	}
}

// vacuumdb is the client tools' own, or the first on PATH (a client build
// without it: which one issues the ANALYZEs does not change their cost).
func vacuumdb(tools *pgtools.Tools) string {
	if _, err := os.Stat(tools.Path("vacuumdb")); err == nil {
		return tools.Path("vacuumdb")
	}
	for _, dir := range []string{"/usr/lib/postgresql/15/bin"} {
		if _, err := os.Stat(filepath.Join(dir, "vacuumdb")); err == nil {
			return filepath.Join(dir, "vacuumdb")
		}
	}
	if p, err := exec.LookPath("vacuumdb"); err == nil {
		return p
	}
	return "vacuumdb"
}

// analyzed checks that every table of the target's bench has been analyzed
// by hand (ANALYZE, VACUUM ANALYZE, vacuumdb), not left to autovacuum: the
// tool did what its label says. Statistics reach the view within a second
// or so of the analyzing session's commit.
func analyzed(ctx context.Context, dst *pgcluster.Cluster) error {
	conn, err := dst.Connect(ctx, "bench")
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	var missing []string
	for range 50 {
		rows, err := conn.Query(ctx, "SELECT relname FROM pg_catalog.pg_stat_user_tables WHERE last_analyze IS NULL ORDER BY 1")
		if err != nil {
			return err
		}
		if missing, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
			return err
		}
		if len(missing) == 0 {
			return nil
		}
		time.Sleep(100 * time.Millisecond)
	}
	return fmt.Errorf("tables left without ANALYZE: %s", strings.Join(missing, ", "))
}

// steps reads replicator's step times from its --json summary (the last
// line of its output); nil for the other tools.
func steps(out string) map[string]float64 {
	lines := strings.Split(strings.TrimSpace(out), "\n")
	var sum struct {
		Event string `json:"event"`
		Steps []struct {
			Name    string  `json:"step"`
			Seconds float64 `json:"seconds"`
		} `json:"steps"`
	}
	if len(lines) == 0 || json.Unmarshal([]byte(lines[len(lines)-1]), &sum) != nil || sum.Event != "summary" {
		return nil
	}
	m := map[string]float64{}
	for _, st := range sum.Steps {
		m[st.Name] += st.Seconds
	}
	return m
}

func label(lat time.Duration) string {
	if lat == 0 {
		return "loopback"
	}
	return lat.String() + " RTT"
}

// load builds the data set in database bench and returns its table count.
func load(ctx context.Context, c config, src *pgcluster.Cluster) (int, error) {
	if err := src.Exec(ctx, "postgres", "CREATE DATABASE bench"); err != nil {
		return 0, err
	}
	switch c.shape {
	case "reference":
		fmt.Printf("building the reference data set at scale %d\n", c.scale)
		script := c.dataset
		if _, err := os.Stat(script); err != nil {
			f, err := os.CreateTemp("", "dataset-*.sh")
			if err != nil {
				return 0, err
			}
			f.Write(embeddedDataset)
			f.Close()
			defer os.Remove(f.Name())
			script = f.Name()
		}
		load := exec.Command("bash", script, src.URL("bench"), fmt.Sprint(c.scale))
		load.Env = append(os.Environ(), "PGBIN="+src.BinDir)
		load.Stdout, load.Stderr = os.Stdout, os.Stderr
		if err := load.Run(); err != nil {
			return 0, fmt.Errorf("dataset: %w", err)
		}
	case "tenants":
		fmt.Println("building 2000 tables in 100 schemas (200 rows, a key, a sequence and an index each)")
		if err := src.Exec(ctx, "bench", tenantsSQL); err != nil {
			return 0, err
		}
	default:
		return 0, fmt.Errorf("-shape %q: reference or tenants", c.shape)
	}
	// Settle: a checkpoint so that no tool pays for the load's dirty buffers.
	for _, stmt := range []string{"VACUUM ANALYZE", "CHECKPOINT"} {
		if err := src.Exec(ctx, "bench", stmt); err != nil {
			return 0, err
		}
	}
	conn, err := src.Connect(ctx, "bench")
	if err != nil {
		return 0, err
	}
	defer conn.Close(ctx)
	var n int
	err = conn.QueryRow(ctx, `SELECT count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
		WHERE c.relkind = 'r' AND n.nspname NOT IN ('pg_catalog', 'information_schema') AND n.nspname !~ '^pg_toast'`).Scan(&n)
	return n, err
}

// tenantsSQL: 100 tenants' schemas of 20 tables each.
const tenantsSQL = `
DO $$
BEGIN
  FOR s IN 1..100 LOOP
    EXECUTE format('CREATE SCHEMA tenant_%s', s);
    FOR t IN 1..20 LOOP
      EXECUTE format('CREATE TABLE tenant_%s.t%s (id serial PRIMARY KEY, account_id int NOT NULL, name text, created_at timestamptz NOT NULL DEFAULT now())', s, t);
      EXECUTE format('INSERT INTO tenant_%s.t%s (account_id, name) SELECT g %% 50, md5(g::text) FROM generate_series(1, 200) g', s, t);
      EXECUTE format('CREATE INDEX ON tenant_%s.t%s (account_id)', s, t);
    END LOOP;
  END LOOP;
END $$`

// usage is what a copy used: peak RSS (bytes) and CPU time (user and
// system), of the process and the children it waited for.
type usage struct {
	rss int64
	cpu time.Duration
	out string
}

// timed runs cmd and returns its wall time and usage.
func timed(cmd *exec.Cmd, env []string) (time.Duration, usage, error) {
	cmd.Env = append(os.Environ(), env...)
	out := &strings.Builder{}
	cmd.Stdout, cmd.Stderr = out, out
	start := time.Now()
	err := cmd.Run()
	d := time.Since(start)
	if err != nil {
		return d, usage{}, fmt.Errorf("%v\n%s", err, tail(out.String(), 3000))
	}
	if verbose {
		fmt.Println(tail(out.String(), 4000))
	}
	u := usage{out: out.String()}
	if ru, ok := cmd.ProcessState.SysUsage().(*syscall.Rusage); ok {
		u.rss = ru.Maxrss * 1024
		u.cpu = time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
	}
	return d, u, nil
}

// check compares a cheap digest of the data set on both sides: a guard that
// every tool really copied it.
func check(ctx context.Context, shape string, src, dst *pgcluster.Cluster) error {
	q := "SELECT (SELECT count(*) FROM pgbench_accounts), (SELECT count(*) FROM events), (SELECT count(*) FROM pg_indexes WHERE schemaname = 'public')"
	if shape == "tenants" {
		q = `SELECT (SELECT count(*) FROM pg_indexes WHERE schemaname LIKE 'tenant%'),
		  (SELECT sum(c.reltuples)::int8 + count(*) FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname LIKE 'tenant%' AND c.relkind = 'r'),
		  (SELECT count(*) FROM tenant_100.t20)`
	}
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
		return fmt.Errorf("source %v, target %v", a, b)
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

func report(c config, all []tool, samples map[string]map[time.Duration][]sample, modes []time.Duration, tables int, peakRSS int64) {
	fmt.Printf("\n%s data set (%d tables), %d rounds, median wall time:\n", c.shape, tables, c.rounds)
	med := func(name string, m time.Duration) (secs, rtPerTable float64) {
		var s, r []float64
		for _, x := range samples[name][m] {
			s = append(s, x.seconds)
			r = append(r, float64(x.roundTrips))
		}
		if len(s) == 0 {
			return 0, 0
		}
		return median(s), median(r) / float64(max(tables, 1))
	}
	byName := map[string]tool{}
	for _, t := range all {
		byName[t.name] = t
	}
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	fmt.Fprint(tw, "tool\tplanner statistics\t")
	for _, m := range modes {
		fmt.Fprintf(tw, "%s\tround trips/table\t", label(m))
	}
	if len(modes) > 1 {
		fmt.Fprint(tw, "latency / loopback\t")
	}
	fmt.Fprintln(tw)
	for _, name := range toolOrder {
		if samples[name] == nil {
			continue
		}
		t := byName[name]
		fmt.Fprintf(tw, "%s\t%s\t", t.label, cmp.Or(t.stats, "none"))
		for _, m := range modes {
			s, rt := med(name, m)
			fmt.Fprintf(tw, "%.2fs\t%.1f\t", s, rt)
		}
		if len(modes) > 1 {
			lo, _ := med(name, 0)
			hi, _ := med(name, modes[1])
			fmt.Fprintf(tw, "%.2fx\t", hi/lo)
		}
		fmt.Fprintln(tw)
	}
	tw.Flush()
	// Like for like: each pair analyzes on both sides, or on neither.
	pairs := []struct {
		ours, theirs, what string
		goal               float64
	}{
		{"replicator", "pgcopydb", "with statistics", 0.80},
		{"replicator", "pg_dump-analyze", "with statistics", 0.70},
		{"replicator-skip-analyze", "pg_dump", "without statistics", 0.70},
	}
	for _, m := range modes {
		for _, p := range pairs {
			r, _ := med(p.ours, m)
			o, _ := med(p.theirs, m)
			if r > 0 && o > 0 {
				fmt.Printf("%s, %s: %s / %s %.2f (goal <= %.2f); %s takes %.2fx replicator's time\n",
					label(m), p.what, byName[p.ours].label, byName[p.theirs].label, r/o, p.goal, byName[p.theirs].label, o/r)
			}
		}
	}
	for _, name := range []string{"replicator", "replicator-skip-analyze"} {
		stepShares(byName[name].label, samples[name][0], med)
	}
	if len(modes) > 1 {
		goal := 1.3
		if c.shape == "tenants" {
			goal = 3
		}
		lo, _ := med("replicator", 0)
		hi, _ := med("replicator", modes[1])
		if lo > 0 {
			fmt.Printf("replicator at %s / loopback: %.2fx (goal <= %.1fx)\n", label(modes[1]), hi/lo, goal)
		}
	}
	if peakRSS > 0 {
		fmt.Printf("replicator peak RSS: %.1f MB (target < 150 MB)\n", float64(peakRSS)/(1<<20))
	}
}

// stepShares prints the median of each of replicator's steps and its share
// of the median wall time (loopback). Steps indented under "copy + indexes"
// run inside it, side by side: their shares overlap.
func stepShares(label string, xs []sample, med func(string, time.Duration) (float64, float64)) {
	var order []string
	per := map[string][]float64{}
	var wall []float64
	for _, x := range xs {
		if x.steps == nil {
			continue
		}
		wall = append(wall, x.seconds)
		for name, secs := range x.steps {
			if per[name] == nil {
				order = append(order, name)
			}
			per[name] = append(per[name], secs)
		}
	}
	if len(wall) == 0 {
		return
	}
	total := median(wall)
	fmt.Printf("\n%s, each step's median and share of the %.2fs median wall time (indented steps run inside copy + indexes):\n", label, total)
	sort.SliceStable(order, func(i, j int) bool { return stepRank(order[i]) < stepRank(order[j]) })
	tw := tabwriter.NewWriter(os.Stdout, 0, 0, 2, ' ', 0)
	for _, name := range order {
		m := median(per[name])
		fmt.Fprintf(tw, "  %s\t%.2fs\t%3.0f%%\n", name, m, 100*m/total)
	}
	tw.Flush()
}

// stepRank orders steps as the engine runs them.
func stepRank(name string) int {
	for i, s := range []string{"preflight", "roles", "catalog", "dump schema", "pre-data", "copy + indexes", "  read ahead", "  copy", "  indexes", "  analyze",
		"large objects", "post-data", "sequences", "database settings"} {
		if s == name {
			return i
		}
	}
	return 100
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// costModel prints what the remote cost estimate's throughput model rests
// on (internal/remote/cost: PerVCPUBytes), measured here, and how its
// estimate for this data set compares with the copy's actual time.
func costModel(size int64, cpuSeconds float64, samples map[string]map[time.Duration][]sample) {
	var wall []float64
	for _, x := range samples["replicator"][0] {
		wall = append(wall, x.seconds)
	}
	rate := float64(size) / cpuSeconds
	fmt.Printf("replicator's CPU (with pg_dump and pg_restore), loopback median: %.1f s for the %.0f MiB database: %.0f MiB per CPU-second (cost model: %.0f MiB per vCPU-second)\n",
		cpuSeconds, float64(size)/(1<<20), rate/(1<<20), float64(cost.PerVCPUBytes)/(1<<20))
	est := cost.Make(cost.Input{InstanceType: "c7g.large", Region: "us-east-1", Bytes: size})
	copying := float64(size) / cost.Throughput("c7g.large")
	fmt.Printf("cost model for a 2-vCPU worker (c7g.large): %.1f s of copying (plus %.0f min to start); this machine's loopback copy: %.1f s (estimate / actual %.2f)\n",
		copying, (est.Hours*3600-copying)/60, median(wall), copying/median(wall))
}
