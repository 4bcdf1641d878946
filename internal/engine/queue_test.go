package engine

import (
	"errors"
	"fmt"
	"testing"

	"github.com/jackc/pgx/v5/pgconn"
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
