package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"sort"
	"strings"
	"sync"
	"time"

	"github.com/jackc/pgx/v5"
	"golang.org/x/sync/errgroup"

	"github.com/replicatorhq/replicator/internal/progress"
)

// part is one unit of copy work: a whole table or a range of its heap pages.
type part struct {
	table *tableWork
	// lo and hi bound the heap pages (ctid) of a range; whole is set when the part
	// is the entire table.
	lo, hi int64
	last   bool // open-ended: from lo to the end (rows appended after planning)
	whole  bool
	weight int64
}

// copyAndIndex streams every table's rows with COPY, several at once, and builds
// each table's indexes and key constraints as soon as its rows are all in, while
// other tables are still copying.
func (r *run) copyAndIndex(ctx context.Context, w *dbWork) error {
	start := time.Now()
	r.emit(progress.Event{Kind: progress.StepStarted, Database: w.name, Step: "copy"})
	parts := r.planParts(w)

	// Enough room for every index task so that producers never block.
	nIndex := 0
	for _, t := range w.tables {
		nIndex += len(t.indexes) + 1
	}
	indexCh := make(chan indexTask, nIndex)
	partCh := make(chan *part, len(parts))
	for _, p := range parts {
		partCh <- p
	}
	w.copying.Store(int64(len(parts)))
	close(partCh)

	// Tables without rows to copy get their indexes right away.
	for _, t := range w.tables {
		if !t.copyData || t.partsLeft == 0 {
			t.enqueueIndexes(indexCh)
		}
	}

	g, gctx := errgroup.WithContext(ctx)
	var copiers sync.WaitGroup
	var copySpan span
	workers := min(r.opts.Jobs, len(parts))
	for i := 0; i < workers; i++ {
		copiers.Add(1)
		g.Go(func() error {
			defer copiers.Done()
			return r.copyWorker(gctx, w, partCh, indexCh, &copySpan)
		})
	}
	go func() {
		copiers.Wait()
		close(indexCh)
	}()
	var indexSpan span
	if nIndex > 0 {
		for i := 0; i < r.opts.IndexJobs; i++ {
			g.Go(func() error { return r.indexWorker(gctx, w, indexCh, &indexSpan) })
		}
	}
	err := g.Wait()

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
	ev := progress.Event{Kind: progress.StepDone, Database: w.name, Step: "copy", Seconds: d.Seconds(), Bytes: bytes}
	if err != nil {
		ev.Message = "failed"
	}
	r.emit(ev)
	return err
}

// planParts splits tables larger than the threshold into page ranges (TID range
// scans, PostgreSQL 14+) and orders all parts largest first, so the longest work
// starts early and small tables fill the gaps at the end.
func (r *run) planParts(w *dbWork) []*part {
	var parts []*part
	threshold := r.opts.SplitThreshold
	for _, t := range w.tables {
		if !t.copyData {
			continue
		}
		n := int64(1)
		if threshold > 0 && t.Bytes > threshold && t.Pages > 1 {
			n = min((t.Bytes+threshold-1)/threshold, t.Pages, 64)
		}
		if n == 1 {
			parts = append(parts, &part{table: t, whole: true, last: true, weight: t.Bytes})
		} else {
			step := (t.Pages + n - 1) / n
			for lo := int64(0); lo < t.Pages; lo += step {
				p := &part{table: t, lo: lo, hi: lo + step, weight: t.Bytes / n}
				p.last = p.hi >= t.Pages
				parts = append(parts, p)
			}
		}
	}
	for _, p := range parts {
		p.table.partsLeft++
		p.table.parts++
	}
	sort.SliceStable(parts, func(i, j int) bool { return parts[i].weight > parts[j].weight })
	return parts
}

func (r *run) copyWorker(ctx context.Context, w *dbWork, parts <-chan *part, indexCh chan<- indexTask, sp *span) error {
	src, err := w.src.Connect(ctx)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	dst, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer dst.Close(context.Background())
	if err := sourceSession(ctx, src); err != nil {
		return err
	}
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return fmt.Errorf("begin: %w", err)
	}
	if _, err := src.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(w.snapshot)); err != nil {
		return fmt.Errorf("import snapshot: %w", err)
	}
	// The database encoding on both ends: no conversion on the way.
	enc := "; SET client_encoding = " + quoteLiteral(w.encoding)
	if _, err := src.Exec(ctx, "SET client_encoding = "+quoteLiteral(w.encoding)); err != nil {
		return fmt.Errorf("set source encoding: %w", err)
	}
	if err := targetSession(ctx, dst, enc); err != nil {
		return err
	}
	for p := range parts {
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
		rows, bytes, err := copyPart(ctx, src, dst, p)
		t.progress.End()
		if err != nil {
			return fmt.Errorf("copy %s: %w", t.Name, err)
		}
		sp.add(start, time.Now())
		w.copying.Add(-1)
		if t.partDone(rows, bytes, time.Since(start)) {
			t.progress.Finish()
			r.emit(progress.Event{Kind: progress.TableDone, Database: w.name, Table: t.Name.String(),
				Rows: t.rows, Bytes: t.bytes, Seconds: time.Since(t.started).Seconds()})
			t.enqueueIndexes(indexCh)
		}
	}
	return nil
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
// whatever the table size. A whole table is truncated and loaded in one
// transaction with FREEZE: rows arrive frozen and visible, with no later VACUUM
// or hint-bit rewrite of the whole table.
func copyPart(ctx context.Context, src, dst *pgx.Conn, p *part) (rows, bytes int64, err error) {
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
		if !p.last {
			conds = append(conds, fmt.Sprintf("ctid < '(%d,0)'::pg_catalog.tid", p.hi))
		}
	}
	if t.decision.Predicate != "" {
		conds = append(conds, t.decision.Predicate)
	}
	var srcSQL string
	if len(conds) == 0 {
		srcSQL = fmt.Sprintf("COPY %s %s TO STDOUT (FORMAT %s)", t.Name.Quoted(), parens(cols), format)
	} else {
		srcSQL = fmt.Sprintf("COPY (SELECT %s FROM ONLY %s WHERE %s) TO STDOUT (FORMAT %s)",
			cols, t.Name.Quoted(), strings.Join(conds, " AND "), format)
	}
	freeze := ""
	if p.whole {
		freeze = ", FREEZE"
		if err := exec(ctx, dst, "BEGIN; TRUNCATE ONLY "+t.Name.Quoted()); err != nil {
			return 0, 0, fmt.Errorf("target: %w", err)
		}
	}
	dstSQL := fmt.Sprintf("COPY %s %s FROM STDIN (FORMAT %s%s)", t.Name.Quoted(), parens(cols), format, freeze)

	pr, pw := io.Pipe()
	cw := &countingWriter{table: t.progress}
	cw.buf = bufio.NewWriterSize(pw, 256<<10)
	srcErr := make(chan error, 1)
	go func() {
		_, err := src.PgConn().CopyTo(ctx, cw, srcSQL)
		if err == nil {
			err = cw.buf.Flush()
		}
		cw.flushProgress()
		pw.CloseWithError(err)
		srcErr <- err
	}()
	tag, dstErr := dst.PgConn().CopyFrom(ctx, pr, dstSQL)
	if dstErr != nil {
		pr.CloseWithError(errTargetFailed)
	}
	if err := <-srcErr; err != nil && !errors.Is(err, errTargetFailed) {
		if p.whole {
			_ = exec(context.Background(), dst, "ROLLBACK")
		}
		return 0, 0, fmt.Errorf("source: %w", err)
	}
	if dstErr != nil {
		if p.whole {
			_ = exec(context.Background(), dst, "ROLLBACK")
		}
		return 0, 0, fmt.Errorf("target: %w", dstErr)
	}
	if p.whole {
		if err := exec(ctx, dst, "COMMIT"); err != nil {
			return 0, 0, fmt.Errorf("target: commit: %w", err)
		}
	}
	rows = tag.RowsAffected()
	// Messages counted on the way are rows give or take the binary header; the
	// command tag is exact.
	if t.progress != nil {
		t.progress.Add(rows-cw.rows, 0)
	}
	return rows, cw.bytes, nil
}

var errTargetFailed = errors.New("target COPY failed")

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

// countingWriter counts the rows (COPY sends one message per row) and bytes going
// through, publishing them to the progress tracker in batches.
type countingWriter struct {
	buf          *bufio.Writer
	table        *progress.Table
	rows, bytes  int64
	pendingRows  int64
	pendingBytes int64
}

func (c *countingWriter) Write(p []byte) (int, error) {
	n, err := c.buf.Write(p)
	c.rows++
	c.bytes += int64(n)
	c.pendingRows++
	c.pendingBytes += int64(n)
	if c.pendingBytes >= 256<<10 {
		c.flushProgress()
	}
	return n, err
}

func (c *countingWriter) flushProgress() {
	if c.table != nil {
		c.table.Add(c.pendingRows, c.pendingBytes)
	}
	c.pendingRows, c.pendingBytes = 0, 0
}
