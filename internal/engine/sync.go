package engine

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/replication"
)

// Catalog OIDs of publication archive entries.
const (
	pgPublicationOID    = 6104
	pgPublicationRelOID = 6106
	pgEventTriggerOID   = 3466
)

// preparePublication checks the tables can be published and creates the
// publication, before the slot: decoding needs the publication to exist at the
// slot's start.
func (r *run) preparePublication(ctx context.Context, w *dbWork) error {
	conn, err := w.src.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	warnings, err := replication.Prepare(ctx, conn, w.name, r.opts.Filters, r.opts.Sync.ReplicaIdentityFull)
	for _, m := range warnings {
		r.warn(w.name, "%s", m)
	}
	if err != nil {
		return err
	}
	if r.captureDDL {
		// Before the slot: each later change is in its snapshot or the queue.
		if err := replication.InstallCapture(ctx, conn, replication.NamesFor(w.name).Publication, !r.opts.Filters.LeavesOutTables()); err != nil {
			return err
		}
	}
	w.slot = replication.NamesFor(w.name).Slot
	return nil
}

// skipOwnPublication keeps the publication this run created on the source out
// of the target's schema.
func (r *run) skipOwnPublication(ctx context.Context, conn *pgx.Conn, w *dbWork) error {
	var pubOID uint32
	var relOIDs []uint32
	err := conn.QueryRow(ctx, `SELECT p.oid, ARRAY(SELECT pr.oid FROM pg_catalog.pg_publication_rel pr WHERE pr.prpubid = p.oid)
	  FROM pg_catalog.pg_publication p WHERE p.pubname = $1`, replication.NamesFor(w.name).Publication).Scan(&pubOID, &relOIDs)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return fmt.Errorf("find publication: %w", err)
	}
	w.skipPost[tocKey{pgPublicationOID, pubOID}] = true
	for _, oid := range relOIDs {
		w.skipPost[tocKey{pgPublicationRelOID, oid}] = true
	}
	// And the schema change capture's event triggers (its schema is left
	// out of the dump).
	rows, err := conn.Query(ctx, "SELECT oid FROM pg_catalog.pg_event_trigger WHERE evtname = ANY ($1)", replication.DDLEventTriggers())
	if err != nil {
		return fmt.Errorf("find event triggers: %w", err)
	}
	oids, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return fmt.Errorf("find event triggers: %w", err)
	}
	for _, oid := range oids {
		w.skipPost[tocKey{pgEventTriggerOID, oid}] = true
	}
	return nil
}

// subscribe creates the subscription on the slot the copy's snapshot came from.
func (r *run) subscribe(ctx context.Context, w *dbWork) error {
	via := r.opts.Sync.SourceForTarget
	if via == nil {
		via = r.opts.Source
	}
	via, err := via.WithDatabase(w.name)
	if err != nil {
		return err
	}
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	n := replication.NamesFor(w.name)
	if r.captureDDL {
		if err := replication.InstallApply(ctx, conn); err != nil {
			return err
		}
	}
	if err := replication.CreateSubscription(ctx, conn, n, via); err != nil {
		return err
	}
	r.info(w.name, "replicating: subscription %s on the target streams from slot %s on the source (replicator status shows the lag)", n.Subscription, n.Slot)
	return nil
}

// abandonSync drops the slot and publication of a copy that failed before the
// handover, so that no slot keeps the source's WAL growing.
func (r *run) abandonSync(w *dbWork) {
	if w.slot == "" {
		return
	}
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	w.closeSnapshot()
	conn, err := w.src.Connect(ctx)
	if err != nil {
		r.warn(w.name, "could not drop replication slot %s after the failure (%v): drop it with replicator sync --stop", w.slot, err)
		return
	}
	defer conn.Close(ctx)
	if w.slotCreated {
		if err := replication.DropSlot(ctx, conn, w.slot); err != nil {
			r.warn(w.name, "%v: drop it with replicator sync --stop", err)
		}
	}
	if err := replication.DropPublication(ctx, conn, replication.NamesFor(w.name).Publication); err != nil {
		r.warn(w.name, "%v", err)
	}
	if _, err := replication.RemoveCapture(ctx, conn); err != nil {
		r.warn(w.name, "%v: drop it with replicator sync --stop", err)
	}
}
