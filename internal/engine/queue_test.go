package engine

import (
	"context"
	"errors"
	"fmt"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
)

// A copier that meets "too many connections" gives its part back and leaves
// while others run; the last one stays, so no part is ever left behind.
func TestPartQueueShrinksButNeverLosesAPart(t *testing.T) {
	a, b, c := &part{lo: 1}, &part{lo: 2}, &part{lo: 3}
	q := &partQueue{parts: []*part{a, b, c}, live: 2}
	p1, p2 := q.next(), q.next()
	if n, ok := q.giveBack(p1); !ok || n != 1 {
		t.Fatalf("give back with another copier running: %d %v", n, ok)
	}
	if _, ok := q.giveBack(p2); ok {
		t.Fatal("the last copier left")
	}
	var got []int64
	for p := q.next(); p != nil; p = q.next() {
		got = append(got, p.lo)
	}
	if fmt.Sprint(got) != "[1 3]" || q.live != 0 {
		t.Errorf("parts after the give-back %v, live %d", got, q.live)
	}
	err := fmt.Errorf("connect: %w", &pgconn.PgError{Code: "53300", Message: "too many connections for role \"x\""})
	if !tooManyConnections(err) || tooManyConnections(errors.New("too many connections")) {
		t.Error("tooManyConnections reads the SQLSTATE, not the text")
	}
}

// An index worker that meets "too many connections" gives its task back and
// leaves; a worker waiting on the copiers' channel wakes for it, and the last
// worker stays, so no task is left behind.
func TestIndexFeedShrinksButNeverLosesATask(t *testing.T) {
	ctx := context.Background()
	ch := make(chan indexTask)
	f := newIndexFeed(ch, 3)
	a := indexTask{index: &catalog.Index{Def: "a"}, counted: true}
	got := make(chan indexTask)
	go func() {
		// Blocked on the channel when the task comes back.
		task, ok := f.next(ctx)
		if !ok {
			t.Error("no task")
		}
		got <- task
	}()
	time.Sleep(10 * time.Millisecond)
	if n, ok := f.giveBack(a); !ok || n != 2 {
		t.Fatalf("give back with other workers running: %d %v", n, ok)
	}
	if task := <-got; task.index.Def != "a" || !task.counted {
		t.Errorf("the waiting worker got %+v", task)
	}
	if n, ok := f.giveBack(a); !ok || n != 1 {
		t.Fatalf("second give back: %d %v", n, ok)
	}
	if _, ok := f.giveBack(a); ok {
		t.Fatal("the last worker left")
	}
	close(ch)
	if task, ok := f.next(ctx); !ok || task.index.Def != "a" {
		t.Fatal("a task given back was lost when the channel closed")
	}
	if _, ok := f.next(ctx); ok || f.live != 0 {
		t.Errorf("after the last task: live %d", f.live)
	}
}
