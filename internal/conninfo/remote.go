package conninfo

import (
	"context"
	"encoding/pem"
	"fmt"
	"net"
	"net/netip"
	"os"
	"path/filepath"
	"sort"
	"strings"

	"github.com/replicatorhq/replicator/internal/redact"
)

// A remote job's URLs come from a caller of the job API and are used inside
// the user's AWS account: they must not make the platform open local files
// (the Lambda) or reach what only the platform should (the worker). This file
// keeps them from it.

// FileKeywords name local files in a connection string.
var FileKeywords = []string{"sslrootcert", "sslcert", "sslkey", "sslcrl", "sslcrldir", "passfile", "service", "servicefile"}

// Certificates are the TLS files of a connection, carried inline (PEM) in a
// remote job's secret; the worker writes them to files of its own.
type Certificates map[string]string // keyword (sslrootcert, sslcert, sslkey, sslcrl) -> PEM

// ParseRemote parses a URL given to the job API: like Parse, but it refuses
// keywords that name local files and Unix sockets before anything reads them.
func ParseRemote(side, raw string) (*Endpoint, error) {
	params, err := parseParams(side, raw)
	if err != nil {
		return nil, err
	}
	if err := checkRemote(side, params); err != nil {
		return nil, err
	}
	return newEndpoint(side, params)
}

func checkRemote(side string, params map[string]string) error {
	var files []string
	for _, k := range FileKeywords {
		if v, ok := params[k]; ok && !(k == "sslrootcert" && v == "system") {
			files = append(files, k)
		}
	}
	if len(files) > 0 {
		return fmt.Errorf("%s: %s name local files, which a remote job cannot use: give the certificates inline (replicator init --remote reads the files and sends them) and the password in the URL",
			side, strings.Join(files, ", "))
	}
	for _, h := range strings.Split(params["host"], ",") {
		if strings.HasPrefix(h, "/") || strings.HasPrefix(h, "@") {
			return fmt.Errorf("%s: host %s is a Unix socket, which a remote job cannot reach: give a host name or address", side, h)
		}
	}
	if _, ok := params["hostaddr"]; ok {
		return fmt.Errorf("%s: hostaddr is not accepted for remote jobs: give the address as the host", side)
	}
	return nil
}

// ForRemote is the connection string a remote job carries for this endpoint:
// its keywords with the password as resolved here (from the URL, PGPASSWORD or
// ~/.pgpass), without the local files, whose contents come as certificates.
func (e *Endpoint) ForRemote() (string, Certificates, error) {
	p := make(map[string]string, len(e.params))
	for k, v := range e.params {
		p[k] = v
	}
	if e.config.Password != "" {
		p["password"] = e.config.Password
	}
	certs := Certificates{}
	for _, k := range FileKeywords {
		path, ok := p[k]
		if !ok {
			continue
		}
		switch k {
		case "sslrootcert", "sslcert", "sslkey", "sslcrl":
			if k == "sslrootcert" && path == "system" {
				continue // libpq's keyword for the system roots: no file
			}
			b, err := os.ReadFile(path)
			if err != nil {
				return "", nil, fmt.Errorf("%s: %s: %w", e.Side, k, err)
			}
			certs[k] = string(b)
			delete(p, k)
		case "passfile":
			delete(p, k) // the password it held is resolved above
		default:
			return "", nil, fmt.Errorf("%s: %s cannot be carried to a remote job: give the connection's keywords instead", e.Side, k)
		}
	}
	for _, h := range strings.Split(p["host"], ",") {
		if strings.HasPrefix(h, "/") {
			return "", nil, fmt.Errorf("%s: host %s is a Unix socket on this machine, which a remote worker cannot reach", e.Side, h)
		}
	}
	return keywordValue(p, true), certs, nil
}

// WithCertificates parses a remote job's connection string on the worker,
// writing its certificates to files (mode 0600) in dir.
func WithCertificates(side, raw string, certs Certificates, dir string) (*Endpoint, error) {
	params, err := parseParams(side, raw)
	if err != nil {
		return nil, err
	}
	if err := checkRemote(side, params); err != nil {
		return nil, err
	}
	keys := make([]string, 0, len(certs))
	for k := range certs {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		if err := CheckCertificate(k, certs[k]); err != nil {
			return nil, fmt.Errorf("%s: %w", side, err)
		}
		path := filepath.Join(dir, side+"-"+k+".pem")
		if err := os.WriteFile(path, []byte(certs[k]), 0o600); err != nil {
			return nil, err
		}
		params[k] = path
	}
	return newEndpoint(side, params)
}

// CheckCertificate checks an inline certificate of a remote job: a known
// keyword and PEM text.
func CheckCertificate(keyword, text string) error {
	switch keyword {
	case "sslrootcert", "sslcert", "sslkey", "sslcrl":
	default:
		return fmt.Errorf("unknown certificate %q: sslrootcert, sslcert, sslkey or sslcrl", redact.Truncate(keyword, 40))
	}
	if b, _ := pem.Decode([]byte(text)); b == nil {
		return fmt.Errorf("%s is not PEM text", keyword)
	}
	return nil
}

func parseParams(side, raw string) (map[string]string, error) {
	raw = strings.TrimSpace(raw)
	var params map[string]string
	var err error
	switch {
	case raw == "":
		return nil, fmt.Errorf("%s: connection URL is empty: pass --%s postgres://user@host:port/dbname", side, side)
	case strings.HasPrefix(raw, "postgres://"), strings.HasPrefix(raw, "postgresql://"):
		params, err = parseURL(raw)
	case strings.Contains(raw, "="):
		params, err = parseKeywordValue(raw)
	default:
		err = fmt.Errorf("expected postgres://user@host:port/dbname or 'host=... dbname=...'")
	}
	if err != nil {
		return nil, fmt.Errorf("%s: malformed connection URL: %v", side, err)
	}
	return params, nil
}

// Forbidden are the destinations a remote worker never connects to: instance
// metadata (IPv4 and IPv6), loopback, link-local (which holds the metadata,
// DNS and time services of the VPC), unspecified and multicast addresses.
var Forbidden = []netip.Prefix{
	netip.MustParsePrefix("127.0.0.0/8"), netip.MustParsePrefix("::1/128"),
	netip.MustParsePrefix("169.254.0.0/16"), netip.MustParsePrefix("fe80::/10"),
	netip.MustParsePrefix("fd00:ec2::/32"), netip.MustParsePrefix("0.0.0.0/8"),
	netip.MustParsePrefix("::/128"), netip.MustParsePrefix("224.0.0.0/4"), netip.MustParsePrefix("ff00::/8"),
}

// nat64 is the well-known NAT64 prefix (RFC 6052): an address in it stands
// for the IPv4 address in its last 32 bits.
var nat64 = netip.MustParsePrefix("64:ff9b::/96")

// Spellings refused whatever they stand for: IPv4-compatible addresses
// (::a.b.c.d, deprecated by RFC 4291 but still routed by some stacks) and
// the local-use NAT64 prefix (RFC 8215), whose translation is the
// network's own choice.
var refusedForms = []netip.Prefix{netip.MustParsePrefix("::/96"), netip.MustParsePrefix("64:ff9b:1::/48")}

// Allowed says whether a remote worker may connect to addr.
func Allowed(addr netip.Addr) error {
	// A zone (fe80::1%eth0, [::1%25lo]) makes netip.Prefix.Contains false
	// for every prefix: a database is never reached through one.
	if addr.Zone() != "" {
		return fmt.Errorf("%s is not reachable from a remote job (an address with a zone is a local interface's)", addr)
	}
	addr = addr.Unmap()
	if nat64.Contains(addr) {
		b := addr.As16()
		addr = netip.AddrFrom4([4]byte(b[12:]))
	}
	for _, p := range refusedForms {
		if p.Contains(addr) {
			return fmt.Errorf("%s is not reachable from a remote job (IPv4-compatible and local-use NAT64 spellings are refused: give the IPv4 address)", addr)
		}
	}
	for _, p := range Forbidden {
		if p.Contains(addr) {
			return fmt.Errorf("%s is not reachable from a remote job (instance metadata, loopback and link-local addresses are refused)", addr)
		}
	}
	return nil
}

// Guard restricts where this endpoint connects to addresses allow accepts.
// Every host is resolved now and its addresses checked; connections dial only
// those addresses (pgx's LookupFunc, and DialFunc checks again), and the
// client tools get them as hostaddr, so a name that later resolves elsewhere
// cannot take the job there. Connection failures are then said without what
// the other end answered: a job must not be a port scanner.
func (e *Endpoint) Guard(ctx context.Context, allow func(netip.Addr) error) error {
	pins := map[string][]string{}
	var hostaddrs []string
	for _, h := range strings.Split(e.params["host"], ",") {
		if h == "" || strings.HasPrefix(h, "/") {
			return fmt.Errorf("%s: host %q: a remote job connects to network hosts only", e.Side, h)
		}
		var addrs []netip.Addr
		if a, err := netip.ParseAddr(h); err == nil {
			addrs = []netip.Addr{a}
		} else {
			found, err := net.DefaultResolver.LookupNetIP(ctx, "ip", h)
			if err != nil || len(found) == 0 {
				return fmt.Errorf("%s: cannot resolve host %q: check the host name", e.Side, h)
			}
			addrs = found
		}
		for _, a := range addrs {
			if err := allow(a); err != nil {
				return fmt.Errorf("%s: host %s: %w", e.Side, h, err)
			}
			pins[h] = append(pins[h], a.Unmap().String())
		}
		hostaddrs = append(hostaddrs, pins[h][0])
	}
	e.guard, e.pins, e.hostaddr = allow, pins, strings.Join(hostaddrs, ",")
	e.applyGuard()
	return nil
}

func (e *Endpoint) applyGuard() {
	if e.guard == nil {
		return
	}
	pins, allow := e.pins, e.guard
	e.config.LookupFunc = func(ctx context.Context, host string) ([]string, error) {
		if addrs, ok := pins[host]; ok {
			return addrs, nil
		}
		return nil, fmt.Errorf("host %s was not checked", host)
	}
	dial := e.config.DialFunc
	e.config.DialFunc = func(ctx context.Context, network, addr string) (net.Conn, error) {
		host, _, err := net.SplitHostPort(addr)
		if err != nil {
			return nil, err
		}
		a, err := netip.ParseAddr(host)
		if err != nil {
			return nil, fmt.Errorf("dial %s: not an address", addr)
		}
		if err := allow(a); err != nil {
			return nil, err
		}
		return dial(ctx, network, addr)
	}
}

// ParseOpaque parses a connection string that another server uses (the
// source as the target reaches it, for a subscription): its keywords are kept
// as given, and files it names, which are that server's, are not read here.
func ParseOpaque(side, raw string) (*Endpoint, error) {
	params, err := parseParams(side, raw)
	if err != nil {
		return nil, err
	}
	local := make(map[string]string, len(params))
	for k, v := range params {
		local[k] = v
	}
	for _, k := range FileKeywords {
		delete(local, k)
	}
	ep, err := newEndpoint(side, local)
	if err != nil {
		return nil, err
	}
	for k, v := range params {
		ep.params[k] = v
	}
	return ep, nil
}
