// Package pgtools finds and runs PostgreSQL's own client programs (pg_dump,
// pg_restore, pg_dumpall). All DDL comes from them: replicator never writes its own
// DDL extraction.
package pgtools

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"sort"
	"strconv"
	"strings"

	"github.com/replicatorhq/replicator/internal/redact"
)

// Tools are the client programs of one PostgreSQL installation.
type Tools struct {
	Dir     string
	Version Version
}

// Version of a PostgreSQL program or server.
type Version struct {
	Major, Minor int
}

func (v Version) String() string { return fmt.Sprintf("%d.%d", v.Major, v.Minor) }

// Less reports whether v is older than o.
func (v Version) Less(o Version) bool {
	return v.Major < o.Major || v.Major == o.Major && v.Minor < o.Minor
}

// VersionFromNum converts server_version_num (e.g. 150018) to a Version.
func VersionFromNum(n int) Version {
	if n >= 100000 {
		return Version{Major: n / 10000, Minor: n % 10000}
	}
	return Version{Major: n / 10000, Minor: (n / 100) % 100}
}

var versionRE = regexp.MustCompile(`\(PostgreSQL\) (\d+)(?:\.(\d+))?`)

// ErrNotFound means no usable pg_dump was found.
var ErrNotFound = errors.New("pg_dump, pg_restore and pg_dumpall not found: install the PostgreSQL client tools (e.g. `apt-get install postgresql-client`) or pass --pg-bin DIR")

// Find locates the client tools. With dir set, only that directory is used;
// otherwise PATH and the usual installation directories are searched and the newest
// major version wins, so an old pg_dump first on PATH does not shadow a new one.
func Find(ctx context.Context, dir string) (*Tools, error) {
	if dir != "" {
		t, err := probe(ctx, dir)
		if err != nil {
			return nil, fmt.Errorf("--pg-bin %s: %w", dir, err)
		}
		return t, nil
	}
	var best *Tools
	for _, d := range candidateDirs() {
		t, err := probe(ctx, d)
		if err != nil {
			continue
		}
		if best == nil || best.Version.Less(t.Version) {
			best = t
		}
	}
	if best == nil {
		return nil, ErrNotFound
	}
	return best, nil
}

func probe(ctx context.Context, dir string) (*Tools, error) {
	for _, name := range []string{"pg_dump", "pg_restore", "pg_dumpall"} {
		if _, err := os.Stat(filepath.Join(dir, name)); err != nil {
			return nil, fmt.Errorf("%s not found in %s", name, dir)
		}
	}
	out, err := exec.CommandContext(ctx, filepath.Join(dir, "pg_dump"), "--version").Output()
	if err != nil {
		return nil, fmt.Errorf("%s --version: %w", filepath.Join(dir, "pg_dump"), err)
	}
	v, err := ParseVersion(string(out))
	if err != nil {
		return nil, err
	}
	return &Tools{Dir: dir, Version: v}, nil
}

// ParseVersion reads "pg_dump (PostgreSQL) 15.18 (Debian ...)".
func ParseVersion(s string) (Version, error) {
	m := versionRE.FindStringSubmatch(s)
	if m == nil {
		return Version{}, fmt.Errorf("cannot read a PostgreSQL version from %q", strings.TrimSpace(s))
	}
	major, _ := strconv.Atoi(m[1])
	minor, _ := strconv.Atoi(m[2])
	return Version{Major: major, Minor: minor}, nil
}

func candidateDirs() []string {
	var dirs []string
	if p, err := exec.LookPath("pg_dump"); err == nil {
		dirs = append(dirs, filepath.Dir(p))
	}
	for _, pattern := range []string{
		"/usr/lib/postgresql/*/bin", "/usr/pgsql-*/bin", "/opt/homebrew/opt/postgresql@*/bin",
		"/usr/local/opt/postgresql@*/bin", "/usr/local/pgsql/bin", "/Applications/Postgres.app/Contents/Versions/*/bin",
	} {
		m, _ := filepath.Glob(pattern)
		dirs = append(dirs, m...)
	}
	return dirs
}

// ServerBinDir finds initdb and pg_ctl (for throwaway clusters): $PGBIN, then the
// newest /usr/lib/postgresql/N/bin, then PATH.
func ServerBinDir() (string, error) {
	if d := os.Getenv("PGBIN"); d != "" {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	m, _ := filepath.Glob("/usr/lib/postgresql/*/bin/initdb")
	sort.Slice(m, func(i, j int) bool {
		vi, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[i]))))
		vj, _ := strconv.Atoi(filepath.Base(filepath.Dir(filepath.Dir(m[j]))))
		return vi < vj
	})
	if len(m) > 0 {
		return filepath.Dir(m[len(m)-1]), nil
	}
	if p, err := exec.LookPath("initdb"); err == nil {
		return filepath.Dir(p), nil
	}
	return "", errors.New("PostgreSQL server binaries (initdb, pg_ctl) not found: install them with `apt-get install postgresql` or set PGBIN")
}

// Path of one of the tools.
func (t *Tools) Path(name string) string { return filepath.Join(t.Dir, name) }

// CheckSource refuses a pg_dump older than the source server, which pg_dump itself
// would refuse later, after work had started.
func (t *Tools) CheckSource(server Version) error {
	if t.Version.Major < server.Major {
		return fmt.Errorf("pg_dump %s (%s) is older than the source server %d: install the PostgreSQL %d client tools or pass --pg-bin pointing at them",
			t.Version, t.Dir, server.Major, server.Major)
	}
	return nil
}

// Run runs one of the tools with extra environment (the password travels there)
// and returns its standard output. A failure carries the end of its stderr, with
// secrets removed.
func (t *Tools) Run(ctx context.Context, name string, args []string, env []string, secrets []string) ([]byte, error) {
	stdout, stderr, err := t.Exec(ctx, name, args, env)
	if err != nil {
		msg := redact.Scrub(strings.TrimSpace(string(stderr)), secrets)
		if msg == "" {
			msg = err.Error()
		}
		return stdout, &ToolError{Tool: name, Stderr: msg, Err: err}
	}
	return stdout, nil
}

// Exec runs a tool and returns both outputs whatever its exit status (stderr
// capped at 4 MB). The tool dies with this process.
func (t *Tools) Exec(ctx context.Context, name string, args []string, env []string) (stdout, stderr []byte, err error) {
	cmd := exec.CommandContext(ctx, t.Path(name), args...)
	cmd.Env = append(os.Environ(), env...)
	dieWithParent(cmd)
	var out, errOut bytes.Buffer
	cmd.Stdout = &out
	cmd.Stderr = &limitedBuffer{max: 4 << 20, buf: &errOut}
	err = cmd.Run()
	return out.Bytes(), errOut.Bytes(), err
}

// ToolError is a failed run of a client tool.
type ToolError struct {
	Tool   string
	Stderr string
	Err    error
}

func (e *ToolError) Error() string { return fmt.Sprintf("%s failed: %s", e.Tool, e.Stderr) }

// lostConnection are libpq's words for a connection that broke or could not
// be made (a server restarting, a network cut): running the tool again may
// succeed.
var lostConnection = []string{
	"server closed the connection unexpectedly", "no connection to the server", "Connection refused", "Connection reset by peer", "could not receive data from server",
	"could not send data to server", "terminating connection due to administrator command", "the database system is shutting down",
	"the database system is starting up", "SSL SYSCALL error", "connection timed out", "Connection timed out",
}

// tooManyConnections are the server's words for SQLSTATE 53300 (max_connections,
// a database's or a role's CONNECTION LIMIT, the reserved slots; 16 reworded
// the last).
var tooManyConnections = []string{
	"sorry, too many clients already", "too many connections for database", "too many connections for role",
	"remaining connection slots are reserved",
}

// Transient reports whether the tool failed because a connection broke or
// could not be had (for retry): what it ran may be run again.
func (e *ToolError) Transient() bool {
	return e.says(lostConnection) || e.TooManyConnections()
}

// TooManyConnections reports whether the server refused one of the tool's
// sessions for want of a slot: run again with fewer jobs.
func (e *ToolError) TooManyConnections() bool { return e.says(tooManyConnections) }

// says reports whether the tool's stderr holds one of the phrases.
func (e *ToolError) says(phrases []string) bool {
	return slices.ContainsFunc(phrases, func(p string) bool { return strings.Contains(e.Stderr, p) })
}
func (e *ToolError) Unwrap() error { return e.Err }

// limitedBuffer keeps the first max bytes: a tool that floods stderr must not
// grow memory without bound.
type limitedBuffer struct {
	max int
	buf *bytes.Buffer
}

func (l *limitedBuffer) Write(p []byte) (int, error) {
	if room := l.max - l.buf.Len(); room > 0 {
		if len(p) > room {
			l.buf.Write(p[:room])
		} else {
			l.buf.Write(p)
		}
	}
	return len(p), nil
}
