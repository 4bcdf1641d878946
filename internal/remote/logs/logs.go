// Package logs ships a worker's log lines to CloudWatch Logs (one stream per
// job, batched) and reads them back a page at a time for the API.
package logs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// Limits of PutLogEvents: a batch holds at most 10,000 events and 1,048,576
// bytes, counting each event's message in UTF-8 plus 26 bytes; an event is at
// most 256 KiB.
const (
	MaxBatchEvents = 10000
	MaxBatchBytes  = 1048576
	EventOverhead  = 26
	MaxEventBytes  = 256 << 10
)

// Defaults of a Writer.
const (
	DefaultMaxBuffered  = 16 << 20
	DefaultFlushTimeout = 10 * time.Second
)

// Writer ships lines to one log stream. Write never waits on the network: it
// queues the line (dropping the oldest ones, counted, when more than
// MaxBuffered bytes wait) and wakes the flusher. Flushes send batches within
// the service's limits, each call bounded by FlushTimeout. When lines were
// dropped, the next successful flush says how many.
type Writer struct {
	CW     *cloudwatchlogs.Client
	Group  string
	Stream string
	// MaxBuffered bounds the memory of lines waiting to be sent.
	MaxBuffered int
	// FlushTimeout bounds each PutLogEvents call.
	FlushTimeout time.Duration

	mu          sync.Mutex
	pending     []types.InputLogEvent
	bytes       int
	dropped     int64 // since the last notice
	droppedAll  int64
	created     bool
	wake        chan struct{}
	sending     chan struct{} // one flush at a time; waiting for it honours the context
	initialized sync.Once
}

func (w *Writer) init() {
	w.initialized.Do(func() {
		w.wake = make(chan struct{}, 1)
		w.sending = make(chan struct{}, 1)
		if w.MaxBuffered == 0 {
			w.MaxBuffered = DefaultMaxBuffered
		}
		if w.FlushTimeout == 0 {
			w.FlushTimeout = DefaultFlushTimeout
		}
	})
}

// size is what an event counts against a batch.
func size(e types.InputLogEvent) int { return len(aws.ToString(e.Message)) + EventOverhead }

// Truncate cuts a line to the largest event the service takes, on a UTF-8
// boundary, saying so.
func Truncate(line string) string {
	const marker = " [truncated]"
	max := MaxEventBytes - EventOverhead
	if len(line) <= max {
		return line
	}
	cut := max - len(marker)
	for cut > 0 && !utf8.RuneStart(line[cut]) {
		cut--
	}
	return line[:cut] + marker
}

// Write queues one line; it never blocks on the network.
func (w *Writer) Write(line string) {
	w.init()
	e := types.InputLogEvent{Message: aws.String(Truncate(line)), Timestamp: aws.Int64(time.Now().UnixMilli())}
	w.mu.Lock()
	w.pending = append(w.pending, e)
	w.bytes += size(e)
	for w.bytes > w.MaxBuffered && len(w.pending) > 1 {
		w.bytes -= size(w.pending[0])
		w.pending[0] = types.InputLogEvent{}
		w.pending = w.pending[1:] // append reallocates, which frees the dropped ones
		w.dropped++
		w.droppedAll++
	}
	full := len(w.pending) >= MaxBatchEvents || w.bytes >= MaxBatchBytes
	w.mu.Unlock()
	if full {
		select {
		case w.wake <- struct{}{}:
		default:
		}
	}
}

// Dropped is how many lines were dropped in all (the service was down for
// longer than the buffer lasts).
func (w *Writer) Dropped() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.droppedAll
}

// Unsent is how many lines never reached the service: dropped, or still
// queued.
func (w *Writer) Unsent() int64 {
	w.mu.Lock()
	defer w.mu.Unlock()
	return w.droppedAll + int64(len(w.pending))
}

// batch takes the oldest pending events that fit one call.
func (w *Writer) batch() []types.InputLogEvent {
	w.mu.Lock()
	defer w.mu.Unlock()
	n, b := 0, 0
	for n < len(w.pending) && n < MaxBatchEvents && b+size(w.pending[n]) <= MaxBatchBytes {
		b += size(w.pending[n])
		n++
	}
	return append([]types.InputLogEvent(nil), w.pending[:n]...)
}

// sent removes a batch that reached the service.
func (w *Writer) sent(batch []types.InputLogEvent) {
	w.mu.Lock()
	defer w.mu.Unlock()
	// Lines dropped meanwhile may have taken some of the batch already.
	for len(batch) > 0 && len(w.pending) > 0 && w.pending[0].Message == batch[0].Message {
		w.bytes -= size(w.pending[0])
		w.pending, batch = w.pending[1:], batch[1:]
	}
}

// Flush sends what is queued, a batch at a time, each call bounded by
// FlushTimeout. It stops at the first failure (the lines stay queued).
func (w *Writer) Flush(ctx context.Context) error {
	w.init()
	select {
	case w.sending <- struct{}{}:
	case <-ctx.Done():
		return ctx.Err()
	}
	defer func() { <-w.sending }()
	for {
		// The loss is said where it happened: before the oldest line kept.
		w.mu.Lock()
		dropped, at := w.dropped, time.Now().UnixMilli()
		if len(w.pending) > 0 {
			at = aws.ToInt64(w.pending[0].Timestamp)
		}
		w.mu.Unlock()
		if dropped > 0 {
			notice := types.InputLogEvent{Timestamp: aws.Int64(at),
				Message: aws.String(fmt.Sprintf("replicator: %d log line(s) were dropped while CloudWatch Logs could not be reached", dropped))}
			if err := w.put(ctx, []types.InputLogEvent{notice}); err != nil {
				return err
			}
			w.mu.Lock()
			w.dropped -= dropped
			w.mu.Unlock()
		}
		batch := w.batch()
		if len(batch) == 0 {
			return nil
		}
		if err := w.put(ctx, batch); err != nil {
			return err
		}
		w.sent(batch)
	}
}

func (w *Writer) put(ctx context.Context, batch []types.InputLogEvent) error {
	ctx, cancel := context.WithTimeout(ctx, w.FlushTimeout)
	defer cancel()
	if !w.created {
		_, err := w.CW.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: &w.Group, LogStreamName: &w.Stream})
		var exists *types.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("create log stream: %w", err)
		}
		w.created = true
	}
	if _, err := w.CW.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{LogGroupName: &w.Group, LogStreamName: &w.Stream, LogEvents: batch}); err != nil {
		return fmt.Errorf("ship logs: %w", err)
	}
	return nil
}

// Run flushes every interval, and at once when a batch is full, until ctx
// ends; then once more, bounded by FlushTimeout.
func (w *Writer) Run(ctx context.Context, every time.Duration) {
	w.init()
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), w.FlushTimeout)
			_ = w.Flush(fctx)
			cancel()
			return
		case <-t.C:
		case <-w.wake:
		}
		_ = w.Flush(ctx)
	}
}

// Page is some of a job's lines and the cursor to the next ones.
type Page struct {
	Lines []Line `json:"lines"`
	Next  string `json:"next_cursor"`
}

// Line is one log line.
type Line struct {
	Time    time.Time `json:"time"`
	Message string    `json:"message"`
}

// ErrInvalidCursor is a cursor the service does not recognise.
var ErrInvalidCursor = errors.New("invalid cursor")

// Read returns the lines of a job's stream after cursor ("" from the start).
// A stream not yet created reads as empty.
func Read(ctx context.Context, cw *cloudwatchlogs.Client, group, stream, cursor string, limit int32) (*Page, error) {
	in := &cloudwatchlogs.GetLogEventsInput{
		LogGroupName: &group, LogStreamName: &stream, StartFromHead: aws.Bool(true), Limit: aws.Int32(limit),
	}
	if cursor != "" {
		in.NextToken = aws.String(cursor)
	}
	out, err := cw.GetLogEvents(ctx, in)
	var nf *types.ResourceNotFoundException
	if errors.As(err, &nf) {
		return &Page{Lines: []Line{}, Next: cursor}, nil
	}
	var bad *types.InvalidParameterException
	if errors.As(err, &bad) && cursor != "" {
		return nil, ErrInvalidCursor
	}
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	p := &Page{Lines: []Line{}, Next: aws.ToString(out.NextForwardToken)}
	for _, e := range out.Events {
		p.Lines = append(p.Lines, Line{Time: time.UnixMilli(aws.ToInt64(e.Timestamp)).UTC(), Message: aws.ToString(e.Message)})
	}
	return p, nil
}
