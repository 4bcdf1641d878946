// Package checkpoint records how far a copy got, so that a run interrupted at any
// moment (kill -9, a dead worker, a lost connection) resumes where it stopped. The
// engine talks to a Store; locally that is a file under the user's state
// directory, remotely a DynamoDB table plugs into the same interface. Records hold
// keys, statuses and transaction ids, never connection strings or passwords.
package checkpoint

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"time"
)

// Status of one unit of work.
type Status string

const (
	// Running: started; nothing of it can be trusted.
	Running Status = "running"
	// Committing: the target transaction XID holds the work and is committing;
	// whether it is done is decided by asking the target about XID.
	Committing Status = "committing"
	// Done: finished and durable on the target.
	Done Status = "done"
)

// Record is the state of one step, table part, index or batch.
type Record struct {
	Key    string `json:"key"`
	Status Status `json:"status"`
	// XID is the target transaction that carries the work (Committing).
	XID   uint64 `json:"xid,omitempty"`
	Rows  int64  `json:"rows,omitempty"`
	Bytes int64  `json:"bytes,omitempty"`
	// Data is step-specific (a split table's ranges, the run's server identities).
	Data    string    `json:"data,omitempty"`
	Updated time.Time `json:"updated"`
}

// Store keeps the records of one run.
type Store interface {
	// Load returns every record, by key.
	Load(ctx context.Context) (map[string]Record, error)
	// Put records one unit's state. When durable is set the record must survive a
	// crash of the machine before Put returns (it guards a commit).
	Put(ctx context.Context, r Record, durable bool) error
	// Clear forgets the run (after success, or to start over).
	Clear(ctx context.Context) error
}

// RunID identifies a run by what it copies: the same source, target and filters
// give the same id, anything else a different one, so a stale checkpoint is never
// applied to a different copy. Inputs must be free of passwords.
func RunID(parts ...any) string {
	b, _ := json.Marshal(parts)
	sum := sha256.Sum256(b)
	return hex.EncodeToString(sum[:12])
}
