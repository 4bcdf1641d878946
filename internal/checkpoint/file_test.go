package checkpoint

import (
	"context"
	"os"
	"testing"
)

func TestFileStore(t *testing.T) {
	ctx := context.Background()
	dir := t.TempDir()
	s, err := NewFileStore(dir, RunID("src", "dst", []string{"filter"}))
	if err != nil {
		t.Fatal(err)
	}
	if got, err := s.Load(ctx); err != nil || len(got) != 0 {
		t.Fatalf("fresh store: %v %v", got, err)
	}
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	must(s.Put(ctx, Record{Key: "a", Status: Running}, false))
	must(s.Put(ctx, Record{Key: "a", Status: Committing, XID: 42}, true))
	must(s.Put(ctx, Record{Key: "b", Status: Done, Rows: 7}, false))
	// A torn last line (the process killed mid-write) is ignored.
	f, _ := os.OpenFile(s.Path(), os.O_APPEND|os.O_WRONLY, 0)
	f.WriteString(`{"key":"c","sta`)
	f.Close()

	again, _ := NewFileStore(dir, RunID("src", "dst", []string{"filter"}))
	must(again.Put(ctx, Record{Key: "d", Status: Done}, false))
	got, err := again.Load(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if len(got) != 3 || got["d"].Status != Done || got["a"].Status != Committing || got["a"].XID != 42 || got["b"].Rows != 7 {
		t.Fatalf("loaded %+v", got)
	}
	must(again.Clear(ctx))
	if got, _ := again.Load(ctx); len(got) != 0 {
		t.Fatalf("after Clear: %v", got)
	}
	if RunID("src", "dst", []string{"filter"}) == RunID("src", "dst", []string{"other"}) {
		t.Fatal("different filters, same run id")
	}
}
