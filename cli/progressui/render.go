// Package progressui renders engine progress events for people: a live bar on a
// terminal, plain timestamped lines otherwise, or JSON lines with --json.
package progressui

import (
	"encoding/json"
	"fmt"
	"io"
	"strings"
	"sync"
	"time"

	"github.com/vbauerster/mpb/v8"
	"github.com/vbauerster/mpb/v8/decor"

	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/progress"
)

// Renderer is a progress sink that must be closed when the run ends.
type Renderer interface {
	progress.Sink
	Close()
}

// New picks the renderer: JSON lines on stdout with --json, a live bar when
// stderr is a terminal, plain lines on stderr otherwise.
func New(ios *iostreams.IOStreams, jsonLines bool) Renderer {
	switch {
	case jsonLines:
		return &jsonRenderer{enc: json.NewEncoder(ios.Out)}
	case ios.IsStderrTTY():
		return newBarRenderer(ios.ErrOut, ios.TerminalWidth())
	default:
		return &lineRenderer{w: ios.ErrOut, every: 10 * time.Second}
	}
}

type jsonRenderer struct {
	mu  sync.Mutex
	enc *json.Encoder
}

func (j *jsonRenderer) Emit(e progress.Event) {
	j.mu.Lock()
	defer j.mu.Unlock()
	_ = j.enc.Encode(e)
}

func (j *jsonRenderer) Close() {}

// lineRenderer prints one line per step, table and warning, and a progress line
// every so often: readable in CI logs and files.
type lineRenderer struct {
	mu    sync.Mutex
	w     io.Writer
	every time.Duration
	last  time.Time
}

func (l *lineRenderer) Emit(e progress.Event) {
	l.mu.Lock()
	defer l.mu.Unlock()
	if e.Kind == progress.Tick {
		// Nothing moved yet (checks still running): no line worth reading,
		// and a run that stops there ends with its one error line.
		if o := e.Overall; o == nil || o.Bytes == 0 && o.Rows == 0 && o.TablesDone == 0 || time.Since(l.last) < l.every {
			return
		}
		l.last = time.Now()
	}
	if line := Describe(e); line != "" {
		fmt.Fprintf(l.w, "%s %s\n", e.Time.Format("15:04:05"), line)
	}
}

func (l *lineRenderer) Close() {}

// Describe is the one-line text of an event ("" for events not worth a line).
func Describe(e progress.Event) string {
	db := ""
	if e.Database != "" {
		db = "[" + e.Database + "] "
	}
	switch e.Kind {
	case progress.StepDone:
		if e.Message != "" {
			return "" // the error that ends the run says what went wrong
		}
		return fmt.Sprintf("%s%s done in %s", db, e.Step, Duration(e.Seconds))
	case progress.TableDone:
		if e.Step == "verify" {
			return fmt.Sprintf("%sverified %s: %d rows, %s in %s", db, e.Table, e.Rows, e.Message, Duration(e.Seconds))
		}
		return fmt.Sprintf("%scopied %s: %d rows, %s in %s", db, e.Table, e.Rows, Bytes(e.Bytes), Duration(e.Seconds))
	case progress.Warning:
		return "warning: " + e.Message
	case progress.Info:
		return db + e.Message
	case progress.Tick:
		return overallLine(e.Overall)
	}
	return ""
}

func overallLine(s *progress.Snapshot) string {
	line := fmt.Sprintf("progress: %.1f%%, %d/%d tables, %d rows, %s", s.Percent, s.TablesDone, s.TablesTotal, s.Rows, Bytes(s.Bytes))
	if s.ETASeconds > 0 {
		line += ", ETA " + Duration(s.ETASeconds)
	}
	return line
}

// barRenderer draws an overall bar (percent, bytes, ETA) and a line naming the
// tables in flight; events print above it. The bar appears once preflight is
// done: a question preflight asks (dropping existing databases) is never
// drawn over.
type barRenderer struct {
	w     io.Writer
	width int
	p     *mpb.Progress
	bar   *mpb.Bar
	info  *mpb.Bar
	mu    sync.Mutex
	snap  progress.Snapshot
	// preflight is under way: its questions are asked on a plain terminal.
	startMu           sync.Mutex
	preflight, failed bool
}

func newBarRenderer(w io.Writer, width int) *barRenderer {
	return &barRenderer{w: w, width: width}
}

func (b *barRenderer) start() {
	w, width := b.w, b.width
	b.p = mpb.New(mpb.WithOutput(w), mpb.WithWidth(min(40, width/3)), mpb.WithRefreshRate(200*time.Millisecond), mpb.WithAutoRefresh())
	b.bar = b.p.AddBar(1000,
		mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
			b.mu.Lock()
			defer b.mu.Unlock()
			return fmt.Sprintf("copy %5.1f%%", b.snap.Percent)
		})),
		mpb.AppendDecorators(decor.Any(func(decor.Statistics) string {
			b.mu.Lock()
			defer b.mu.Unlock()
			s := fmt.Sprintf("%d/%d tables  %s  %s", b.snap.TablesDone, b.snap.TablesTotal, Bytes(b.snap.Bytes), Duration(b.snap.ElapsedSecs))
			if b.snap.ETASeconds > 0 {
				s += "  ETA " + Duration(b.snap.ETASeconds)
			}
			return s
		})),
	)
	b.info = b.p.New(0, mpb.NopStyle(), mpb.PrependDecorators(decor.Any(func(decor.Statistics) string {
		b.mu.Lock()
		defer b.mu.Unlock()
		var parts []string
		for i, a := range b.snap.Active {
			if i == 3 {
				parts = append(parts, fmt.Sprintf("+%d more", len(b.snap.Active)-3))
				break
			}
			parts = append(parts, fmt.Sprintf("%s %.0f%% %s", a.Table, a.Percent, Bytes(a.Bytes)))
		}
		line := "  " + strings.Join(parts, " | ")
		if len(line) > width-1 && width > 10 {
			line = line[:width-4] + "..."
		}
		return line
	})))
}

func (b *barRenderer) Emit(e progress.Event) {
	b.startMu.Lock()
	if e.Step == "preflight" && e.Database == "" {
		b.preflight = e.Kind == progress.StepStarted
		if e.Kind == progress.StepDone && e.Message != "" {
			b.failed = true // the run ends: no bar
		}
	}
	if b.p == nil && !b.preflight && !b.failed {
		b.start()
	}
	started := b.p != nil
	b.startMu.Unlock()
	if e.Kind == progress.Tick && e.Overall != nil {
		b.mu.Lock()
		b.snap = *e.Overall
		b.mu.Unlock()
		if started {
			b.bar.SetCurrent(int64(e.Overall.Percent * 10))
		}
		return
	}
	if line := Describe(e); line != "" {
		if !started {
			fmt.Fprintln(b.w, line)
			return
		}
		fmt.Fprintln(b.p, line)
	}
}

func (b *barRenderer) Close() {
	b.startMu.Lock()
	defer b.startMu.Unlock()
	if b.p == nil {
		return
	}
	b.bar.SetTotal(-1, true)
	b.info.SetTotal(-1, true)
	b.p.Wait()
}

// Bytes formats a byte count for people.
func Bytes(n int64) string { return progress.Bytes(n) }

// Duration formats seconds for people: 850ms, 12.3s, 4m05s, 2h03m.
func Duration(sec float64) string {
	d := time.Duration(sec * float64(time.Second))
	switch {
	case d < time.Second:
		return fmt.Sprintf("%dms", d.Milliseconds())
	case d < time.Minute:
		return fmt.Sprintf("%.1fs", d.Seconds())
	case d < time.Hour:
		return fmt.Sprintf("%dm%02ds", int(d.Minutes()), int(d.Seconds())%60)
	default:
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
}
