package engine

import (
	"context"
	"errors"
	"fmt"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/replication"
)

// exportSnapshot opens the session whose snapshot every reader of the database
// shares, replacing (and closing) a previous one: a transaction exporting its
// snapshot, or with sync the replication session that created the slot.
func (r *run) exportSnapshot(ctx context.Context, w *dbWork) error {
	if w.slot != "" {
		conn, err := w.src.Connect(ctx)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		slot, err := replication.CreateSlot(ctx, w.src, conn, w.slot)
		if err != nil {
			return err
		}
		w.slotCreated = true
		w.setSnapshot(slot.Snapshot, slot.Close)
		return nil
	}
	conn, err := w.src.Connect(ctx)
	if err != nil {
		return err
	}
	// One round trip: the transaction, the session's settings, the export
	// (pg_dump waits for the snapshot). BEGIN comes first: its isolation
	// level must precede any query, and SET, unlike SET LOCAL, outlasts it.
	results, err := conn.PgConn().Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY;"+sourceSessionSQL+`
SELECT pg_catalog.pg_export_snapshot();`).ReadAll()
	if err == nil && (len(results) == 0 || len(results[len(results)-1].Rows) != 1) {
		err = errors.New("no snapshot name returned")
	}
	if err != nil {
		conn.Close(context.Background())
		return fmt.Errorf("export snapshot: %w", err)
	}
	w.setSnapshot(string(results[len(results)-1].Rows[0][0]), func() { conn.Close(context.Background()) })
	w.snapMu.Lock()
	w.exporter = conn
	w.snapMu.Unlock()
	return nil
}

// takeExporter hands the exporting session to one reader (the catalog's),
// once: it is already in the snapshot, with the source session's settings,
// which saves a connection (several round trips to a far source). It stays
// the snapshot's, closed with it.
func (w *dbWork) takeExporter() *pgx.Conn {
	w.snapMu.Lock()
	defer w.snapMu.Unlock()
	c := w.exporter
	w.exporter = nil
	return c
}

func (w *dbWork) setSnapshot(snap string, closer func()) {
	w.snapMu.Lock()
	old := w.snapClose
	w.snapshot, w.snapClose, w.exporter = snap, closer, nil
	w.snapMu.Unlock()
	if old != nil {
		old()
	}
}

func (w *dbWork) currentSnapshot() string {
	w.snapMu.Lock()
	defer w.snapMu.Unlock()
	return w.snapshot
}

// closeSnapshot ends the exporting session.
func (w *dbWork) closeSnapshot() {
	w.snapMu.Lock()
	defer w.snapMu.Unlock()
	if w.snapClose != nil {
		w.snapClose()
		w.snapClose = nil
	}
}

// beginInSnapshot starts a read-only transaction on conn in the shared
// snapshot, then runs session (settings): one round trip, which against a
// far source is most of what a new reader costs after connecting. When the
// snapshot is gone (its exporting session was killed, the source
// restarted), a new one is exported: from then on the copy is no longer
// consistent across tables, and the run says so.
func (r *run) beginInSnapshot(ctx context.Context, w *dbWork, conn *pgx.Conn, session string) error {
	for attempt := 0; ; attempt++ {
		snap := w.currentSnapshot()
		// The snapshot comes first: nothing that reads may precede it. A
		// failure aborts the block, and with it the settings.
		_, err := conn.PgConn().Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY; "+catalog.ImportSnapshot(snap)+";"+session).ReadAll()
		if err == nil {
			return nil
		}
		if conn.PgConn().TxStatus() != 'I' {
			if _, rbErr := conn.Exec(ctx, "ROLLBACK"); rbErr != nil {
				return rbErr
			}
		}
		var pgErr *pgconn.PgError
		if attempt > 0 || !errors.As(err, &pgErr) || pgErr.Code != "22023" {
			return fmt.Errorf("import snapshot: %w", err)
		}
		if err := r.renewSnapshot(ctx, w, snap); err != nil {
			return err
		}
	}
}

func (r *run) renewSnapshot(ctx context.Context, w *dbWork, lost string) error {
	w.renewMu.Lock()
	defer w.renewMu.Unlock()
	if w.currentSnapshot() != lost {
		return nil // another worker already replaced it
	}
	if w.slot != "" {
		return fmt.Errorf("the replication slot's snapshot was lost (its session ended): the handover to replication cannot be gap-free; start over with --drop-existing")
	}
	if err := r.exportSnapshot(ctx, w); err != nil {
		return fmt.Errorf("replace lost snapshot: %w", err)
	}
	r.warn(w.name, "the source snapshot was lost (its session ended); tables copied from now on come from a newer snapshot, so the copy is not consistent across tables (re-run with --no-resume --drop-existing for a consistent copy)")
	return nil
}
