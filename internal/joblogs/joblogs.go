// Package joblogs ships a worker's log lines to CloudWatch Logs (one stream per
// job, batched) and reads them back a page at a time for the API.
package joblogs

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
)

// Writer batches lines into PutLogEvents calls.
type Writer struct {
	CW     *cloudwatchlogs.Client
	Group  string
	Stream string

	mu      sync.Mutex
	pending []types.InputLogEvent
	created bool
}

// Maximum batch before a flush is forced (PutLogEvents takes 10,000 events).
const maxBatch = 1000

// Write queues one line.
func (w *Writer) Write(line string) {
	w.mu.Lock()
	w.pending = append(w.pending, types.InputLogEvent{Message: aws.String(line), Timestamp: aws.Int64(time.Now().UnixMilli())})
	full := len(w.pending) >= maxBatch
	w.mu.Unlock()
	if full {
		_ = w.Flush(context.Background())
	}
}

// Flush sends the queued lines.
func (w *Writer) Flush(ctx context.Context) error {
	w.mu.Lock()
	defer w.mu.Unlock()
	if len(w.pending) == 0 {
		return nil
	}
	if !w.created {
		_, err := w.CW.CreateLogStream(ctx, &cloudwatchlogs.CreateLogStreamInput{LogGroupName: &w.Group, LogStreamName: &w.Stream})
		var exists *types.ResourceAlreadyExistsException
		if err != nil && !errors.As(err, &exists) {
			return fmt.Errorf("create log stream: %w", err)
		}
		w.created = true
	}
	if _, err := w.CW.PutLogEvents(ctx, &cloudwatchlogs.PutLogEventsInput{
		LogGroupName: &w.Group, LogStreamName: &w.Stream, LogEvents: w.pending,
	}); err != nil {
		return fmt.Errorf("ship logs: %w", err)
	}
	w.pending = nil
	return nil
}

// Run flushes every interval until ctx ends, then once more.
func (w *Writer) Run(ctx context.Context, every time.Duration) {
	t := time.NewTicker(every)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			fctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
			_ = w.Flush(fctx)
			cancel()
			return
		case <-t.C:
			_ = w.Flush(ctx)
		}
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
	if err != nil {
		return nil, fmt.Errorf("read logs: %w", err)
	}
	p := &Page{Lines: []Line{}, Next: aws.ToString(out.NextForwardToken)}
	for _, e := range out.Events {
		p.Lines = append(p.Lines, Line{Time: time.UnixMilli(aws.ToInt64(e.Timestamp)).UTC(), Message: aws.ToString(e.Message)})
	}
	return p, nil
}
