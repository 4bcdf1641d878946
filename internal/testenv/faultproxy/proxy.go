// Package faultproxy is a TCP proxy for tests that puts a real network's
// faults between replicator and a server: it cuts every connection, adds
// latency and a bandwidth limit, stalls reads without closing (a half-open
// connection, as seen from the client), and refuses new connections for a
// while.
//
// It is small and of our own making on purpose: Shopify's toxiproxy does the
// same through a separate server process driven over HTTP (its Go package is a
// client, the server brings its own dependencies), while the tests here need
// the faults in-process, on loopback, and timed to the copy's steps.
package faultproxy

import (
	"bytes"
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"golang.org/x/sync/semaphore"
	"golang.org/x/time/rate"
)

// Proxy forwards connections from a loopback port to a target address.
type Proxy struct {
	target string
	ln     net.Listener

	mu          sync.Mutex
	conns       map[*link]bool
	latency     time.Duration // one way: added to each direction
	bytesPerSec int           // per direction of each connection; 0 for no limit
	stallUntil  time.Time     // reads of existing connections wait until then
	refuseUntil time.Time     // new connections are closed at once until then
	accepted    int
	roundTrips  int64
	wg          sync.WaitGroup
	closed      bool
}

// link is one proxied connection: the client's side and the server's; gone
// is closed when it is reset.
type link struct {
	client, server net.Conn
	serverSpoke    bool  // the last data went from the server to the client (under Proxy.mu)
	bytes          int64 // forwarded either way (under Proxy.mu)
	gone           chan struct{}
	once           sync.Once
}

// Start listens on a free loopback port and forwards to target (host:port).
func Start(target string) (*Proxy, error) {
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	p := &Proxy{target: target, ln: ln, conns: map[*link]bool{}}
	p.wg.Add(1)
	go p.accept()
	return p, nil
}

// Port is where clients connect.
func (p *Proxy) Port() int { return p.ln.Addr().(*net.TCPAddr).Port }

// Accepted counts the connections accepted so far (refused ones included).
func (p *Proxy) Accepted() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.accepted
}

// RoundTrips counts the exchanges so far: each time a client speaks after
// the server has (or first), one round trip, which is what latency costs.
func (p *Proxy) RoundTrips() int64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.roundTrips
}

// ResetRoundTrips sets the count back to zero.
func (p *Proxy) ResetRoundTrips() {
	p.mu.Lock()
	p.roundTrips = 0
	p.mu.Unlock()
}

// Open counts the connections open now.
func (p *Proxy) Open() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.conns)
}

// Cut closes every open connection at once, both sides, with a reset: the
// client sees "connection reset by peer" mid-stream. New connections work.
func (p *Proxy) Cut() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	n := len(p.conns)
	for l := range p.conns {
		l.reset()
		delete(p.conns, l)
	}
	return n
}

// SetLatency adds d to each direction of every connection (a round trip
// gains 2d), new and open ones alike.
func (p *Proxy) SetLatency(d time.Duration) {
	p.mu.Lock()
	p.latency = d
	p.mu.Unlock()
}

// SetBandwidth limits each direction of each connection to bytesPerSec (0
// for no limit).
func (p *Proxy) SetBandwidth(bytesPerSec int) {
	p.mu.Lock()
	p.bytesPerSec = bytesPerSec
	p.mu.Unlock()
}

// Stall stops forwarding on the connections open now, in both directions,
// for d, without closing them: their peers see a connection that is up and
// silent, as when the other end vanished behind a NAT. Connections opened
// meanwhile work.
func (p *Proxy) Stall(d time.Duration) { p.StallBusy(d, 0) }

// StallBusy is Stall for the connections open now that have carried at
// least minBytes: the ones streaming data (a COPY), not the idle ones, or
// ones running a long statement, which only TCP itself could see are gone.
func (p *Proxy) StallBusy(d time.Duration, minBytes int64) int {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.stallUntil = time.Now().Add(d)
	n := 0
	for l := range p.conns {
		if l.bytes >= minBytes {
			l.stall()
			n++
		}
	}
	return n
}

// Refuse closes new connections as soon as they are accepted, for d (as a
// server that is restarting, or a firewall rejecting, looks to a client).
func (p *Proxy) Refuse(d time.Duration) {
	p.mu.Lock()
	p.refuseUntil = time.Now().Add(d)
	p.mu.Unlock()
}

// Close stops listening and closes every connection.
func (p *Proxy) Close() {
	p.mu.Lock()
	p.closed = true
	p.mu.Unlock()
	p.ln.Close()
	p.Cut()
	p.wg.Wait()
}

func (p *Proxy) accept() {
	defer p.wg.Done()
	for {
		c, err := p.ln.Accept()
		if err != nil {
			return
		}
		p.mu.Lock()
		p.accepted++
		refuse := time.Now().Before(p.refuseUntil) || p.closed
		p.mu.Unlock()
		if refuse {
			if tc, ok := c.(*net.TCPConn); ok {
				tc.SetLinger(0)
			}
			c.Close()
			continue
		}
		p.wg.Add(1)
		go p.serve(c)
	}
}

func (p *Proxy) serve(client net.Conn) {
	defer p.wg.Done()
	server, err := net.DialTimeout("tcp", p.target, 10*time.Second)
	if err != nil {
		client.Close()
		return
	}
	l := &link{client: client, server: server, gone: make(chan struct{})}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		l.reset()
		return
	}
	p.conns[l] = true
	p.mu.Unlock()
	ctx, cancel := context.WithCancel(context.Background())
	go func() { <-l.gone; cancel() }()
	var both sync.WaitGroup
	both.Add(2)
	l.serverSpoke = true // the client's first words are a round trip
	go func() { defer both.Done(); p.pipe(ctx, server, client, l, false); cancel() }()
	go func() { defer both.Done(); p.pipe(ctx, client, server, l, true); cancel() }()
	both.Wait()
	l.reset()
	p.mu.Lock()
	delete(p.conns, l)
	p.mu.Unlock()
}

// stall makes both sides' reads wait: a read deadline in the past fails the
// pending read, which pipe takes as the signal to wait out the stall.
func (l *link) stall() {
	l.client.SetReadDeadline(time.Unix(1, 0))
	l.server.SetReadDeadline(time.Unix(1, 0))
}

func (l *link) reset() {
	l.once.Do(func() { close(l.gone) })
	for _, c := range []net.Conn{l.client, l.server} {
		if tc, ok := c.(*net.TCPConn); ok {
			tc.SetLinger(0) // RST, not FIN: as a cut cable or a dropped NAT entry
		}
		c.Close()
	}
}

// chunk is data read at a time, forwarded once the latency has passed.
// maxInFlight bounds the bytes a direction of a connection holds between
// reading and writing: Linux's largest default receive window (tcp_rmem's
// 6 MiB), rounded up.
const maxInFlight = 8 << 20

type chunk struct {
	data []byte
	at   time.Time
}

// pipe copies from one side to the other with the proxy's faults: the
// reader stamps each chunk, the writer sends it once the latency is over, at
// the bandwidth allowed.
func (p *Proxy) pipe(ctx context.Context, dst, src net.Conn, l *link, fromServer bool) {
	// In flight: chunks read and not yet written, bounded in bytes (a TCP
	// window's worth), not in chunks: a bound of a few hundred small
	// chunks would cap a delayed stream far below what a real link of
	// that latency carries.
	queue := make(chan chunk, 1<<16)
	inFlight := semaphore.NewWeighted(maxInFlight)
	var limiter *rate.Limiter
	go func() {
		defer close(queue)
		buf := make([]byte, 32<<10)
		for {
			n, err := src.Read(buf)
			if n > 0 {
				if inFlight.Acquire(ctx, int64(n)) != nil {
					return
				}
				p.mu.Lock()
				if !fromServer && l.serverSpoke {
					p.roundTrips++
				}
				l.serverSpoke = fromServer
				l.bytes += int64(n)
				p.mu.Unlock()
				select {
				case queue <- chunk{bytes.Clone(buf[:n]), time.Now()}:
				case <-ctx.Done():
					return
				}
			}
			if err != nil {
				var ne net.Error
				if errors.As(err, &ne) && ne.Timeout() && p.waitStall(ctx) {
					src.SetReadDeadline(time.Time{})
					continue
				}
				return
			}
		}
	}()
	for c := range queue {
		p.mu.Lock()
		latency, bps := p.latency, p.bytesPerSec
		p.mu.Unlock()
		if wait := time.Until(c.at.Add(latency)); wait > 0 {
			select {
			case <-time.After(wait):
			case <-ctx.Done():
				return
			}
		}
		if bps > 0 && (limiter == nil || limiter.Limit() != rate.Limit(bps)) {
			limiter = rate.NewLimiter(rate.Limit(bps), 64<<10)
		} else if bps == 0 {
			limiter = nil
		}
		for data := c.data; len(data) > 0; {
			n := len(data)
			if limiter != nil {
				n = min(n, limiter.Burst())
				if err := limiter.WaitN(ctx, n); err != nil {
					return
				}
			}
			if _, err := dst.Write(data[:n]); err != nil {
				return
			}
			data = data[n:]
		}
		inFlight.Release(int64(len(c.data)))
	}
	if tc, ok := dst.(*net.TCPConn); ok {
		tc.CloseWrite() // pass the peer's FIN on
	}
}

// waitStall waits until the stall is over; false when the proxy is cut or
// the connection is gone meanwhile.
func (p *Proxy) waitStall(ctx context.Context) bool {
	p.mu.Lock()
	until := p.stallUntil
	p.mu.Unlock()
	if time.Now().After(until) {
		return false // a deadline that was not ours
	}
	select {
	case <-time.After(time.Until(until)):
		return true
	case <-ctx.Done():
		return false
	}
}
