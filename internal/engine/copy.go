package engine

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
	"golang.org/x/sync/errgroup"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/retry"
)

// part is one unit of copy work: a whole table or a range of its heap pages.
type part struct {
	table *tableWork
	// lo and hi bound the heap pages (ctid) of a range, hi < 0 meaning to the end
	// (rows appended after planning); whole is set when the part is the table.
	lo, hi int64
	whole  bool
	weight int64
	key    string
}

// copyAndIndex streams every table's rows with COPY, several at once, and builds
// each table's indexes and key constraints as soon as its rows are all in, while
// other tables are still copying.
func (r *run) copyAndIndex(ctx context.Context, w *dbWork) error {
	start := time.Now()
	r.emit(progress.Event{Kind: progress.StepStarted, Database: w.name, Step: "copy"})
	parts, err := r.planParts(ctx, w)
	if err != nil {
		return err
	}

	// Enough room for every index task so that producers never block.
	nIndex := 0
	for _, t := range w.tables {
		nIndex += len(t.indexes) + 1
	}
	indexCh := make(chan indexTask, nIndex)
	if !r.opts.SkipAnalyze {
		w.analyze = make(chan *tableWork, len(w.tables))
	}
	queue := &partQueue{parts: parts}
	w.copying.Store(int64(len(parts)))

	// Tables with no rows left to copy get their indexes right away.
	for _, t := range w.tables {
		if t.partsLeft == 0 {
			r.enqueueIndexes(w, t, indexCh)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	var copiers sync.WaitGroup
	var copySpan, indexSpan span
	workers := r.copyWorkers(parts)
	if workers > r.opts.Jobs {
		r.info(w.name, "the source is %s away (a round trip): copying small tables over %d connections instead of %d", r.srcRTT.Round(100*time.Microsecond), workers, r.opts.Jobs)
	}
	if w.ahead != nil {
		w.ahead.partLimit = w.ahead.perPart(workers)
	}
	queue.live = workers
	for i := 0; i < workers; i++ {
		copiers.Add(1)
		g.Go(func() error {
			defer copiers.Done()
			c := &copier{r: r, w: w}
			defer c.reset()
			return c.run(gctx, queue, indexCh, &copySpan)
		})
	}
	go func() {
		copiers.Wait()
		close(indexCh)
	}()
	var indexers sync.WaitGroup
	feed := newIndexFeed(indexCh, r.opts.IndexJobs)
	for i := 0; i < r.opts.IndexJobs; i++ {
		indexers.Add(1)
		g.Go(func() error {
			defer indexers.Done()
			return r.indexWorker(gctx, w, feed, &indexSpan)
		})
	}
	var analyzeSpan span
	var analyzed int
	var analyzeSum float64
	if w.analyze != nil {
		go func() {
			// Nothing hands a table over once copiers and indexers are gone.
			copiers.Wait()
			indexers.Wait()
			close(w.analyze)
		}()
		g.Go(func() error { return r.analyzer(gctx, w, &analyzeSpan, &analyzed, &analyzeSum) })
	}
	err = g.Wait()

	var copySum, indexSum float64
	var bytes int64
	nParts, nIdx := 0, 0
	for _, t := range w.tables {
		copySum += t.copySeconds
		indexSum += t.indexSeconds
		bytes += t.bytes
		nParts += t.parts
		nIdx += len(t.indexes)
	}
	d := time.Since(start)
	r.record(StepResult{Database: w.name, Name: "copy + indexes", Seconds: d.Seconds()})
	r.record(StepResult{Database: w.name, Name: "  copy", Seconds: copySpan.seconds(), Cumulative: copySum, Count: nParts, Bytes: bytes})
	r.record(StepResult{Database: w.name, Name: "  indexes", Seconds: indexSpan.seconds(), Cumulative: indexSum, Count: nIdx})
	if w.analyze != nil {
		r.record(StepResult{Database: w.name, Name: "  analyze", Seconds: analyzeSpan.seconds(), Cumulative: analyzeSum, Count: analyzed})
	}
	ev := progress.Event{Kind: progress.StepDone, Database: w.name, Step: "copy", Seconds: d.Seconds(), Bytes: bytes}
	if err != nil {
		ev.Message = "failed"
	}
	r.emit(ev)
	return err
}

// planParts splits tables larger than the threshold into page ranges (TID range
// scans) and orders the parts largest first, so the longest work starts early and
// small tables fill the gaps at the end. A resumed run reuses the ranges it
// planned before and leaves out the parts it finished.
// MaxRanges caps the ranges a table is split into: beyond it, a range is
// larger than --split-tables-larger-than, and more ranges only add queries.
const MaxRanges = 64

func (r *run) planParts(ctx context.Context, w *dbWork) ([]*part, error) {
	var parts []*part
	threshold := r.opts.SplitThreshold
	for _, t := range w.tables {
		if !t.copyData {
			continue
		}
		var ranges [][2]int64
		if rec, ok := r.cp.get(keySplit(w.name, t.Name)); ok {
			if err := json.Unmarshal([]byte(rec.Data), &ranges); err != nil {
				return nil, fmt.Errorf("checkpoint of %s: %w", t.Name, err)
			}
		} else if _, resumed := r.cp.get(keyPart(w.name, t.Name, &part{whole: true})); !resumed &&
			threshold > 0 && t.Bytes > threshold && t.Pages > 1 && r.srcVersion.Major >= 14 {
			// (TID range scans are PostgreSQL 14's: before it each range
			// would read the whole table.)
			n := min((t.Bytes+threshold-1)/threshold, t.Pages, MaxRanges)
			step := (t.Pages + n - 1) / n
			for lo := int64(0); lo < t.Pages; lo += step {
				hi := lo + step
				if hi >= t.Pages {
					hi = -1
				}
				ranges = append(ranges, [2]int64{lo, hi})
			}
			data, _ := json.Marshal(ranges)
			// Durable: ranges committed later are only meaningful with their plan.
			if err := r.cp.mark(ctx, checkpoint.Record{Key: keySplit(w.name, t.Name), Status: checkpoint.Done, Data: string(data)}, true); err != nil {
				return nil, err
			}
		}
		var mine []*part
		if len(ranges) == 0 {
			mine = []*part{{table: t, whole: true, hi: -1, weight: t.Bytes}}
		}
		for _, rg := range ranges {
			mine = append(mine, &part{table: t, lo: rg[0], hi: rg[1], weight: t.Bytes / int64(len(ranges))})
		}
		for _, p := range mine {
			p.key = keyPart(w.name, t.Name, p)
			t.parts++
			if rec, ok := r.cp.get(p.key); ok && rec.Status == checkpoint.Done {
				t.resumed++
				t.rows += rec.Rows
				t.bytes += rec.Bytes
				t.progress.Add(rec.Rows, rec.Bytes)
				continue
			}
			t.partsLeft++
			parts = append(parts, p)
		}
		if t.partsLeft == 0 {
			t.progress.Finish()
		}
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].weight > parts[j].weight })
	return parts, nil
}

// copier is one copy worker: a source session in the snapshot and a target
// session, re-established after a transient failure.
type copier struct {
	r        *run
	w        *dbWork
	src, dst *pgx.Conn
}

func (c *copier) ensure(ctx context.Context) error {
	if err := c.ensureSource(ctx); err != nil {
		return err
	}
	return c.ensureTarget(ctx)
}

func (c *copier) ensureSource(ctx context.Context) error {
	if c.src == nil {
		src, err := c.w.src.Connect(ctx)
		if err != nil {
			return err
		}
		c.src = src
		// The database encoding on both ends: no conversion on the way.
		if err := c.r.beginInSnapshot(ctx, c.w, src, sourceSessionSQL+"SET client_encoding = "+quoteLiteral(c.w.encoding)); err != nil {
			return err
		}
	}
	return nil
}

// ensureTarget connects to the target, which exists once pre-data is in.
func (c *copier) ensureTarget(ctx context.Context) error {
	if err := c.w.ahead.wait(ctx); err != nil {
		return err
	}
	if c.dst == nil {
		dst, err := c.w.dst.Connect(ctx)
		if err != nil {
			return err
		}
		c.dst = dst
		if err := targetSession(ctx, dst, "; SET client_encoding = "+quoteLiteral(c.w.encoding)); err != nil {
			return err
		}
	}
	return nil
}

// endStalledTarget ends the target session of a COPY the target stopped
// answering: the server still holds that session's transaction, and its locks
// (the TRUNCATE of a whole table) would block the retry, until TCP gave up on
// a peer it cannot tell is gone. A role may end its own sessions.
func (c *copier) endStalledTarget(ctx context.Context, err error) {
	var se *StallError
	if !errors.As(err, &se) || se.Side != "target" || c.dst == nil {
		return
	}
	pid := c.dst.PgConn().PID()
	ctx, cancel := context.WithTimeout(ctx, 30*time.Second)
	defer cancel()
	conn, cerr := c.w.dst.Connect(ctx)
	if cerr != nil {
		return // the retry's connection will say what is wrong
	}
	defer conn.Close(context.Background())
	if _, cerr := conn.Exec(ctx, "SELECT pg_catalog.pg_terminate_backend($1)", pid); cerr != nil {
		c.r.warn(c.w.name, "could not end the stalled target session %d: %s", pid, oneLine(cerr))
	}
}

func (c *copier) reset() {
	for _, conn := range []*pgx.Conn{c.src, c.dst} {
		if conn != nil {
			// Bounded: a connection that stopped answering cannot take even
			// the goodbye.
			ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
			conn.Close(ctx)
			cancel()
		}
	}
	c.src, c.dst = nil, nil
}

func (c *copier) run(ctx context.Context, queue *partQueue, indexCh chan<- indexTask, sp *span) error {
	r, w := c.r, c.w
	for {
		p := queue.next()
		if p == nil {
			return nil
		}
		if err := ctx.Err(); err != nil {
			return err
		}
		t := p.table
		t.mu.Lock()
		if t.started.IsZero() {
			t.started = time.Now()
			r.emit(progress.Event{Kind: progress.TableStarted, Database: w.name, Table: t.Name.String()})
		}
		t.mu.Unlock()
		start := time.Now()
		t.progress.Begin()
		var rows, bytes int64
		var left bool
		err := retry.Do(ctx, r.opts.Retry, func(err error, wait time.Duration) {
			r.retrying(w.name, "copy %s failed (%s); retrying in %s", t.Name, oneLine(err), wait.Round(time.Millisecond))
		}, func() error {
			var err error
			rows, bytes, err = c.copyOnce(ctx, p)
			if err != nil {
				c.endStalledTarget(ctx, err)
				c.reset()
				// A server out of sessions for us: one copier fewer at
				// once, while another goes on (its part goes back to
				// the queue), rather than every copier retrying.
				if tooManyConnections(err) {
					if n, ok := queue.giveBack(p); ok {
						r.warn(w.name, "copy %s: %s: copying with %d connection(s) from now on", t.Name, oneLine(err), n)
						left = true
						return nil
					}
				}
			}
			return err
		})
		t.progress.End()
		if left {
			return nil
		}
		if err != nil {
			if p := diskFull(err, "copying "+t.Name.String()); p != nil {
				return p
			}
			return fmt.Errorf("copy %s: %w", t.Name, err)
		}
		sp.add(start, time.Now())
		w.copying.Add(-1)
		if t.partDone(rows, bytes, time.Since(start)) {
			t.progress.Finish()
			r.emit(progress.Event{Kind: progress.TableDone, Database: w.name, Table: t.Name.String(),
				Rows: t.rows, Bytes: t.bytes, Seconds: time.Since(t.started).Seconds()})
			r.enqueueIndexes(w, t, indexCh)
		}
	}
}

// copyOnce makes one attempt at a part. A part an earlier attempt (or run) was
// committing is first settled by asking the target whether that transaction
// committed: committed work is never copied twice.
func (c *copier) copyOnce(ctx context.Context, p *part) (rows, bytes int64, err error) {
	if err := c.ensureSource(ctx); err != nil {
		return 0, 0, err
	}
	if rec, ok := c.r.cp.get(p.key); ok && rec.Status == checkpoint.Committing {
		if err := c.ensureTarget(ctx); err != nil {
			return 0, 0, err
		}
		committed, err := transactionCommitted(ctx, c.dst, rec.XID)
		if err != nil {
			return 0, 0, err
		}
		if committed {
			rec.Status = checkpoint.Done
			return rec.Rows, rec.Bytes, c.r.cp.mark(ctx, rec, false)
		}
	}
	if err := c.r.cp.set(ctx, p.key, checkpoint.Running); err != nil {
		return 0, 0, err
	}
	target := func(ctx context.Context) (*pgx.Conn, error) {
		if err := c.ensureTarget(ctx); err != nil {
			return nil, err
		}
		return c.dst, nil
	}
	rows, bytes, xid, err := copyPart(ctx, c.src, target, p, c.r.opts.StallTimeout, c.w.ahead, func(xid uint64, rows, bytes int64) error {
		// Durable before COMMIT: if the commit's outcome is lost with the
		// connection or the process, the target still knows it.
		return c.r.cp.mark(ctx, checkpoint.Record{Key: p.key, Status: checkpoint.Committing, XID: xid, Rows: rows, Bytes: bytes}, true)
	})
	if err != nil {
		return 0, 0, err
	}
	return rows, bytes, c.r.cp.mark(ctx, checkpoint.Record{Key: p.key, Status: checkpoint.Done, XID: xid, Rows: rows, Bytes: bytes}, false)
}

// transactionCommitted asks the target about a transaction of an earlier
// attempt, waiting while it is still in progress (its session may not yet have
// noticed that its client is gone).
func transactionCommitted(ctx context.Context, dst *pgx.Conn, xid uint64) (bool, error) {
	deadline := time.Now().Add(time.Minute)
	for {
		var status *string
		if err := dst.QueryRow(ctx, "SELECT pg_catalog.txid_status($1)", int64(xid)).Scan(&status); err != nil {
			return false, fmt.Errorf("status of target transaction %d: %w", xid, err)
		}
		switch {
		case status == nil:
			return false, fmt.Errorf("target transaction %d is too old to know whether it committed: start over with --no-resume --drop-existing", xid)
		case *status == "committed":
			return true, nil
		case *status == "aborted":
			return false, nil
		case time.Now().After(deadline):
			return false, fmt.Errorf("target transaction %d of an earlier attempt is still in progress", xid)
		}
		select {
		case <-ctx.Done():
			return false, ctx.Err()
		case <-time.After(500 * time.Millisecond):
		}
	}
}

// partDone records a finished part and reports whether it was the table's last.
func (t *tableWork) partDone(rows, bytes int64, d time.Duration) bool {
	t.mu.Lock()
	defer t.mu.Unlock()
	t.rows += rows
	t.bytes += bytes
	t.copySeconds += d.Seconds()
	t.partsLeft--
	return t.partsLeft == 0
}

// copyPart streams one part from source to target: COPY TO on the source feeds
// COPY FROM on the target through a pipe, so memory stays at a few buffers
// whatever the table size. Each part is one target transaction; a whole table is
// truncated in it and loaded with FREEZE: rows arrive frozen and visible, with no
// later VACUUM or hint-bit rewrite of the whole table. committing is called with
// the transaction id just before COMMIT.
//
// A stream that moves no byte for stall (a server gone silent, a connection
// half-open behind a NAT that TCP does not notice while it waits to read) is
// cut: the error is a *StallError, which is retried.
func copyPart(ctx context.Context, src *pgx.Conn, target func(context.Context) (*pgx.Conn, error), p *part, stall time.Duration, ahead *readAhead, committing func(xid uint64, rows, bytes int64) error) (rows, bytes int64, xid uint64, err error) {
	begin, srcSQL, dstSQL := copySQL(p)
	st, err := openStream(ctx, p.table, ahead, stall)
	if err != nil {
		return 0, 0, 0, err
	}
	defer st.close()
	// The source's COPY starts at once, the target's transaction alongside.
	st.readSource(src, srcSQL)
	in, err := st.awaitTarget(ahead)
	if err != nil {
		return 0, 0, 0, st.fail(err)
	}
	if st.dst, err = target(st.ctx); err != nil {
		return 0, 0, 0, st.fail(err)
	}
	if err := exec(st.ctx, st.dst, begin); err != nil {
		return 0, 0, 0, st.fail(err)
	}
	tag, err := st.dst.PgConn().CopyFrom(st.ctx, in, dstSQL)
	if err != nil {
		return 0, 0, 0, st.fail(err)
	}
	if err := st.sourceEnd(); err != nil {
		return 0, 0, 0, err
	}
	rows, bytes = tag.RowsAffected(), st.cw.bytes
	// Messages counted on the way are rows give or take the binary header; the
	// command tag is exact.
	p.table.progress.Add(rows-st.cw.rows, 0)
	var x int64
	if err := st.dst.QueryRow(st.ctx, "SELECT pg_catalog.txid_current()").Scan(&x); err != nil {
		return 0, 0, 0, fmt.Errorf("target: %w", err)
	}
	if err := committing(uint64(x), rows, bytes); err != nil {
		st.rollback()
		return 0, 0, 0, err
	}
	if err := exec(st.ctx, st.dst, "COMMIT"); err != nil {
		return 0, 0, 0, fmt.Errorf("target: commit: %w", err)
	}
	return rows, bytes, uint64(x), nil
}

// copySQL is a part's statements: the target transaction's start (with the
// TRUNCATE of a whole table), the source's COPY TO and the target's COPY FROM.
func copySQL(p *part) (begin, srcSQL, dstSQL string) {
	t := p.table
	format := "text"
	if t.Binary {
		format = "binary"
	}
	cols := ""
	if len(t.Columns) > 0 {
		quoted := make([]string, len(t.Columns))
		for i, c := range t.Columns {
			quoted[i] = pgx.Identifier{c}.Sanitize()
		}
		cols = strings.Join(quoted, ", ")
	}
	var conds []string
	if !p.whole {
		conds = append(conds, fmt.Sprintf("ctid >= '(%d,0)'::pg_catalog.tid", p.lo))
		if p.hi >= 0 {
			conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::pg_catalog.tid", p.hi))
		}
	}
	if t.decision.Predicate != "" {
		conds = append(conds, t.decision.Predicate)
	}
	if len(conds) == 0 {
		srcSQL = fmt.Sprintf("COPY %s %s TO STDOUT (FORMAT %s)", t.Name.Quoted(), parens(cols), format)
	} else {
		srcSQL = fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT (FORMAT %s)",
			cols, t.Name.Quoted(), strings.Join(conds, " AND "), format)
	}
	begin, freeze := "BEGIN", ""
	if p.whole {
		begin, freeze = "BEGIN; TRUNCATE ONLY "+t.Name.Quoted(), ", FREEZE"
	}
	dstSQL = fmt.Sprintf("COPY %s %s FROM STDIN (FORMAT %s%s)", t.Name.Quoted(), parens(cols), format, freeze)
	return begin, srcSQL, dstSQL
}

var errTargetFailed = errors.New("target COPY failed")

// StallError is a COPY stream in which no byte moved for Idle: the Side
// that went silent is the one it waited for (no data from the source, or the
// target not taking it).
type StallError struct {
	Side string
	Idle time.Duration
}

func (e *StallError) Error() string {
	return fmt.Sprintf("no data moved for %s: the %s stopped answering (a half-open connection, or a server gone silent); the connection was cut", e.Idle, e.Side)
}

// Unwrap makes a stall a timeout, which retry treats as transient.
func (e *StallError) Unwrap() error { return context.DeadlineExceeded }

// watchStall cuts ctx with a *StallError once cw has seen no byte for limit.
// The returned stop ends the watch (idempotent).
func watchStall(ctx context.Context, cut context.CancelCauseFunc, cw *countingWriter, limit time.Duration) (stop func()) {
	done := make(chan struct{})
	var once sync.Once
	tick := min(limit/4, time.Second)
	go func() {
		t := time.NewTicker(tick)
		defer t.Stop()
		for {
			select {
			case <-done:
				return
			case <-ctx.Done():
				return
			case <-t.C:
				idle := time.Since(time.Unix(0, cw.last.Load()))
				if idle < limit || cw.paused.Load() > 0 {
					continue
				}
				side := "source"
				if cw.writing.Load() {
					side = "target" // the source's bytes wait for the target to take them
				}
				cut(&StallError{Side: side, Idle: idle.Round(time.Second)})
				return
			}
		}
	}()
	return func() { once.Do(func() { close(done) }) }
}

func parens(cols string) string {
	if cols == "" {
		return ""
	}
	return "(" + cols + ")"
}

// exec runs statements with the simple protocol, without result decoding.
func exec(ctx context.Context, conn *pgx.Conn, sql string) error {
	_, err := conn.PgConn().Exec(ctx, sql).ReadAll()
	return err
}

func quoteLiteral(s string) string { return "'" + strings.ReplaceAll(s, "'", "''") + "'" }

// oneLine shortens an error for a warning line.
func oneLine(err error) string {
	return strings.Join(strings.Fields(err.Error()), " ")
}

// countingWriter counts the rows (COPY sends one message per row) and bytes going
// through, publishing them to the progress tracker in batches.
type countingWriter struct {
	// last is when a byte last moved (unix nanoseconds); writing is set while
	// a write waits for the target to take the bytes.
	last    atomic.Int64
	writing atomic.Bool
	// paused counts waits for the target's schema (read-ahead): no stall.
	paused atomic.Int32

	buf          *bufio.Writer
	table        *progress.Table
	rows, bytes  int64
	pendingRows  int64
	pendingBytes int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	c.last.Store(time.Now().UnixNano())
	c.writing.Store(true)
	n, err := c.buf.Write(p)
	c.writing.Store(false)
	c.last.Store(time.Now().UnixNano())
	c.rows++
	c.bytes += int64(n)
	c.pendingRows++
	c.pendingBytes += int64(n)
	if c.pendingBytes >= 256<<10 {
		c.flushProgress()
	}
	return n, err
}

// pause marks the start and end of a wait that is not a stall.
func (c *countingWriter) pause(on bool) {
	if on {
		c.paused.Add(1)
		return
	}
	c.last.Store(time.Now().UnixNano())
	c.paused.Add(-1)
}

func (c *countingWriter) flushProgress() {
	c.table.Add(c.pendingRows, c.pendingBytes)
	c.pendingRows, c.pendingBytes = 0, 0
}

// diskFull turns the target's "no space left" (SQLSTATE 53100, disk_full;
// 53200 out of memory is not this) into what to do about it: nothing is lost,
// and the same command resumes once there is room.
func diskFull(err error, doing string) *problem.Problem {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) || pe.Code != "53100" {
		return nil
	}
	return &problem.Problem{
		Msg: fmt.Sprintf("the target ran out of disk space while %s (%s)", doing, pe.Message),
		Fix: "free space on the target's disk holding that file (the path names the tablespace: pg_tblspc/OID is the tablespace with that OID), or grow it, then run the same command again: the copy resumes where it stopped",
	}
}

// maxFarWorkers caps the copy connections opened for a far source.
const maxFarWorkers = 16

// copyWorkers is how many parts are copied at once: --jobs, or, when --jobs
// was not given and the source is far (a round trip of 2 ms or more), more:
// a small table's copy then waits on round trips, not on a CPU, and each
// connection hides one round trip's wait. The planner also keeps half of each
// server's free connection slots for others.
func (r *run) copyWorkers(parts []*part) int {
	n := r.opts.Jobs
	if r.jobsChosen && r.srcRTT >= 2*time.Millisecond {
		small := 0
		for _, p := range parts {
			if p.weight < 64<<20 {
				small++
			}
		}
		if small > n {
			n = min(maxFarWorkers, max(n, n*int(r.srcRTT/(5*time.Millisecond))))
			if free := min(r.srcFree, r.dstFree) / 2; free > 0 {
				n = max(r.opts.Jobs, min(n, free))
			}
		}
	}
	return max(1, min(n, len(parts)))
}

// partQueue hands parts to the copiers. A copier may give its part back and
// leave (a server out of sessions) while another copier still runs: the
// last one never leaves, so no part is left behind.
type partQueue struct {
	mu    sync.Mutex
	parts []*part
	live  int
}

// next is the next part, nil when none is left (the copier then leaves).
func (q *partQueue) next() *part {
	q.mu.Lock()
	defer q.mu.Unlock()
	if len(q.parts) == 0 {
		q.live--
		return nil
	}
	p := q.parts[0]
	q.parts = q.parts[1:]
	return p
}

// giveBack puts p back at the head of the queue and counts its copier out,
// unless it is the last one; n is how many copiers remain.
func (q *partQueue) giveBack(p *part) (n int, ok bool) {
	q.mu.Lock()
	defer q.mu.Unlock()
	if q.live <= 1 {
		return q.live, false
	}
	q.parts = append([]*part{p}, q.parts...)
	q.live--
	return q.live, true
}

// tooManyConnections: the server refused a session (SQLSTATE 53300).
func tooManyConnections(err error) bool {
	var pe *pgconn.PgError
	return errors.As(err, &pe) && pe.Code == "53300"
}
