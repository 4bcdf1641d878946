package conninfo

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"errors"
	"fmt"
	"net"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5/pgconn"
)

// Explain turns a connection failure into one line that says what is wrong and
// how to fix it. The password never appears in it.
func Explain(e *Endpoint, err error) error {
	where := fmt.Sprintf("%s %s", e.Side, e.Address())
	var pgErr *pgconn.PgError
	var dnsErr *net.DNSError
	var opErr *net.OpError
	var msg string
	switch {
	case errors.As(err, &pgErr):
		switch pgErr.Code {
		case "28P01":
			msg = fmt.Sprintf("%s: password authentication failed for user %q: check the password in the URL, PGPASSWORD or ~/.pgpass", where, e.User())
		case "28000":
			msg = fmt.Sprintf("%s: the server rejected user %q for database %q (%s): allow this client in pg_hba.conf or use another role", where, e.User(), e.Database(), pgErr.Message)
		case "3D000":
			msg = fmt.Sprintf("%s: database %q does not exist: check the database name in the URL", where, e.Database())
		case "53300":
			msg = fmt.Sprintf("%s: too many connections: %s; lower --jobs or raise max_connections", where, pgErr.Message)
		case "57P03":
			msg = fmt.Sprintf("%s: the server is starting up or shutting down; retry in a moment", where)
		default:
			msg = fmt.Sprintf("%s: %s (SQLSTATE %s)", where, pgErr.Message, pgErr.Code)
		}
	case e.guard != nil:
		// A remote job's caller learns that the connection failed, not how:
		// refused, timed out, TLS or what bytes came back would map the
		// network for them.
		msg = fmt.Sprintf("%s: cannot connect (no PostgreSQL server answered there): check the host, the port, the firewall and the workers' security group", where)
	case errors.As(err, &dnsErr):
		msg = fmt.Sprintf("%s: cannot resolve host %q: check the host name in the URL", e.Side, dnsErr.Name)
	case errors.Is(err, context.DeadlineExceeded) || isTimeout(err):
		msg = fmt.Sprintf("%s: connection timed out after %s: check the host, port and firewall (raise connect_timeout if the network is slow)", where, e.ConnectTimeout())
	case errors.As(err, &opErr) && errors.Is(err, syscall.ECONNREFUSED):
		msg = fmt.Sprintf("%s: connection refused: is PostgreSQL running there and accepting TCP connections on that port?", where)
	case isTLS(err):
		msg = fmt.Sprintf("%s: TLS negotiation failed (%s): check sslmode and the server's certificate", where, lastPart(err))
	default:
		msg = fmt.Sprintf("%s: cannot connect: %s", where, lastPart(err))
	}
	for _, s := range e.Secrets() {
		msg = strings.ReplaceAll(msg, s, "xxxxx")
	}
	return &ConnectError{Msg: msg, Err: err}
}

// ConnectError is a connection failure explained for a person.
type ConnectError struct {
	Msg string
	Err error
}

func (c *ConnectError) Error() string { return c.Msg }
func (c *ConnectError) Unwrap() error { return c.Err }

func isTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

// lastPart drops pgx's "failed to connect to `user=... database=...`:" prefix.
func lastPart(err error) string {
	s := err.Error()
	if i := strings.LastIndex(s, "): "); i >= 0 {
		return strings.TrimSpace(s[i+3:])
	}
	if i := strings.LastIndex(s, "`: "); i >= 0 {
		return strings.TrimSpace(s[i+3:])
	}
	return s
}

// isTLS recognises a failed TLS negotiation: the server refused SSL
// (pgconn says so in its message, the only place), or the handshake or the
// certificate failed.
func isTLS(err error) bool {
	var rec tls.RecordHeaderError
	var cert *tls.CertificateVerificationError
	var unknown x509.UnknownAuthorityError
	var host x509.HostnameError
	return errors.As(err, &rec) || errors.As(err, &cert) || errors.As(err, &unknown) || errors.As(err, &host) ||
		strings.Contains(err.Error(), "server refused TLS connection")
}
