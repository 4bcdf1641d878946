package engine

import (
	"context"
	"fmt"

	"golang.org/x/sync/errgroup"
)

// loChunk bounds the memory a large object takes in flight.
const loChunk = 1 << 20

// loBatch is how many large objects one target transaction writes.
const loBatch = 500

// copyLargeObjects copies large object contents. Their metadata (OID, owner,
// grants, comment) came with pre-data; here the bytes follow, read in the
// snapshot, a chunk at a time.
func (r *run) copyLargeObjects(ctx context.Context, w *dbWork) error {
	if len(w.blobs) == 0 {
		return nil
	}
	workers := min(r.opts.Jobs, (len(w.blobs)+loBatch-1)/loBatch)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < workers; i++ {
		var mine []uint32
		for j := i; j < len(w.blobs); j += workers {
			mine = append(mine, w.blobs[j])
		}
		g.Go(func() error { return r.copyBlobs(gctx, w, mine) })
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.info(w.name, "%d large objects copied", len(w.blobs))
	return nil
}

func (r *run) copyBlobs(ctx context.Context, w *dbWork, oids []uint32) error {
	src, err := w.src.Connect(ctx)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	dst, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer dst.Close(context.Background())
	if err := sourceSession(ctx, src); err != nil {
		return err
	}
	if _, err := src.Exec(ctx, "BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY"); err != nil {
		return err
	}
	if _, err := src.Exec(ctx, "SET TRANSACTION SNAPSHOT "+quoteLiteral(w.snapshot)); err != nil {
		return fmt.Errorf("import snapshot: %w", err)
	}
	if err := targetSession(ctx, dst, ""); err != nil {
		return err
	}
	for start := 0; start < len(oids); start += loBatch {
		batch := oids[start:min(start+loBatch, len(oids))]
		if _, err := dst.Exec(ctx, "BEGIN"); err != nil {
			return err
		}
		for _, oid := range batch {
			for off := int64(0); ; off += loChunk {
				var chunk []byte
				if err := src.QueryRow(ctx, "SELECT pg_catalog.lo_get($1, $2, $3)", oid, off, loChunk).Scan(&chunk); err != nil {
					return fmt.Errorf("read large object %d: %w", oid, err)
				}
				if len(chunk) > 0 {
					if _, err := dst.Exec(ctx, "SELECT pg_catalog.lo_put($1, $2, $3)", oid, off, chunk); err != nil {
						return fmt.Errorf("write large object %d: %w", oid, err)
					}
				}
				if len(chunk) < loChunk {
					break
				}
			}
		}
		if _, err := dst.Exec(ctx, "COMMIT"); err != nil {
			return err
		}
	}
	return nil
}
