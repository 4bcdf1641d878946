package pgtools

import (
	"fmt"
	"time"
)

// LockBatchSince is the first pg_dump that locks the tables it dumps in
// batches (PostgreSQL commit 5f53b42, "During pg_dump startup, acquire table
// locks in batches", release 16). Older ones send a LOCK TABLE per table, one
// round trip each, before the dump starts: 2000 tables 50 ms away cost
// pg_dump 15 1 min 44 s for the schema alone, where pg_dump 18 took seconds.
const LockBatchSince = 16

// SlowSchemaDump is the estimated wait from which a hint is worth a line.
const SlowSchemaDump = 10 * time.Second

// SchemaDumpWait estimates what the per-table round trips of these client
// tools cost a schema dump of tables tables rtt away (zero from pg_dump 16).
func (t *Tools) SchemaDumpWait(tables int, rtt time.Duration) time.Duration {
	if t.Version.Major >= LockBatchSince {
		return 0
	}
	return time.Duration(tables) * rtt
}

// LatencyHint is one line, with its fix, when the client tools' per-table
// round trips would cost the schema dump SlowSchemaDump or more; "" otherwise.
// onWorker: the tools are a remote worker's, so --remote is no fix.
func (t *Tools) LatencyHint(tables int, rtt time.Duration, onWorker bool) (msg, fix string) {
	wait := t.SchemaDumpWait(tables, rtt)
	if wait < SlowSchemaDump {
		return "", ""
	}
	msg = fmt.Sprintf("the source is %s away and pg_dump %s locks its %d tables one round trip at a time: the schema dump alone will wait about %s",
		rtt.Round(100*time.Microsecond), t.Version, tables, wait.Round(time.Second))
	fix = fmt.Sprintf("pg_dump %d or newer locks them in batches: point --pg-bin at newer client tools (any newer major reads this source)", LockBatchSince)
	if onWorker {
		fix = "rebuild the worker image with the newest client tools: replicator setup --rebuild-image"
	} else {
		fix += ", or run the copy with --remote, whose worker has the newest"
	}
	return msg, fix
}
