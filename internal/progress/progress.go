// Package progress carries what the copy engine reports while it runs: events
// (steps and tables starting and finishing, warnings) and periodic snapshots of
// overall progress. The engine never prints; the CLI renders events (a bar on a
// TTY, lines otherwise, JSON with --json) and the remote worker ships them.
package progress

import (
	"encoding/json"
	"fmt"
	"sort"
	"sync"
	"sync/atomic"
	"time"
)

// Kind of event.
type Kind string

const (
	StepStarted  Kind = "step_started"
	StepDone     Kind = "step_done"
	TableStarted Kind = "table_started"
	TableDone    Kind = "table_done"
	Tick         Kind = "progress"
	Warning      Kind = "warning"
	Info         Kind = "info"
	// Summary carries the copy's result in Data (the engine's Result);
	// VerifyResult carries verify's (verify.Result). A remote worker ships
	// them so that the CLI ends its display as a local run does.
	Summary      Kind = "summary"
	VerifyResult Kind = "verify_result"
)

// Event is one thing that happened.
type Event struct {
	Time     time.Time `json:"time"`
	Kind     Kind      `json:"event"`
	Database string    `json:"database,omitempty"`
	Step     string    `json:"step,omitempty"`
	Table    string    `json:"table,omitempty"`
	Rows     int64     `json:"rows,omitempty"`
	Bytes    int64     `json:"bytes,omitempty"`
	// Seconds is the duration of a finished step or table.
	Seconds float64         `json:"seconds,omitempty"`
	Message string          `json:"message,omitempty"`
	Overall *Snapshot       `json:"overall,omitempty"`
	Data    json.RawMessage `json:"data,omitempty"`
}

// Sink receives events. Implementations must be safe for concurrent use.
type Sink interface {
	Emit(Event)
}

// SinkFunc adapts a function to a Sink.
type SinkFunc func(Event)

func (f SinkFunc) Emit(e Event) { f(e) }

// Discard drops every event.
var Discard Sink = SinkFunc(func(Event) {})

// Snapshot is overall progress at one moment.
type Snapshot struct {
	TablesDone  int     `json:"tables_done"`
	TablesTotal int     `json:"tables_total"`
	Rows        int64   `json:"rows"`
	Bytes       int64   `json:"bytes"`
	Percent     float64 `json:"percent"`
	ETASeconds  float64 `json:"eta_seconds,omitempty"`
	ElapsedSecs float64 `json:"elapsed_seconds"`
	// Retries counts the transient failures retried so far.
	Retries int64           `json:"retries,omitempty"`
	Active  []TableProgress `json:"active,omitempty"`
}

// TableProgress is one table being copied.
type TableProgress struct {
	Database string  `json:"database"`
	Table    string  `json:"table"`
	Rows     int64   `json:"rows"`
	Bytes    int64   `json:"bytes"`
	Percent  float64 `json:"percent"`
}

// Tracker accumulates progress from concurrent copies. Each table has a weight
// (its size on disk at the source); a table's completion is estimated from rows
// copied against the planner's row estimate, or bytes against size when the table
// was never analysed, and is exact once the table is done.
type Tracker struct {
	start time.Time

	mu      sync.Mutex
	tables  map[string]*Table
	order   []string
	total   float64
	retries int64
}

// Retried counts one retried failure.
func (tr *Tracker) Retried() {
	tr.mu.Lock()
	tr.retries++
	tr.mu.Unlock()
}

// NewTracker starts the clock.
func NewTracker() *Tracker {
	return &Tracker{start: time.Now(), tables: map[string]*Table{}}
}

// Pause moves the clock on by d: time spent waiting for a person's answer is
// not the copy's.
func (tr *Tracker) Pause(d time.Duration) {
	tr.mu.Lock()
	tr.start = tr.start.Add(d)
	tr.mu.Unlock()
}

// Table is the live counters of one table; safe for concurrent Add.
type Table struct {
	Database, Name string
	weight         float64
	estRows        int64
	estBytes       int64
	rows, bytes    atomic.Int64
	active         atomic.Int32
	done           atomic.Bool
}

// Add counts rows and bytes that arrived.
func (t *Table) Add(rows, bytes int64) {
	t.rows.Add(rows)
	t.bytes.Add(bytes)
}

// Counts returns rows and bytes so far.
func (t *Table) Counts() (rows, bytes int64) { return t.rows.Load(), t.bytes.Load() }

// Begin and End bracket one part (a whole table or one range) being copied.
func (t *Table) Begin() { t.active.Add(1) }
func (t *Table) End()   { t.active.Add(-1) }

// Finish marks the table complete.
func (t *Table) Finish() { t.done.Store(true) }

func (t *Table) fraction() float64 {
	if t.done.Load() {
		return 1
	}
	var f float64
	switch {
	case t.estRows > 0:
		f = float64(t.rows.Load()) / float64(t.estRows)
	case t.estBytes > 0:
		f = float64(t.bytes.Load()) / float64(t.estBytes)
	}
	if f > 0.99 {
		f = 0.99 // an estimate: never claim done before it is
	}
	return f
}

// Register adds a table to the plan; its weight is its size in bytes (minimum one
// page, so empty tables still count).
func (tr *Tracker) Register(db, name string, estRows, estBytes int64) *Table {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	key := db + "\x00" + name
	if t, ok := tr.tables[key]; ok {
		return t
	}
	w := float64(estBytes)
	if w < 8192 {
		w = 8192
	}
	t := &Table{Database: db, Name: name, weight: w, estRows: estRows, estBytes: estBytes}
	tr.tables[key] = t
	tr.order = append(tr.order, key)
	tr.total += w
	return t
}

// Remove drops a table from the plan (left out after all, or gone).
func (tr *Tracker) Remove(db, name string) {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	key := db + "\x00" + name
	t, ok := tr.tables[key]
	if !ok {
		return
	}
	delete(tr.tables, key)
	tr.total -= t.weight
	for i, k := range tr.order {
		if k == key {
			tr.order = append(tr.order[:i], tr.order[i+1:]...)
			break
		}
	}
}

// Snapshot computes overall progress now.
func (tr *Tracker) Snapshot() Snapshot {
	tr.mu.Lock()
	defer tr.mu.Unlock()
	s := Snapshot{TablesTotal: len(tr.tables), ElapsedSecs: time.Since(tr.start).Seconds(), Retries: tr.retries}
	var doneWeight float64
	for _, key := range tr.order {
		t := tr.tables[key]
		rows, bytes := t.Counts()
		s.Rows += rows
		s.Bytes += bytes
		f := t.fraction()
		doneWeight += f * t.weight
		if t.done.Load() {
			s.TablesDone++
		} else if t.active.Load() > 0 {
			s.Active = append(s.Active, TableProgress{Database: t.Database, Table: t.Name, Rows: rows, Bytes: bytes, Percent: 100 * f})
		}
	}
	if tr.total > 0 {
		s.Percent = 100 * doneWeight / tr.total
	}
	if s.Percent > 0.5 && s.Percent < 100 {
		s.ETASeconds = s.ElapsedSecs * (100 - s.Percent) / s.Percent
	}
	sort.Slice(s.Active, func(i, j int) bool { return s.Active[i].Bytes > s.Active[j].Bytes })
	return s
}

// Bytes formats a size for people, in powers of 1024: 512 B, 1.5 MiB.
func Bytes(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
