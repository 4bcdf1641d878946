package engine

import (
	"bytes"
	"context"
	"io"
	"testing"
	"time"
)

// A part read ahead reaches the target byte for byte in order: what was
// spooled, then what waited at the spool's limit, then what the source sent
// after the hand-over.
func TestSpoolKeepsOrderAcrossTheHandOver(t *testing.T) {
	a := &readAhead{ready: make(chan struct{}), dir: t.TempDir(), partLimit: 10}
	pr, pw := io.Pipe()
	var paused []bool
	sp, err := newSpool(a, pw, func(on bool) { paused = append(paused, on) })
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	w := spoolWriter{ctx: context.Background(), s: sp}
	chunks := []string{"0123", "4567", "89abcdef", "ghij", "klmn"}
	wrote := make(chan error, 1)
	go func() {
		for _, c := range chunks {
			if n, err := w.Write([]byte(c)); err != nil || n != len(c) {
				wrote <- err
				return
			}
		}
		wrote <- pw.Close()
	}()
	// The third chunk does not fit: the writer waits for the hand-over.
	time.Sleep(100 * time.Millisecond)
	if got := a.spooled.Load(); got != 8 {
		t.Fatalf("spooled %d bytes before the hand-over, want 8", got)
	}
	in := sp.handOver(pr)
	got, err := io.ReadAll(in)
	if err != nil {
		t.Fatal(err)
	}
	if err := <-wrote; err != nil {
		t.Fatal(err)
	}
	if want := "0123456789abcdefghijklmn"; !bytes.Equal(got, []byte(want)) {
		t.Fatalf("the target read %q, want %q", got, want)
	}
	if len(paused) != 2 || !paused[0] || paused[1] {
		t.Fatalf("the stall watch was paused as %v, want [true false]", paused)
	}
}

// A spool whose copy is cancelled before the hand-over lets its writer go.
func TestSpoolWriterLeavesOnCancel(t *testing.T) {
	a := &readAhead{ready: make(chan struct{}), dir: t.TempDir(), partLimit: 1}
	_, pw := io.Pipe()
	sp, err := newSpool(a, pw, func(bool) {})
	if err != nil {
		t.Fatal(err)
	}
	defer sp.close()
	ctx, cancel := context.WithCancel(context.Background())
	cancel()
	if _, err := (spoolWriter{ctx: ctx, s: sp}).Write([]byte("too big")); err == nil {
		t.Fatal("a write past the limit after cancel succeeded")
	}
}
