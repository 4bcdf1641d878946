package catalog

import (
	"context"
	"fmt"
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
	// Replication: the role may stream changes (REPLICATION or superuser).
	Replication bool
	// EventTriggers: the role may create event triggers (superuser, or a
	// member of RDS's rds_superuser).
	EventTriggers bool
	WALLevel      string
	// MaxConnections and Connections (in use now) bound --jobs.
	MaxConnections, Connections int
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
       r.rolname, r.rolsuper, r.rolcreatedb, r.rolsuper OR r.rolreplication, current_setting('wal_level'),
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
	s.Databases, err = pgx.CollectRows(rows, pgx.RowTo[string])
	return s, err
}

// SameServer reports whether two connections reach the same running server.
func SameServer(a, b *Server) bool {
	return a.SystemID == b.SystemID && a.StartedAt.Equal(b.StartedAt) && a.Port == b.Port
}
