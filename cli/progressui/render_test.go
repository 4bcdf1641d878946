package progressui

import (
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/progress"
)

func events() []progress.Event {
	now := time.Now()
	return []progress.Event{
		{Time: now, Kind: progress.StepStarted, Step: "preflight"},
		{Time: now, Kind: progress.StepDone, Step: "preflight", Seconds: 0.03},
		{Time: now, Kind: progress.Tick, Overall: &progress.Snapshot{Percent: 42.5, TablesDone: 1, TablesTotal: 3, Bytes: 3 << 20, ETASeconds: 12,
			Active: []progress.TableProgress{{Database: "app", Table: "public.orders", Percent: 40, Bytes: 2 << 20}}}},
		{Time: now, Kind: progress.TableDone, Database: "app", Table: "public.orders", Rows: 1000, Bytes: 2 << 20, Seconds: 1.5},
		{Time: now, Kind: progress.Warning, Message: "app: something to know"},
	}
}

func TestLineRenderer(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	r := New(ios, false)
	for _, e := range events() {
		r.Emit(e)
	}
	r.Close()
	out := errOut.String()
	for _, want := range []string{"preflight done in 30ms", "progress: 42.5%, 1/3 tables", "ETA 12.0s", "[app] copied public.orders: 1000 rows, 2.0 MiB in 1.5s", "warning: app: something to know"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%s", want, out)
		}
	}
	if strings.Contains(out, "preflight ...") {
		t.Errorf("step starts are not worth a line:\n%s", out)
	}
	// Before anything moved, a tick prints nothing.
	ios, _, _, errOut = iostreams.Test()
	r = New(ios, false)
	r.Emit(progress.Event{Time: time.Now(), Kind: progress.Tick, Overall: &progress.Snapshot{TablesTotal: 3}})
	if errOut.Len() != 0 {
		t.Errorf("a progress line before anything moved: %q", errOut.String())
	}
}

func TestBarRendererOnTerminal(t *testing.T) {
	ios, _, _, errOut := iostreams.Test()
	ios.SetTTY(true, true, true)
	r := New(ios, false)
	if _, ok := r.(*barRenderer); !ok {
		t.Fatalf("terminal got %T", r)
	}
	for _, e := range events() {
		r.Emit(e)
	}
	time.Sleep(300 * time.Millisecond) // let a frame render
	r.Close()
	out := errOut.String()
	for _, want := range []string{"copy", "1/3 tables", "public.orders", "warning: app: something to know"} {
		if !strings.Contains(out, want) {
			t.Errorf("missing %q in:\n%q", want, out)
		}
	}
}

func TestJSONRenderer(t *testing.T) {
	ios, _, out, _ := iostreams.Test()
	r := New(ios, true)
	for _, e := range events() {
		r.Emit(e)
	}
	r.Close()
	lines := strings.Split(strings.TrimSpace(out.String()), "\n")
	if len(lines) != len(events()) || !strings.Contains(lines[2], `"percent":42.5`) {
		t.Errorf("JSON lines:\n%s", out)
	}
}

func TestFormats(t *testing.T) {
	for in, want := range map[int64]string{0: "0 B", 1023: "1023 B", 1536: "1.5 KiB", 5 << 30: "5.0 GiB"} {
		if got := Bytes(in); got != want {
			t.Errorf("Bytes(%d) = %s", in, got)
		}
	}
	for in, want := range map[float64]string{0.25: "250ms", 12.34: "12.3s", 245: "4m05s", 7380: "2h03m"} {
		if got := Duration(in); got != want {
			t.Errorf("Duration(%v) = %s", in, got)
		}
	}
}
