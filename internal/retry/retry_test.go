package retry

import (
	"context"
	"errors"
	"fmt"
	"io"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
)

func TestTransient(t *testing.T) {
	for err, want := range map[error]bool{
		&pgconn.PgError{Code: "57P01"}:                           true,
		fmt.Errorf("copy t: %w", &pgconn.PgError{Code: "40001"}): true,
		&pgconn.PgError{Code: "08006"}:                           true,
		&pgconn.PgError{Code: "42501"}:                           false,
		&pgconn.PgError{Code: "42601"}:                           false,
		fmt.Errorf("read: %w", io.ErrUnexpectedEOF):              true,
		context.Canceled:                                         false,
		errors.New("syntax is wrong"):                            false,
	} {
		if got := Transient(err); got != want {
			t.Errorf("Transient(%v) = %v", err, got)
		}
	}
}

func TestDo(t *testing.T) {
	fast := Policy{Initial: time.Millisecond, Max: 2 * time.Millisecond, Elapsed: time.Second, Tries: 5}
	calls, notes := 0, 0
	err := Do(context.Background(), fast, func(error, time.Duration) { notes++ }, func() error {
		calls++
		if calls < 3 {
			return &pgconn.PgError{Code: "57P01"}
		}
		return nil
	})
	if err != nil || calls != 3 || notes != 2 {
		t.Fatalf("transient: err %v, %d calls, %d notes", err, calls, notes)
	}
	calls = 0
	err = Do(context.Background(), fast, nil, func() error { calls++; return &pgconn.PgError{Code: "42501", Message: "permission denied"} })
	var pgErr *pgconn.PgError
	if !errors.As(err, &pgErr) || calls != 1 {
		t.Fatalf("permanent: err %v after %d calls", err, calls)
	}
	calls = 0
	err = Do(context.Background(), fast, nil, func() error { calls++; return io.EOF })
	if err == nil || calls != 5 {
		t.Fatalf("gives up: err %v after %d calls", err, calls)
	}
}
