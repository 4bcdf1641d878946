package engine

import (
	"bufio"
	"context"
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/jackc/pgx/v5"
)

// stream is one part's way from the source's COPY TO to the target's COPY
// FROM: a pipe, or a spool while the target is not ready (read-ahead), the
// counts on the way, the stall watch, and which side failed first.
type stream struct {
	ctx, outer context.Context
	cut        context.CancelCauseFunc
	stopWatch  func()
	t          *tableWork
	cw         *countingWriter
	pr         *io.PipeReader
	pw         *io.PipeWriter
	sp         *spool
	dst        *pgx.Conn

	// srcDone closes when the source's COPY has ended, with srcErr.
	srcDone chan struct{}
	srcErr  error
}

func openStream(ctx context.Context, t *tableWork, ahead *readAhead, stall time.Duration) (*stream, error) {
	st := &stream{outer: ctx, t: t, cw: &countingWriter{table: t.progress}, srcDone: make(chan struct{})}
	st.cw.last.Store(time.Now().UnixNano())
	st.ctx, st.cut = context.WithCancelCause(ctx)
	st.pr, st.pw = io.Pipe()
	if !ahead.started() {
		var err error
		if st.sp, err = newSpool(ahead, st.pw, st.cw.pause); err != nil {
			st.cut(nil)
			return nil, fmt.Errorf("read ahead: %w", err)
		}
		st.cw.buf = bufio.NewWriterSize(spoolWriter{ctx: st.ctx, s: st.sp}, 256<<10)
	} else {
		st.cw.buf = bufio.NewWriterSize(st.pw, 256<<10)
	}
	st.stopWatch = watchStall(st.ctx, st.cut, st.cw, stall)
	return st, nil
}

func (st *stream) close() {
	st.stopWatch()
	st.cut(nil)
	if st.sp != nil {
		st.sp.close()
	}
}

// readSource runs the source's COPY TO in the background.
func (st *stream) readSource(src *pgx.Conn, sql string) {
	go func() {
		defer close(st.srcDone)
		_, err := src.PgConn().CopyTo(st.ctx, st.cw, sql)
		if err == nil {
			st.cw.writing.Store(true)
			err = st.cw.buf.Flush()
			st.cw.writing.Store(false)
		}
		st.cw.flushProgress()
		st.pw.CloseWithError(err)
		st.srcErr = err
	}()
}

// awaitTarget waits, when the part reads ahead, for the target's tables,
// and returns what the target's COPY reads: the spool, then the pipe. A
// source that fails meanwhile is reported at once (and retried now), not
// once the target is ready.
func (st *stream) awaitTarget(ahead *readAhead) (io.Reader, error) {
	if st.sp == nil {
		return st.pr, nil
	}
	st.cw.pause(true)
	defer st.cw.pause(false)
	select {
	case <-ahead.ready:
	case <-st.ctx.Done():
		return nil, context.Cause(st.ctx)
	case <-st.srcDone:
		if st.srcErr != nil {
			return nil, st.srcErr
		}
		if err := ahead.wait(st.ctx); err != nil {
			return nil, err
		}
	}
	return st.sp.handOver(st.pr), nil
}

// sourceEnd waits for the source's COPY to end once the target's has.
func (st *stream) sourceEnd() error {
	<-st.srcDone
	if st.srcErr != nil {
		st.t.progress.Add(-st.cw.rows, -st.cw.bytes)
		st.rollback()
		return fmt.Errorf("source: %w", st.stalled(st.srcErr))
	}
	st.stopWatch()
	return nil
}

// stalled is err, or the stall that cut the stream.
func (st *stream) stalled(err error) error {
	var se *StallError
	if c := context.Cause(st.ctx); st.outer.Err() == nil && errors.As(c, &se) {
		return se
	}
	return err
}

// rollback ends the target's transaction, bounded: on a connection that
// stopped answering it waits for nothing (closing it rolls back anyway).
func (st *stream) rollback() {
	if st.dst == nil {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = exec(ctx, st.dst, "ROLLBACK")
}

// fail ends both sides after err and says which side failed first.
func (st *stream) fail(err error) error {
	defer st.rollback()
	defer func() { st.t.progress.Add(-st.cw.rows, -st.cw.bytes) }()
	select {
	case <-st.srcDone:
		if st.srcErr != nil {
			// The source failed first: the target only saw its end.
			return fmt.Errorf("source: %w", st.stalled(st.srcErr))
		}
	default:
		st.pr.CloseWithError(errTargetFailed)
		st.cut(errTargetFailed) // also a spool waiting for the hand-over
		<-st.srcDone
	}
	return fmt.Errorf("target: %w", st.stalled(err))
}
