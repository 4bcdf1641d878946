package faultproxy_test

import (
	"bufio"
	"io"
	"net"
	"strconv"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/testenv/faultproxy"
)

// echo serves one line back per line, on loopback.
func echo(t *testing.T) string {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { ln.Close() })
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { defer c.Close(); io.Copy(c, c) }()
		}
	}()
	return ln.Addr().String()
}

func dial(t *testing.T, p *faultproxy.Proxy) net.Conn {
	t.Helper()
	c, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.Port()))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { c.Close() })
	return c
}

func roundTrip(c net.Conn, r *bufio.Reader) (time.Duration, error) {
	start := time.Now()
	if _, err := c.Write([]byte("ping\n")); err != nil {
		return 0, err
	}
	_, err := r.ReadString('\n')
	return time.Since(start), err
}

func TestFaults(t *testing.T) {
	p, err := faultproxy.Start(echo(t))
	if err != nil {
		t.Fatal(err)
	}
	defer p.Close()
	c := dial(t, p)
	r := bufio.NewReader(c)
	if _, err := roundTrip(c, r); err != nil {
		t.Fatalf("plain round trip: %v", err)
	}

	p.SetLatency(25 * time.Millisecond)
	if d, err := roundTrip(c, r); err != nil || d < 50*time.Millisecond {
		t.Errorf("with 25 ms each way a round trip took %s (%v), want at least 50 ms", d, err)
	}
	p.SetLatency(0)

	p.SetBandwidth(64 << 10)
	big := make([]byte, 256<<10)
	start := time.Now()
	go c.Write(big)
	if _, err := io.ReadFull(r, big); err != nil || time.Since(start) < 2*time.Second {
		t.Errorf("256 KiB at 64 KiB/s came back in %s (%v), want at least 2 s (the 64 KiB burst is free, each way)", time.Since(start), err)
	}
	p.SetBandwidth(0)

	// A stall: the connection stays up and silent, then carries on.
	p.Stall(700 * time.Millisecond)
	c.SetReadDeadline(time.Now().Add(300 * time.Millisecond))
	if _, err := roundTrip(c, r); err == nil {
		t.Errorf("a round trip went through a stalled connection")
	}
	c.SetReadDeadline(time.Time{})
	time.Sleep(500 * time.Millisecond)
	if line, err := r.ReadString('\n'); err != nil || line != "ping\n" {
		t.Errorf("after the stall the pending reply did not arrive: %q %v", line, err)
	}
	// Connections opened during a stall work.
	p.Stall(time.Minute)
	c2 := dial(t, p)
	if _, err := roundTrip(c2, bufio.NewReader(c2)); err != nil {
		t.Errorf("a new connection during a stall: %v", err)
	}

	// A cut resets every connection.
	if n := p.Cut(); n != 2 {
		t.Errorf("cut %d connections, want 2", n)
	}
	if _, err := roundTrip(c, r); err == nil {
		t.Errorf("a cut connection still works")
	}

	// Refused for a while, then accepted again.
	// The reset may reach the client while it connects, or on its first read.
	p.Refuse(300 * time.Millisecond)
	if c3, err := net.Dial("tcp", "127.0.0.1:"+strconv.Itoa(p.Port())); err == nil {
		c3.SetReadDeadline(time.Now().Add(time.Second))
		if _, err := roundTrip(c3, bufio.NewReader(c3)); err == nil {
			t.Errorf("a connection went through while refusing")
		}
		c3.Close()
	}
	time.Sleep(400 * time.Millisecond)
	c4 := dial(t, p)
	if _, err := roundTrip(c4, bufio.NewReader(c4)); err != nil {
		t.Errorf("after refusing: %v", err)
	}
}
