// Command cutoverbench measures a cut-over as the application sees it. An
// application of 8 clients writes at about 300 transactions per second to 50
// tables in two databases, through a stand-in for a connection pooler; it
// goes on through `replicator cutover --reverse`, whose --then repoints the
// pooler at the target, then through `cutover --rollback`, which points it
// back. It reports, for each switch, the write downtime (the longest gap
// between two acknowledged commits, as the clients see it), the
// transactions lost (acknowledged, and missing on the primary at the end),
// and each step's time. `go tool task bench:cutover` runs it.
//
// The clients are Go rather than pgbench: pgbench ends a client at its first
// failed transaction, and has no way to follow a switch.
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"math/rand"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/testenv/pgcluster"
)

const (
	databases = 2
	tablesPer = 25
	clients   = 8
)

func main() {
	bin := flag.String("bin", "bin/replicator", "replicator binary")
	rate := flag.Int("rate", 300, "transactions per second, all clients together")
	major := flag.Int("major", 17, "PostgreSQL major of both clusters (--reverse needs 16 or later)")
	settle := flag.Duration("settle", 10*time.Second, "how long the application writes before and between the switches")
	flag.Parse()
	if err := run(*bin, *rate, *major, *settle); err != nil {
		fmt.Fprintln(os.Stderr, "cutoverbench:", err)
		os.Exit(1)
	}
}

func run(bin string, rate, major int, settle time.Duration) error {
	ctx := context.Background()
	bin, _ = filepath.Abs(bin)
	// Client tools as new as the servers (the task's deps fetch them).
	client, err := pgcluster.ClientBinDir()
	if err != nil {
		return err
	}
	os.Setenv("PATH", client+string(os.PathListSeparator)+os.Getenv("PATH"))
	settings := map[string]string{"wal_level": "logical", "max_replication_slots": "10", "max_wal_senders": "10", "shared_buffers": "256MB", "log_min_messages": "warning"}
	fmt.Printf("starting two PostgreSQL %d clusters\n", major)
	src, dst, err := pgcluster.StartPair(ctx, "cutover", pgcluster.Options{Major: major, Settings: settings}, pgcluster.Options{Major: major, Settings: settings})
	if err != nil {
		return err
	}
	defer src.Stop()
	defer dst.Stop()
	dir, err := os.MkdirTemp("", "cutoverbench-")
	if err != nil {
		return err
	}
	defer os.RemoveAll(dir)

	dbs, conn, err := prepare(ctx, bin, src, dst)
	if err != nil {
		return err
	}

	// The pooler: new connections go to the server named in a file, which
	// --then rewrites.
	primary := filepath.Join(dir, "primary")
	if err := os.WriteFile(primary, []byte(addr(src)), 0o600); err != nil {
		return err
	}
	pool, err := startPooler(primary)
	if err != nil {
		return err
	}
	defer pool.Close()

	app := newApp(src, pool.Addr().String(), dbs, rate)
	fmt.Printf("the application writes at about %d tps through the pooler for %s\n", rate, settle)
	app.start()
	time.Sleep(settle)

	runs := []*switchRun{
		{name: "cutover --reverse", args: []string{"cutover", "--reverse"}, to: addr(dst)},
		{name: "cutover --rollback", args: []string{"cutover", "--rollback"}, to: addr(src)},
	}
	for _, s := range runs {
		then := fmt.Sprintf("printf %%s %s > %s", s.to, primary)
		args := append(append(s.args, "--json", "--then", then), conn...)
		fmt.Printf("replicator %s\n", s.name)
		s.start = time.Now()
		out, err := exec.Command(bin, args...).Output()
		s.end = time.Now()
		if err != nil {
			app.stop()
			var stderr string
			if ee, ok := err.(*exec.ExitError); ok {
				stderr = string(ee.Stderr)
			}
			return fmt.Errorf("%s: %v\n%s%s", s.name, err, out, stderr)
		}
		if err := json.Unmarshal(out, &s.res); err != nil {
			return fmt.Errorf("%s: %v\n%s", s.name, err, out)
		}
		// Everything acknowledged before the switch ended is on the new
		// primary (whichever server the client wrote it to).
		newPrimary := dst
		if s.to == addr(src) {
			newPrimary = src
		}
		if s.lost, err = app.lost(ctx, newPrimary, s.end); err != nil {
			return err
		}
		time.Sleep(settle)
	}
	app.stop()

	// Every acknowledged transaction must be on the final primary (the
	// source, after the rollback).
	lost, err := app.lost(ctx, src, time.Now())
	if err != nil {
		return err
	}
	lost = report(app, runs, lost)
	if lost > 0 {
		return fmt.Errorf("%d acknowledged transaction(s) lost", lost)
	}
	return nil
}

// prepare creates the databases and their 50 tables on the source, and
// copies and replicates them with init --sync.
func prepare(ctx context.Context, bin string, src, dst *pgcluster.Cluster) (dbs, conn []string, err error) {
	for d := 1; d <= databases; d++ {
		db := fmt.Sprintf("app%d", d)
		dbs = append(dbs, db)
		if err := src.Exec(ctx, "postgres", "CREATE DATABASE "+db); err != nil {
			return nil, nil, err
		}
		var ddl strings.Builder
		for t := 1; t <= tablesPer; t++ {
			fmt.Fprintf(&ddl, "CREATE TABLE orders_%02d (client int, seq bigint, at timestamptz DEFAULT clock_timestamp(), amount numeric, PRIMARY KEY (client, seq));\n", t)
			fmt.Fprintf(&ddl, "INSERT INTO orders_%02d SELECT -1, g, now(), g FROM generate_series(1, 2000) g;\n", t)
		}
		ddl.WriteString("CREATE TABLE balance (client int PRIMARY KEY, total numeric NOT NULL); INSERT INTO balance SELECT g, 0 FROM generate_series(0, 63) g;")
		if err := src.Exec(ctx, db, ddl.String()); err != nil {
			return nil, nil, err
		}
	}
	conn = []string{"--source", src.URL("postgres"), "--target", dst.URL("postgres"), "--include-databases", strings.Join(dbs, ",")}
	fmt.Println("replicator init --sync (2 databases, 50 tables)")
	if out, err := exec.Command(bin, append([]string{"init", "--sync", "--no-roles"}, conn...)...).CombinedOutput(); err != nil {
		return nil, nil, fmt.Errorf("init --sync: %v\n%s", err, out)
	}

	return dbs, conn, nil
}

// switchRun is one cutover run of the benchmark.
type switchRun struct {
	name  string
	args  []string
	to    string
	start time.Time
	end   time.Time
	res   result
	lost  int
}

// report prints the table, and returns every loss counted.
func report(app *app, runs []*switchRun, lost int) int {
	fmt.Printf("\n%d transactions acknowledged, %d failed and retried (%.0f tps)\n", app.acked(), app.failures, float64(app.acked())/app.elapsed().Seconds())
	fmt.Printf("%-20s %12s %10s", "switch", "downtime", "lost")
	for _, st := range []string{"guardrails", "fence", "drain", "sequences", "final check", "switch"} {
		fmt.Printf(" %12s", st)
	}
	fmt.Printf(" %10s\n", "total")
	for _, s := range runs {
		down := app.longestGap(s.start, s.end.Add(2*time.Second))
		fmt.Printf("%-20s %10.2f s %10d", s.name, down.Seconds(), s.lost)
		for _, st := range s.res.Steps {
			fmt.Printf(" %10.2f s", st.Seconds)
		}
		fmt.Printf(" %8.2f s\n", s.end.Sub(s.start).Seconds())
	}
	fmt.Printf("lost: acknowledged before the switch ended and missing on its new primary; at the end, %d of %d missing on the source\n", lost, app.acked())
	for _, s := range runs {
		lost += s.lost
	}
	return lost
}

type result struct {
	Steps []struct {
		Step    string  `json:"step"`
		Seconds float64 `json:"seconds"`
	} `json:"steps"`
}

// pooler forwards each new connection to the server its file names.
type pooler struct{ net.Listener }

func startPooler(file string) (*pooler, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			go func() {
				defer c.Close()
				addr, err := os.ReadFile(file)
				if err != nil {
					return
				}
				b, err := net.Dial("tcp", string(addr))
				if err != nil {
					return
				}
				defer b.Close()
				go io.Copy(b, c)
				io.Copy(c, b)
			}()
		}
	}()
	return &pooler{l}, nil
}

// app is the application: clients that each commit one transaction at a
// time (an order in one of the 50 tables and its client's balance), at a
// fixed overall rate, reconnecting through the pooler after an error.
type app struct {
	cluster  *pgcluster.Cluster
	addr     string
	dbs      []string
	interval time.Duration

	mu       sync.Mutex
	commits  []time.Time
	done     map[string][]ack // by database
	failures int
	began    time.Time
	ended    time.Time
	quit     chan struct{}
	wg       sync.WaitGroup
}

type ack struct {
	table       int
	client, seq int64
	at          time.Time
}

func newApp(c *pgcluster.Cluster, addr string, dbs []string, rate int) *app {
	return &app{cluster: c, addr: addr, dbs: dbs, interval: time.Second * clients / time.Duration(rate), done: map[string][]ack{}, quit: make(chan struct{})}
}

func (a *app) start() {
	a.began = time.Now()
	for i := 0; i < clients; i++ {
		a.wg.Add(1)
		go a.client(i)
	}
}

func (a *app) stop() {
	close(a.quit)
	a.wg.Wait()
	a.ended = time.Now()
}

func (a *app) elapsed() time.Duration { return a.ended.Sub(a.began) }

func (a *app) acked() int {
	a.mu.Lock()
	defer a.mu.Unlock()
	return len(a.commits)
}

func (a *app) client(id int) {
	defer a.wg.Done()
	ctx := context.Background()
	db := a.dbs[id%len(a.dbs)]
	rng := rand.New(rand.NewSource(int64(id)))
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(ctx)
		}
	}()
	next := time.Now()
	for seq := int64(1); ; {
		select {
		case <-a.quit:
			return
		case <-time.After(time.Until(next)):
		}
		next = next.Add(a.interval)
		if conn == nil {
			cfg, err := pgx.ParseConfig(a.cluster.URL(db))
			if err != nil {
				panic(err)
			}
			host, port, _ := net.SplitHostPort(a.addr)
			cfg.Host = host
			fmt.Sscan(port, &cfg.Port)
			if conn, err = pgx.ConnectConfig(ctx, cfg); err != nil {
				conn = nil
				a.fail()
				continue
			}
		}
		table := 1 + rng.Intn(tablesPer)
		amount := rng.Intn(1000)
		err := pgx.BeginFunc(ctx, conn, func(tx pgx.Tx) error {
			if _, err := tx.Exec(ctx, fmt.Sprintf("INSERT INTO orders_%02d (client, seq, amount) VALUES ($1, $2, $3)", table), id, seq, amount); err != nil {
				return err
			}
			_, err := tx.Exec(ctx, "UPDATE balance SET total = total + $2 WHERE client = $1", id, amount)
			return err
		})
		if err != nil {
			// Not acknowledged: the same order is tried again, on a new
			// connection (the pooler knows where the primary is).
			conn.Close(ctx)
			conn = nil
			a.fail()
			continue
		}
		a.mu.Lock()
		now := time.Now()
		a.commits = append(a.commits, now)
		a.done[db] = append(a.done[db], ack{table: table, client: int64(id), seq: seq, at: now})
		a.mu.Unlock()
		seq++
	}
}

func (a *app) fail() {
	a.mu.Lock()
	a.failures++
	a.mu.Unlock()
}

// longestGap is the longest time without an acknowledged commit between
// from and to.
func (a *app) longestGap(from, to time.Time) time.Duration {
	a.mu.Lock()
	times := append([]time.Time(nil), a.commits...)
	a.mu.Unlock()
	sort.Slice(times, func(i, j int) bool { return times[i].Before(times[j]) })
	var longest time.Duration
	prev := from
	for _, t := range times {
		if t.Before(from) {
			continue
		}
		if t.After(to) {
			break
		}
		longest = max(longest, t.Sub(prev))
		prev = t
	}
	return max(longest, to.Sub(prev))
}

// lost counts transactions acknowledged before a time whose order is
// missing on c.
func (a *app) lost(ctx context.Context, c *pgcluster.Cluster, before time.Time) (int, error) {
	lost := 0
	a.mu.Lock()
	done := map[string][]ack{}
	for db, acks := range a.done {
		for _, k := range acks {
			if k.at.Before(before) {
				done[db] = append(done[db], k)
			}
		}
	}
	a.mu.Unlock()
	for db, acks := range done {
		conn, err := c.Connect(ctx, db)
		if err != nil {
			return 0, err
		}
		for t := 1; t <= tablesPer; t++ {
			var clientIDs, seqs []int64
			for _, k := range acks {
				if k.table == t {
					clientIDs, seqs = append(clientIDs, k.client), append(seqs, k.seq)
				}
			}
			var n int
			err := conn.QueryRow(ctx, fmt.Sprintf(`SELECT count(*) FROM unnest($1::int[], $2::int8[]) k(client, seq)
			  WHERE NOT EXISTS (SELECT 1 FROM orders_%02d o WHERE o.client = k.client AND o.seq = k.seq)`, t), clientIDs, seqs).Scan(&n)
			if err != nil {
				conn.Close(ctx)
				return 0, err
			}
			lost += n
		}
		conn.Close(ctx)
	}
	return lost, nil
}

func addr(c *pgcluster.Cluster) string { return fmt.Sprintf("127.0.0.1:%d", c.Port) }
