package logs_test

import (
	"context"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/smithy-go/middleware"

	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

var moto *devstack.Moto

func TestMain(m *testing.M) { devstack.Main(m, &moto) }

type call struct{ events, bytes, largest int }

// client talks to endpoint (moto, or an outage), recording each PutLogEvents.
func client(t *testing.T, endpoint string, calls *[]call, mu *sync.Mutex) *cloudwatchlogs.Client {
	t.Helper()
	s, err := devstack.MotoClients(context.Background(), endpoint)
	if err != nil {
		t.Fatal(err)
	}
	cfg := s.AWS.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(st *middleware.Stack) error {
		return st.Initialize.Add(middleware.InitializeMiddlewareFunc("record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if p, ok := in.Parameters.(*cloudwatchlogs.PutLogEventsInput); ok && calls != nil {
				c := call{events: len(p.LogEvents)}
				for _, e := range p.LogEvents {
					n := len(aws.ToString(e.Message)) + logs.EventOverhead
					c.bytes += n
					c.largest = max(c.largest, n)
				}
				mu.Lock()
				*calls = append(*calls, c)
				mu.Unlock()
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
	return cloudwatchlogs.NewFromConfig(cfg)
}

func group(t *testing.T, cw *cloudwatchlogs.Client) string {
	t.Helper()
	g := "/replicator/test/" + strings.ToLower(strings.NewReplacer("/", "-", " ", "-").Replace(t.Name()))
	if _, err := cw.CreateLogGroup(context.Background(), &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String(g)}); err != nil {
		t.Fatal(err)
	}
	return g
}

func readAll(t *testing.T, cw *cloudwatchlogs.Client, g, stream string) []string {
	t.Helper()
	var out []string
	cursor := ""
	for {
		p, err := logs.Read(context.Background(), cw, g, stream, cursor, 10000)
		if err != nil {
			t.Fatal(err)
		}
		for _, l := range p.Lines {
			out = append(out, l.Message)
		}
		if len(p.Lines) == 0 || p.Next == cursor {
			return out
		}
		cursor = p.Next
	}
}

// Rule (CloudWatch Logs PutLogEvents): a batch holds at most 10,000 events and
// 1,048,576 bytes (each message in UTF-8 plus 26 bytes), an event at most
// 256 KiB. A 100,000-line burst with some huge lines goes out in batches that
// keep every limit, and every line arrives.
func TestBurstStaysWithinTheServiceLimits(t *testing.T) {
	var calls []call
	var mu sync.Mutex
	cw := client(t, moto.URL, &calls, &mu)
	g := group(t, cw)
	w := &logs.Writer{CW: cw, Group: g, Stream: "burst"}
	huge := strings.Repeat("é", 200<<10) // 400 KiB of UTF-8
	for i := 0; i < 100000; i++ {
		line := fmt.Sprintf(`{"event":"table_done","table":"public.t%06d","rows":%d}`, i, i)
		if i%25000 == 0 {
			line = huge
		}
		w.Write(line)
	}
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	if len(calls) < 10 {
		t.Errorf("%d calls for 100,000 lines: batches over 10,000 events?", len(calls))
	}
	for i, c := range calls {
		if c.events > logs.MaxBatchEvents || c.bytes > logs.MaxBatchBytes || c.largest > logs.MaxEventBytes {
			t.Errorf("call %d: %d events, %d bytes, largest event %d bytes: over the service's limits", i, c.events, c.bytes, c.largest)
		}
	}
	got := readAll(t, cw, g, "burst")
	if len(got) != 100000 {
		t.Fatalf("%d of 100,000 lines arrived", len(got))
	}
	if !strings.HasSuffix(got[0], " [truncated]") || len(got[0]) > logs.MaxEventBytes {
		t.Errorf("a huge line was not cut to the event limit: %d bytes", len(got[0]))
	}
	if w.Dropped() != 0 {
		t.Errorf("%d lines dropped with the service up", w.Dropped())
	}
}

// An outage of CloudWatch Logs never blocks the writer: lines queue, the
// oldest are dropped once the buffer is full, each flush gives up after its
// timeout, and when the service is back the first line says how many were
// lost.
func TestOutageNeverBlocksAndLossIsReported(t *testing.T) {
	release := make(chan struct{})
	hang := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		select { // a half-open connection: no answer at all
		case <-release:
		case <-r.Context().Done():
		}
	}))
	defer hang.Close()
	defer close(release)

	up := client(t, moto.URL, nil, nil)
	g := group(t, up)
	w := &logs.Writer{CW: client(t, hang.URL, nil, nil), Group: g, Stream: "outage", MaxBuffered: 1 << 20, FlushTimeout: 200 * time.Millisecond}
	ctx, stop := context.WithCancel(context.Background())
	done := make(chan struct{})
	go func() { w.Run(ctx, 50*time.Millisecond); close(done) }()
	const lines = 200000
	for i := 0; i < lines; i++ {
		w.Write(fmt.Sprintf("line %06d %s", i, strings.Repeat("x", 80)))
	}
	// All writes returned with the service hanging; the flusher gives up
	// each call after its timeout.
	if err := w.Flush(context.Background()); err == nil {
		t.Fatal("a flush into a hanging service succeeded")
	}
	stop()
	<-done
	dropped := w.Dropped()
	if dropped == 0 {
		t.Fatalf("200,000 lines fit a 1 MiB buffer?")
	}
	// The service is back. (The short timeout was for the outage: a
	// megabyte of lines may take moto longer than 200 ms on a busy machine.)
	w.CW, w.FlushTimeout = up, 10*time.Second
	if err := w.Flush(context.Background()); err != nil {
		t.Fatal(err)
	}
	got := readAll(t, up, g, "outage")
	want := fmt.Sprintf("replicator: %d log line(s) were dropped while CloudWatch Logs could not be reached", dropped)
	if len(got) == 0 || got[0] != want {
		t.Fatalf("first line %q, want %q", got[:min(1, len(got))], want)
	}
	if int64(len(got)-1)+dropped != lines || got[len(got)-1] != fmt.Sprintf("line %06d %s", lines-1, strings.Repeat("x", 80)) {
		t.Errorf("%d lines arrived, %d dropped, of %d (the newest must be kept)", len(got)-1, dropped, lines)
	}
}
