// Package retry tells transient database failures (a dropped connection, a
// restarting server, a serialization conflict) from permanent ones (a syntax or
// permission error), and retries the transient ones with exponential backoff.
package retry

import (
	"context"
	"errors"
	"io"
	"net"
	"strings"
	"syscall"
	"time"

	"github.com/cenkalti/backoff/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Transient reports whether trying again may succeed.
func Transient(err error) bool {
	if err == nil || errors.Is(err, context.Canceled) {
		return false
	}
	// Errors that know (a client tool's run, which failed on a lost connection).
	var t interface{ Transient() bool }
	if errors.As(err, &t) {
		return t.Transient()
	}
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		switch {
		case strings.HasPrefix(pgErr.Code, "08"), // connection exceptions
			pgErr.Code == "57P01", // admin_shutdown (pg_terminate_backend, restart)
			pgErr.Code == "57P02", // crash_shutdown
			pgErr.Code == "57P03", // cannot_connect_now
			pgErr.Code == "40001", // serialization_failure
			pgErr.Code == "40P01", // deadlock_detected
			pgErr.Code == "53300", // too_many_connections
			pgErr.Code == "55P03": // lock_not_available
			return true
		}
		return false
	}
	if pgconn.Timeout(err) || errors.Is(err, context.DeadlineExceeded) {
		return true
	}
	if errors.Is(err, io.EOF) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, pgconn.ErrConnClosed) ||
		errors.Is(err, syscall.ECONNRESET) || errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.EPIPE) {
		return true
	}
	var netErr net.Error
	if errors.As(err, &netErr) {
		return true
	}
	msg := err.Error()
	return strings.Contains(msg, "conn closed") || strings.Contains(msg, "connection reset") ||
		strings.Contains(msg, "broken pipe") || strings.Contains(msg, "unexpected EOF")
}

// Policy bounds the retries: exponential from Initial to Max between attempts,
// at most Tries attempts and Elapsed in all.
type Policy struct {
	Initial, Max, Elapsed time.Duration
	Tries                 uint
}

// Default waits 1s, 2s, 4s ... up to 30s between attempts, 16 attempts, 15
// minutes: about five minutes of waits, enough for a managed server's
// failover or restart (a minute or two).
var Default = Policy{Initial: time.Second, Max: 30 * time.Second, Elapsed: 15 * time.Minute, Tries: 16}

// Do runs fn until it succeeds, fails permanently, or the policy gives up.
// notify hears about each transient failure before the wait.
func Do(ctx context.Context, p Policy, notify func(err error, wait time.Duration), fn func() error) error {
	b := backoff.NewExponentialBackOff()
	b.InitialInterval = p.Initial
	b.MaxInterval = p.Max
	_, err := backoff.Retry(ctx, func() (struct{}, error) {
		err := fn()
		if err != nil && !Transient(err) {
			return struct{}{}, backoff.Permanent(err)
		}
		return struct{}{}, err
	}, backoff.WithBackOff(b), backoff.WithMaxTries(p.Tries), backoff.WithMaxElapsedTime(p.Elapsed),
		backoff.WithNotify(func(err error, d time.Duration) {
			if notify != nil {
				notify(err, d)
			}
		}))
	return err
}
