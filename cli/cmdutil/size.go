package cmdutil

import (
	"context"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
)

// ParseSize reads sizes such as 512MB, 1GB, 10G, 4096 (bytes), in powers of 1024.
func ParseSize(s string) (int64, error) {
	t := strings.ToUpper(strings.TrimSpace(s))
	t = strings.TrimSuffix(strings.TrimSuffix(t, "B"), "I")
	mult := int64(1)
	if n := len(t); n > 0 {
		switch t[n-1] {
		case 'K':
			mult, t = 1<<10, t[:n-1]
		case 'M':
			mult, t = 1<<20, t[:n-1]
		case 'G':
			mult, t = 1<<30, t[:n-1]
		case 'T':
			mult, t = 1<<40, t[:n-1]
		}
	}
	v, err := strconv.ParseFloat(strings.TrimSpace(t), 64)
	if err != nil || v < 0 {
		return 0, fmt.Errorf("invalid size %q (examples: 512MB, 1GB, 0)", s)
	}
	return int64(v * float64(mult)), nil
}

// SourceSize estimates the data to copy, to size a remote worker. The source may
// not be reachable from here (it often is only from the worker's network): then
// it is 0 and the platform's default size applies.
func SourceSize(ctx context.Context, src *conninfo.Endpoint) int64 {
	ctx, cancel := context.WithTimeout(ctx, 3*time.Second)
	defer cancel()
	conn, err := pgx.ConnectConfig(ctx, src.ConnConfig())
	if err != nil {
		return 0
	}
	defer conn.Close(context.Background())
	var n int64
	if conn.QueryRow(ctx, `SELECT COALESCE(sum(pg_catalog.pg_database_size(datname)), 0)::int8 FROM pg_catalog.pg_database WHERE datallowconn AND NOT datistemplate`).Scan(&n) != nil {
		return 0
	}
	return n
}
