package engine

import (
	"context"
	"io"
	"os"
	"sync"
	"sync/atomic"
)

// readAhead lets the copy read the source while the target's schema is still
// being restored. Against a far source the schema dump is a long string of
// round trips (pg_dump's catalog queries, one after another) during which
// the source's COPY would otherwise sit idle; instead each copy worker starts
// its first part's COPY TO into a spool file and loads the spool into the
// target once pre-data is in. Nothing touches the target before ready.
type readAhead struct {
	ready <-chan struct{} // closed once pre-data is restored
	dir   string          // where spool files go (unlinked at once)
	limit int64           // bytes the database's copy may spool
	// partLimit is what one part may spool before its source waits.
	partLimit int64

	// What was read ahead, for the summary.
	spooled atomic.Int64
	parts   atomic.Int32
}

// readAheadBudget is the most a database's copy spools before the target
// is ready, shared by its workers: at 50 ms from the source a few seconds
// of reading, and disk, not memory.
const readAheadBudget = 1 << 30

// perPart is the spool one part may fill with workers reading at once.
func (a *readAhead) perPart(workers int) int64 {
	return max(64<<20, a.limit/int64(max(1, workers)))
}

// started reports whether the target is ready (no read-ahead needed).
func (a *readAhead) started() bool {
	if a == nil {
		return true
	}
	select {
	case <-a.ready:
		return true
	default:
		return false
	}
}

// wait returns once the target is ready.
func (a *readAhead) wait(ctx context.Context) error {
	if a == nil {
		return nil
	}
	select {
	case <-a.ready:
		return nil
	case <-ctx.Done():
		return context.Cause(ctx)
	}
}

// spool is the sink of a part read ahead: bytes go to an unlinked file until
// handOver, then straight into the pipe the target reads, which sees the
// file's bytes first. One goroutine writes.
type spool struct {
	f      *os.File
	pw     *io.PipeWriter
	limit  int64
	handed chan struct{}
	// counted adds up what the database's parts spooled.
	counted *atomic.Int64
	// waiting tells the stall watch that the source waits for the target's
	// schema, not for a silent server.
	waiting func(bool)

	mu     sync.Mutex
	direct bool
	size   int64
}

func newSpool(a *readAhead, pw *io.PipeWriter, waiting func(bool)) (*spool, error) {
	f, err := os.CreateTemp(a.dir, "replicator-spool-")
	if err != nil {
		return nil, err
	}
	// Unlinked: the space goes back when the file closes, whatever happens.
	os.Remove(f.Name())
	a.parts.Add(1)
	return &spool{f: f, pw: pw, limit: a.partLimit, counted: &a.spooled, handed: make(chan struct{}), waiting: waiting}, nil
}

// write appends to the file while there is room, and otherwise waits for
// the hand-over (the source then waits on TCP, which is what bounds it).
func (s *spool) write(ctx context.Context, p []byte) (int, error) {
	s.mu.Lock()
	if s.direct {
		s.mu.Unlock()
		return s.pw.Write(p)
	}
	written := 0
	if s.size+int64(len(p)) <= s.limit {
		n, err := s.f.Write(p)
		s.size += int64(n)
		s.counted.Add(int64(n))
		written = n
		if err == nil {
			s.mu.Unlock()
			return n, nil
		}
		// A full disk only ends the read-ahead: the rest goes by the pipe.
	}
	s.mu.Unlock()
	s.waiting(true)
	select {
	case <-s.handed:
	case <-ctx.Done():
		s.waiting(false)
		return written, context.Cause(ctx)
	}
	s.waiting(false)
	n, err := s.pw.Write(p[written:])
	return written + n, err
}

// handOver ends the spooling: the reader gets the spooled bytes, then the
// pipe.
func (s *spool) handOver(pr *io.PipeReader) io.Reader {
	s.mu.Lock()
	s.direct = true
	size := s.size
	s.mu.Unlock()
	close(s.handed)
	return io.MultiReader(io.NewSectionReader(s.f, 0, size), pr)
}

func (s *spool) close() { s.f.Close() }

// spoolWriter binds a spool to the context of its COPY.
type spoolWriter struct {
	ctx context.Context
	s   *spool
}

func (w spoolWriter) Write(p []byte) (int, error) { return w.s.write(w.ctx, p) }
