// Package loopback finds free ports on 127.0.0.1 for the throwaway servers of
// tests and the demo (PostgreSQL, moto_server, the local job API).
package loopback

import "net"

// FreePort returns a port nothing listens on right now. Another process may
// take it before the caller binds it: callers retry on a bind failure.
func FreePort() (int, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return 0, err
	}
	defer l.Close()
	return l.Addr().(*net.TCPAddr).Port, nil
}
