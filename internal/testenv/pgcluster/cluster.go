// Package pgcluster starts throwaway PostgreSQL clusters (initdb + pg_ctl into a
// temporary directory, listening on a free loopback port) for tests, the demo and
// the benchmark. PostgreSQL refuses to run as root, so when the caller is root the
// server runs as the "postgres" system user.
package pgcluster

import (
	"context"
	"fmt"
	"net"
	"net/url"
	"os"
	"os/exec"
	"os/user"
	"path/filepath"
	"sort"
	"strconv"
	"strings"
	"syscall"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/testenv/loopback"
)

// Options describe a cluster to start. The zero value is usable.
type Options struct {
	// Name appears in the data directory name, to tell clusters apart in ps and logs.
	Name string
	// Superuser is the bootstrap superuser (default "postgres").
	Superuser string
	// Password of the superuser; password authentication (scram) is always on so that
	// tests exercise real credentials. Default "postgres".
	Password string
	// Settings are appended to postgresql.conf.
	Settings map[string]string
	// BinDir holds initdb, pg_ctl and postgres; found automatically when empty.
	BinDir string
	// Major picks the server binaries of one PostgreSQL major (see BinDir);
	// 0 means the newest installed by the system's packages.
	Major int
	// BaseDir is where the data directory is created (default os.TempDir()).
	BaseDir string
}

// Cluster is a running throwaway server.
type Cluster struct {
	Name     string
	Dir      string // parent directory: data/, log, socket
	BinDir   string
	Port     int
	User     string
	Password string

	owner *user.User // set when running as root
}

// TestSettings make a cluster fast and disposable: no durability.
var TestSettings = map[string]string{
	"fsync":                "off",
	"synchronous_commit":   "off",
	"full_page_writes":     "off",
	"max_connections":      "100",
	"shared_buffers":       "64MB",
	"max_wal_size":         "1GB",
	"log_min_messages":     "warning",
	"max_worker_processes": "32",
	// Tests that sync run side by side: room for their subscriptions'
	// apply workers (the default 4 made one test wait for another's).
	"max_logical_replication_workers": "24",
}

// Start runs initdb and starts the server, retrying on another port if the one it
// picked was taken meanwhile by a cluster started in parallel.
func Start(ctx context.Context, opts Options) (*Cluster, error) {
	if opts.Superuser == "" {
		opts.Superuser = "postgres"
	}
	if opts.Password == "" {
		opts.Password = "postgres"
	}
	if opts.BinDir == "" && opts.Major != 0 {
		dir, err := BinDir(opts.Major)
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	}
	if opts.BinDir == "" {
		dir, err := pgtools.ServerBinDir()
		if err != nil {
			return nil, err
		}
		opts.BinDir = dir
	}
	if opts.BaseDir == "" {
		opts.BaseDir = os.TempDir()
	}
	c := &Cluster{Name: opts.Name, BinDir: opts.BinDir, User: opts.Superuser, Password: opts.Password}
	if os.Geteuid() == 0 {
		u, err := user.Lookup("postgres")
		if err != nil {
			return nil, fmt.Errorf("running as root: PostgreSQL needs a non-root user to run as, and user %q was not found: %w", "postgres", err)
		}
		c.owner = u
	}
	dir, err := os.MkdirTemp(opts.BaseDir, "replicator-pg-"+sanitize(opts.Name)+"-")
	if err != nil {
		return nil, err
	}
	c.Dir = dir
	if err := os.Chmod(dir, 0o755); err != nil {
		return nil, err
	}
	if err := c.chown(dir); err != nil {
		return nil, err
	}
	if err := c.initdb(ctx, opts); err != nil {
		os.RemoveAll(dir)
		return nil, err
	}
	var lastErr error
	for attempt := 0; attempt < 8; attempt++ {
		port, err := loopback.FreePort()
		if err != nil {
			return nil, err
		}
		c.Port = port
		if lastErr = c.start(ctx); lastErr == nil {
			return c, nil
		}
	}
	os.RemoveAll(dir)
	return nil, lastErr
}

func (c *Cluster) dataDir() string { return filepath.Join(c.Dir, "data") }

// LogFile is the server log, useful when a test fails.
func (c *Cluster) LogFile() string { return filepath.Join(c.Dir, "server.log") }

func (c *Cluster) initdb(ctx context.Context, opts Options) error {
	pwfile := filepath.Join(c.Dir, "pwfile")
	if err := os.WriteFile(pwfile, []byte(opts.Password+"\n"), 0o600); err != nil {
		return err
	}
	if err := c.chown(pwfile); err != nil {
		return err
	}
	defer os.Remove(pwfile)
	out, err := c.command(ctx, "initdb", "-D", c.dataDir(), "-U", opts.Superuser,
		"--auth=scram-sha-256", "--pwfile="+pwfile, "--encoding=UTF8", "--locale=C.UTF-8", "--no-sync").CombinedOutput()
	if err != nil {
		return fmt.Errorf("initdb: %w: %s", err, strings.TrimSpace(string(out)))
	}
	settings := map[string]string{
		"listen_addresses":        "127.0.0.1",
		"unix_socket_directories": c.Dir,
		"logging_collector":       "off",
	}
	for k, v := range opts.Settings {
		settings[k] = v
	}
	keys := make([]string, 0, len(settings))
	for k := range settings {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	var conf strings.Builder
	conf.WriteString("\n# replicator pgcluster\n")
	for _, k := range keys {
		fmt.Fprintf(&conf, "%s = '%s'\n", k, strings.ReplaceAll(settings[k], "'", "''"))
	}
	f, err := os.OpenFile(filepath.Join(c.dataDir(), "postgresql.conf"), os.O_APPEND|os.O_WRONLY, 0)
	if err != nil {
		return err
	}
	defer f.Close()
	_, err = f.WriteString(conf.String())
	return err
}

func (c *Cluster) start(ctx context.Context) error {
	out, err := c.command(ctx, "pg_ctl", "start", "-w", "-t", "60", "-D", c.dataDir(), "-l", c.LogFile(),
		"-o", "-p "+strconv.Itoa(c.Port)).CombinedOutput()
	if err != nil {
		log, _ := os.ReadFile(c.LogFile())
		return fmt.Errorf("pg_ctl start on port %d: %w: %s\n%s", c.Port, err, strings.TrimSpace(string(out)), tail(string(log), 2000))
	}
	return nil
}

// Stop shuts the server down immediately and removes its files.
func (c *Cluster) Stop() error {
	if c == nil {
		return nil
	}
	out, err := c.command(context.Background(), "pg_ctl", "stop", "-m", "immediate", "-w", "-D", c.dataDir()).CombinedOutput()
	rmErr := os.RemoveAll(c.Dir)
	if err != nil {
		return fmt.Errorf("pg_ctl stop: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return rmErr
}

// Restart stops and starts the server on the same port (for settings that need it).
func (c *Cluster) Restart(ctx context.Context) error {
	out, err := c.command(ctx, "pg_ctl", "restart", "-w", "-m", "fast", "-D", c.dataDir(), "-l", c.LogFile(),
		"-o", "-p "+strconv.Itoa(c.Port)).CombinedOutput()
	if err != nil {
		return fmt.Errorf("pg_ctl restart: %w: %s", err, strings.TrimSpace(string(out)))
	}
	return nil
}

// URL is a connection URL for database db as the superuser.
func (c *Cluster) URL(db string) string {
	return c.URLAs(c.User, c.Password, db)
}

// URLAs is a connection URL for database db as another role.
func (c *Cluster) URLAs(role, password, db string) string {
	u := url.URL{
		Scheme:   "postgres",
		User:     url.UserPassword(role, password),
		Host:     net.JoinHostPort("127.0.0.1", strconv.Itoa(c.Port)),
		Path:     "/" + db,
		RawQuery: "sslmode=disable",
	}
	return u.String()
}

// Connect opens a pgx connection to db as the superuser.
func (c *Cluster) Connect(ctx context.Context, db string) (*pgx.Conn, error) {
	return pgx.Connect(ctx, c.URL(db))
}

// Exec runs SQL (several statements allowed) in db as the superuser.
func (c *Cluster) Exec(ctx context.Context, db, sql string) error {
	conn, err := c.Connect(ctx, db)
	if err != nil {
		return err
	}
	defer conn.Close(ctx)
	_, err = conn.Exec(ctx, sql)
	return err
}

func (c *Cluster) command(ctx context.Context, name string, args ...string) *exec.Cmd {
	cmd := exec.CommandContext(ctx, filepath.Join(c.BinDir, name), args...)
	cmd.Env = append(os.Environ(), "LC_ALL=C.UTF-8")
	cmd.Dir = c.Dir
	if c.owner != nil {
		uid, _ := strconv.Atoi(c.owner.Uid)
		gid, _ := strconv.Atoi(c.owner.Gid)
		cmd.SysProcAttr = &syscall.SysProcAttr{Credential: &syscall.Credential{Uid: uint32(uid), Gid: uint32(gid)}}
		cmd.Env = append(cmd.Env, "HOME="+c.owner.HomeDir, "USER=postgres")
	}
	return cmd
}

func (c *Cluster) chown(path string) error {
	if c.owner == nil {
		return nil
	}
	uid, _ := strconv.Atoi(c.owner.Uid)
	gid, _ := strconv.Atoi(c.owner.Gid)
	return os.Chown(path, uid, gid)
}

func sanitize(s string) string {
	if s == "" {
		return "cluster"
	}
	return strings.Map(func(r rune) rune {
		if r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' {
			return r
		}
		return '-'
	}, s)
}

func tail(s string, n int) string {
	if len(s) <= n {
		return s
	}
	return s[len(s)-n:]
}

// StartPair starts a source and a target cluster (settings for each), named
// name-src and name-dst. When the target fails to start, the source is stopped.
func StartPair(ctx context.Context, name string, src, dst Options) (source, target *Cluster, err error) {
	src.Name, dst.Name = name+"-src", name+"-dst"
	if source, err = Start(ctx, src); err != nil {
		return nil, nil, err
	}
	if target, err = Start(ctx, dst); err != nil {
		source.Stop()
		return nil, nil, err
	}
	return source, target, nil
}
