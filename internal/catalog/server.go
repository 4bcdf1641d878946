package catalog

import (
	"context"
	"fmt"
	"math"
	"runtime"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/pgtools"
)

// Server is what is known about a server and the connecting role.
type Server struct {
	Version pgtools.Version
	// SystemID and StartedAt tell two servers apart (a clone shares the first,
	// never the second).
	SystemID  string
	StartedAt time.Time
	Port      string
	User      string
	Superuser bool
	CreateDB  bool
	// Replication: the role may stream changes (REPLICATION or superuser; on
	// RDS and Aurora, where neither can be granted, a member of
	// rds_replication, as AWS's guides for logical replication say).
	Replication bool
	// EventTriggers: the role may create event triggers (superuser, or a
	// member of RDS's rds_superuser).
	EventTriggers bool
	WALLevel      string
	// MaxConnections and Connections (in use now) bound --jobs.
	MaxConnections, Connections int
	// RoleLimit is the connecting role's CONNECTION LIMIT (-1: none) and
	// RoleSessions its sessions now; DBLimits each database's limit and
	// sessions. Neither binds a superuser.
	RoleLimit, RoleSessions int
	DBLimits                map[string]DBLimit
	// Databases that accept connections, templates excluded.
	Databases []string
	// InRecovery: a standby, which accepts no writes. ReadOnly: the
	// session's transactions are read-only by default (a setting of the
	// role, the database or the server).
	InRecovery, ReadOnly bool
	// Tablespaces of the server, by name.
	Tablespaces []string
	// MaxSlotWALKeepSize is how much WAL a replication slot may hold back
	// (max_slot_wal_keep_size, 13+): "-1" is unlimited, "" before 13
	// (which has no limit either).
	MaxSlotWALKeepSize string
}

// SlotWALUnlimited: a stuck slot may keep WAL until the disk is full.
func (s *Server) SlotWALUnlimited() bool {
	return s.MaxSlotWALKeepSize == "" || s.MaxSlotWALKeepSize == "-1"
}

// ReadServer reads the server facts over conn.
func ReadServer(ctx context.Context, conn *pgx.Conn) (*Server, error) {
	s := &Server{}
	var num int
	err := conn.QueryRow(ctx, `
SELECT current_setting('server_version_num')::int,
       (SELECT system_identifier::text FROM pg_catalog.pg_control_system()),
       pg_catalog.pg_postmaster_start_time(), current_setting('port'),
       r.rolname, r.rolsuper, r.rolcreatedb,
       r.rolsuper OR r.rolreplication OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname = 'rds_replication' AND pg_catalog.pg_has_role(r.oid, x.oid, 'MEMBER')),
       current_setting('wal_level'),
       current_setting('max_connections')::int, (SELECT count(*) FROM pg_catalog.pg_stat_activity)::int,
       pg_catalog.pg_is_in_recovery(), current_setting('default_transaction_read_only') = 'on',
       ARRAY(SELECT spcname::text FROM pg_catalog.pg_tablespace ORDER BY 1),
       COALESCE(current_setting('max_slot_wal_keep_size', true), ''),
       r.rolsuper OR EXISTS (SELECT 1 FROM pg_catalog.pg_roles x WHERE x.rolname = 'rds_superuser' AND pg_catalog.pg_has_role(r.oid, x.oid, 'MEMBER'))
FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(
		&num, &s.SystemID, &s.StartedAt, &s.Port, &s.User, &s.Superuser, &s.CreateDB, &s.Replication, &s.WALLevel,
		&s.MaxConnections, &s.Connections, &s.InRecovery, &s.ReadOnly, &s.Tablespaces, &s.MaxSlotWALKeepSize, &s.EventTriggers)
	if err != nil {
		return nil, fmt.Errorf("read server facts: %w", err)
	}
	s.Version = pgtools.VersionFromNum(num)
	rows, err := conn.Query(ctx, `SELECT datname FROM pg_catalog.pg_database
	                              WHERE NOT datistemplate AND datallowconn ORDER BY datname`)
	if err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	if s.Databases, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return nil, fmt.Errorf("list databases: %w", err)
	}
	if err := conn.QueryRow(ctx, `SELECT r.rolconnlimit, (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.usesysid = r.oid)::int
	  FROM pg_catalog.pg_roles r WHERE r.rolname = current_user`).Scan(&s.RoleLimit, &s.RoleSessions); err != nil {
		return nil, fmt.Errorf("read connection limits: %w", err)
	}
	// A database's limit binds sessions, not its autovacuum workers: those
	// come and go on their own, and counting them refused copies that fit.
	// (A role without pg_read_all_stats sees no backend type for other
	// roles' sessions; a session has a role, a background worker not.)
	rows, err = conn.Query(ctx, `SELECT d.datname, d.datconnlimit, (SELECT count(*) FROM pg_catalog.pg_stat_activity a WHERE a.datid = d.oid
	    AND (a.backend_type IN ('client backend', 'walsender') OR a.backend_type IS NULL AND a.usesysid IS NOT NULL))::int
	  FROM pg_catalog.pg_database d WHERE d.datconnlimit >= 0`)
	if err != nil {
		return nil, fmt.Errorf("read connection limits: %w", err)
	}
	limits, err := pgx.CollectRows(rows, pgx.RowToStructByPos[DBLimit])
	if err != nil {
		return nil, fmt.Errorf("read connection limits: %w", err)
	}
	s.DBLimits = map[string]DBLimit{}
	for _, l := range limits {
		s.DBLimits[l.Name] = l
	}
	return s, nil
}

// DBLimit is a database's CONNECTION LIMIT and its sessions now.
type DBLimit struct {
	Name            string
	Limit, Sessions int
}

// Room is how many more sessions the connecting role may open in database
// db now, and, when a CONNECTION LIMIT binds it rather than
// max_connections, which one (withDB: the database's own limit counts; it
// does not for a database the copy creates, whose limit comes at its end).
func (s *Server) Room(db string, withDB bool) (room int, limit string) {
	room = s.MaxConnections - s.Connections
	if s.Superuser {
		return room, ""
	}
	if s.RoleLimit >= 0 && s.RoleLimit-s.RoleSessions < room {
		room, limit = s.RoleLimit-s.RoleSessions, fmt.Sprintf("role %s's CONNECTION LIMIT %d (%d in use)", s.User, s.RoleLimit, s.RoleSessions)
	}
	if l, ok := s.DBLimits[db]; ok && withDB && l.Limit-l.Sessions < room {
		room, limit = l.Limit-l.Sessions, fmt.Sprintf("database %s's CONNECTION LIMIT %d (%d in use)", db, l.Limit, l.Sessions)
	}
	return max(room, 0), limit
}

// DefaultJobs is the copy's concurrency when --jobs is not given: one job per
// CPU, at least two. validate assumes it too.
func DefaultJobs() int { return max(2, runtime.NumCPU()) }

// SourceSessions is how many sessions a copy opens on the source in one
// database: one per copy job, the snapshot's, pg_dump's and the catalog's.
// validate and the copy size the source by it alike.
func SourceSessions(jobs int) int { return jobs + 3 }

// TargetSessions is how many sessions a copy opens on the target in one
// database: one per copy job and per index job, the analyzer's and
// pg_restore's.
func TargetSessions(jobs, indexJobs int) int { return jobs + indexJobs + 2 }

// SameServer reports whether two connections reach the same running server.
func SameServer(a, b *Server) bool {
	return a.SystemID == b.SystemID && a.StartedAt.Equal(b.StartedAt) && a.Port == b.Port
}

// NoTransactionTimeout turns off PostgreSQL 17's transaction_timeout for the
// session: a database or role may set one short enough (100 ms) to end
// replicator's catalog reads on a busy server. Older servers do not know
// the setting; the WHERE keeps them from seeing it.
const NoTransactionTimeout = `SELECT pg_catalog.set_config('transaction_timeout', '0', false) WHERE pg_catalog.current_setting('server_version_num')::int >= 170000`

// Untimed runs NoTransactionTimeout on a session that reads catalogs.
func Untimed(ctx context.Context, conn *pgx.Conn) error {
	if _, err := conn.Exec(ctx, NoTransactionTimeout); err != nil {
		return fmt.Errorf("turn off transaction_timeout: %w", err)
	}
	return nil
}

// RoundTrip is the shortest of three empty queries: one round trip each (the
// simple protocol), less any one-off delay.
func RoundTrip(ctx context.Context, conn *pgx.Conn) (time.Duration, error) {
	best := time.Duration(math.MaxInt64)
	for range 3 {
		start := time.Now()
		if _, err := conn.PgConn().Exec(ctx, "").ReadAll(); err != nil {
			return 0, err
		}
		best = min(best, time.Since(start))
	}
	return best, nil
}
