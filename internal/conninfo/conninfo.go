// Package conninfo parses libpq-style connection strings (URLs and keyword=value
// strings) into endpoints that can connect with pgx, hand themselves to the
// PostgreSQL client tools without putting the password on a command line, and print
// themselves without the password.
package conninfo

import (
	"context"
	"fmt"
	"net"
	"net/netip"
	"net/url"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"
)

// Endpoint is one side of a copy (source or target), pointing at one database.
type Endpoint struct {
	// Side names the endpoint in messages: "source" or "target".
	Side string

	params map[string]string // libpq keywords, including password when given inline
	config *pgx.ConnConfig   // parsed by pgx: env defaults and .pgpass applied

	// Set by Guard (remote jobs): the check of every address, the checked
	// addresses by host, and hostaddr for the client tools.
	guard    func(netip.Addr) error
	pins     map[string][]string
	hostaddr string
}

// sensitive keywords never printed.
var sensitive = map[string]bool{"password": true, "sslpassword": true}

// defaultConnectTimeout keeps an unreachable host from hanging a run for minutes.
const defaultConnectTimeout = "10"

// Parse reads a postgres:// or postgresql:// URL, or a keyword=value string.
// Missing pieces come from the PG* environment and ~/.pgpass, as with libpq.
func Parse(side, raw string) (*Endpoint, error) {
	params, err := parseParams(side, raw)
	if err != nil {
		return nil, err
	}
	return newEndpoint(side, params)
}

func newEndpoint(side string, params map[string]string) (*Endpoint, error) {
	if _, ok := params["connect_timeout"]; !ok {
		params["connect_timeout"] = defaultConnectTimeout
	}
	if _, ok := params["application_name"]; !ok {
		params["application_name"] = "replicator" // visible in pg_stat_activity
	}
	for k, v := range keepalive {
		if _, ok := params[k]; !ok {
			params[k] = v
		}
	}
	// libpq's client-side keywords are not pgx's: it would send them to the
	// server as settings. They become the dialer's keepalive instead.
	forPgx := make(map[string]string, len(params))
	for k, v := range params {
		if _, client := keepalive[k]; !client && k != "keepalives" {
			forPgx[k] = v
		}
	}
	cfg, err := pgx.ParseConfig(keywordValue(forPgx, true))
	if err != nil {
		return nil, fmt.Errorf("%s: malformed connection URL: %s", side, parseErrorText(err, params["password"]))
	}
	ka, err := keepaliveConfig(params)
	if err != nil {
		return nil, fmt.Errorf("%s: malformed connection URL: %v", side, err)
	}
	d := &net.Dialer{KeepAliveConfig: ka}
	if ka.Enable {
		d.KeepAlive = ka.Idle
	} else {
		d.KeepAlive = -1
	}
	cfg.DialFunc = d.DialContext
	// Our sessions run as privileged roles inside other people's
	// databases: a name resolved through their search_path could run a
	// function or operator that a plain role created (CVE-2018-1058). Every
	// session starts with only the catalog on its path (a startup setting
	// wins over options=-c...); SQL we send qualifies what is the user's.
	cfg.RuntimeParams["search_path"] = SafeSearchPath
	return &Endpoint{Side: side, params: params, config: cfg}, nil
}

// SafeSearchPath is the search_path of every session replicator opens.
const SafeSearchPath = "pg_catalog, pg_temp"

// keepalive probes an idle connection after 30 s, every 10 s, and gives up
// after 3 unanswered: a server that vanished (a NAT entry dropped, a host
// gone) is noticed within a minute instead of the operating system's two
// hours. The client tools get them as libpq keywords, pgx as the dialer's.
var keepalive = map[string]string{"keepalives_idle": "30", "keepalives_interval": "10", "keepalives_count": "3"}

// keepaliveConfig reads libpq's keepalive keywords.
func keepaliveConfig(params map[string]string) (net.KeepAliveConfig, error) {
	ka := net.KeepAliveConfig{Enable: params["keepalives"] != "0"}
	for _, f := range []struct {
		key string
		set func(int)
	}{
		{"keepalives_idle", func(n int) { ka.Idle = time.Duration(n) * time.Second }},
		{"keepalives_interval", func(n int) { ka.Interval = time.Duration(n) * time.Second }},
		{"keepalives_count", func(n int) { ka.Count = n }},
	} {
		n, err := strconv.Atoi(params[f.key])
		if err != nil || n < 1 {
			return ka, fmt.Errorf("%s must be a positive number, not %q", f.key, params[f.key])
		}
		f.set(n)
	}
	return ka, nil
}

// WithDatabase returns the same endpoint pointed at another database.
func (e *Endpoint) WithDatabase(db string) (*Endpoint, error) {
	p := make(map[string]string, len(e.params))
	for k, v := range e.params {
		p[k] = v
	}
	p["dbname"] = db
	ep, err := newEndpoint(e.Side, p)
	if err != nil {
		return nil, err
	}
	ep.guard, ep.pins, ep.hostaddr = e.guard, e.pins, e.hostaddr
	ep.applyGuard()
	return ep, nil
}

// MustWithDatabase is WithDatabase for a name known to parse (a database name
// cannot make a valid connection string invalid).
func (e *Endpoint) MustWithDatabase(db string) *Endpoint {
	ep, err := e.WithDatabase(db)
	if err != nil {
		panic(err)
	}
	return ep
}

// Database is the database this endpoint connects to.
func (e *Endpoint) Database() string { return e.config.Database }

// User is the role this endpoint connects as.
func (e *Endpoint) User() string { return e.config.User }

// Host and Port of the first host, for messages and identity checks.
func (e *Endpoint) Host() string     { return e.config.Host }
func (e *Endpoint) Port() uint16     { return e.config.Port }
func (e *Endpoint) Password() string { return e.config.Password }

// Identity names the server and role (not the database, not the password): what
// tells one copy's endpoints from another's.
func (e *Endpoint) Identity() string {
	return fmt.Sprintf("%s@%s:%d", e.config.User, e.config.Host, e.config.Port)
}

// ConnConfig is a copy of the pgx configuration.
func (e *Endpoint) ConnConfig() *pgx.ConnConfig { return e.config.Copy() }

// String prints the endpoint as a URL without the password.
func (e *Endpoint) String() string {
	u := url.URL{Scheme: "postgres", Host: e.config.Host, Path: "/" + e.config.Database}
	if e.config.Port != 0 {
		u.Host = fmt.Sprintf("%s:%d", e.config.Host, e.config.Port)
	}
	if strings.HasPrefix(e.config.Host, "/") {
		u.Host = ""
	}
	if e.config.User != "" {
		u.User = url.User(e.config.User)
	}
	q := url.Values{}
	for k, v := range e.params {
		switch k {
		case "host", "port", "user", "dbname", "connect_timeout":
		case "application_name":
			if v != "replicator" {
				q.Set(k, v)
			}
		case "keepalives_idle", "keepalives_interval", "keepalives_count":
			if v != keepalive[k] {
				q.Set(k, v)
			}
		default:
			if !sensitive[k] {
				q.Set(k, v)
			}
		}
	}
	if strings.HasPrefix(e.config.Host, "/") {
		q.Set("host", e.config.Host)
	}
	u.RawQuery = q.Encode()
	return u.String()
}

// ToolConnString is a keyword=value string for pg_dump, pg_restore, pg_dumpall and
// psql. It never holds the password: that travels in ToolEnv.
func (e *Endpoint) ToolConnString() string {
	if e.hostaddr == "" {
		return keywordValue(e.params, false)
	}
	p := make(map[string]string, len(e.params)+1)
	for k, v := range e.params {
		p[k] = v
	}
	p["hostaddr"] = e.hostaddr // the addresses Guard checked
	return keywordValue(p, false)
}

// ToolEnv is the environment the client tools need: the resolved password (from the
// URL, PGPASSWORD or .pgpass) as PGPASSWORD, so it never shows in `ps`.
func (e *Endpoint) ToolEnv() []string {
	env := []string{"PGCONNECT_TIMEOUT=" + e.params["connect_timeout"]}
	if e.config.Password != "" {
		env = append(env, "PGPASSWORD="+e.config.Password)
	}
	if v := e.params["sslpassword"]; v != "" {
		env = append(env, "PGSSLPASSWORD="+v)
	}
	return env
}

// ReplicationConnect opens a logical replication connection (replication=database)
// to this endpoint's database, for replication protocol commands.
func (e *Endpoint) ReplicationConnect(ctx context.Context) (*pgconn.PgConn, error) {
	cfg := e.config.Copy()
	cfg.RuntimeParams["replication"] = "database"
	conn, err := pgconn.ConnectConfig(ctx, &cfg.Config)
	if err != nil {
		return nil, Explain(e, err)
	}
	return conn, nil
}

// SubscriptionConnString is the connection string a subscription on the target
// uses to reach this (source) endpoint. It carries the password, since the
// target server has no other way to get it: never print it.
func (e *Endpoint) SubscriptionConnString() string {
	p := make(map[string]string, len(e.params))
	for k, v := range e.params {
		p[k] = v
	}
	if e.config.Password != "" {
		p["password"] = e.config.Password
	}
	p["application_name"] = "replicator_subscription"
	delete(p, "connect_timeout")
	return keywordValue(p, true)
}

// Secrets are the strings that must never appear in output.
func (e *Endpoint) Secrets() []string {
	var s []string
	for k := range sensitive {
		if v := e.params[k]; v != "" {
			s = append(s, v)
		}
	}
	if e.config.Password != "" {
		s = append(s, e.config.Password)
	}
	return s
}

// Connect opens a connection; failures come back as one clear line with a fix.
func (e *Endpoint) Connect(ctx context.Context) (*pgx.Conn, error) {
	conn, err := pgx.ConnectConfig(ctx, e.config.Copy())
	if err != nil {
		return nil, Explain(e, err)
	}
	return conn, nil
}

// Address is host:port for messages.
func (e *Endpoint) Address() string {
	if strings.HasPrefix(e.config.Host, "/") {
		return fmt.Sprintf("socket %s (port %d)", e.config.Host, e.config.Port)
	}
	return fmt.Sprintf("%s:%d", e.config.Host, e.config.Port)
}

// Ports are the ports of every host the endpoint may connect to.
func (e *Endpoint) Ports() []uint16 {
	ports := []uint16{e.config.Port}
	for _, f := range e.config.Fallbacks {
		if !slices.Contains(ports, f.Port) {
			ports = append(ports, f.Port)
		}
	}
	return ports
}

// ConnectTimeout is how long a connection attempt may take.
func (e *Endpoint) ConnectTimeout() time.Duration { return e.config.ConnectTimeout }

// keywordValue serialises params as a libpq keyword=value string.
func keywordValue(params map[string]string, withPassword bool) string {
	keys := make([]string, 0, len(params))
	for k := range params {
		if !withPassword && sensitive[k] {
			continue
		}
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var b strings.Builder
	for i, k := range keys {
		if i > 0 {
			b.WriteByte(' ')
		}
		b.WriteString(k)
		b.WriteString("='")
		v := strings.ReplaceAll(params[k], `\`, `\\`)
		b.WriteString(strings.ReplaceAll(v, `'`, `\'`))
		b.WriteByte('\'')
	}
	return b.String()
}

var parsePrefix = regexp.MustCompile("^cannot parse `.*`: ")

// parseErrorText keeps pgx's reason but drops the echoed connection string.
func parseErrorText(err error, password string) string {
	msg := parsePrefix.ReplaceAllString(err.Error(), "")
	if password != "" {
		msg = strings.ReplaceAll(msg, password, "xxxxx")
	}
	return msg
}
