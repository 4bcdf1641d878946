package engine

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/retry"
)

// loChunk bounds the memory a large object takes in flight.
const loChunk = 1 << 20

// loBatch is how many large objects one target transaction writes.
const loBatch = 500

// copyLargeObjects copies large object contents. Their metadata (OID, owner,
// grants, comment) came with pre-data; here the bytes follow, read in the
// snapshot a chunk at a time, a batch per target transaction. Writing is
// idempotent (lo_put at the same offsets), so a batch is simply redone.
func (r *run) copyLargeObjects(ctx context.Context, w *dbWork) error {
	if len(w.blobs) == 0 {
		return nil
	}
	batches := make(chan []uint32, (len(w.blobs)+loBatch-1)/loBatch)
	for start := 0; start < len(w.blobs); start += loBatch {
		b := w.blobs[start:min(start+loBatch, len(w.blobs))]
		if !r.cp.done(keyBlobs(w.name, b[0], b[len(b)-1])) {
			batches <- b
		}
	}
	close(batches)
	g, gctx := errgroup.WithContext(ctx)
	for i := 0; i < min(r.opts.Jobs, len(batches)); i++ {
		g.Go(func() error {
			c := &copier{r: r, w: w}
			defer c.reset()
			for batch := range batches {
				err := retry.Do(gctx, r.opts.Retry, func(err error, wait time.Duration) {
					r.warn(w.name, "large objects %d-%d failed (%s); retrying in %s", batch[0], batch[len(batch)-1], oneLine(err), wait.Round(time.Millisecond))
				}, func() error {
					err := c.copyBlobs(gctx, batch)
					if err != nil {
						c.reset()
					}
					return err
				})
				if err != nil {
					return err
				}
				if err := r.cp.set(gctx, keyBlobs(w.name, batch[0], batch[len(batch)-1]), checkpoint.Done); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		return err
	}
	r.info(w.name, "%d large objects copied", len(w.blobs))
	return nil
}

func (c *copier) copyBlobs(ctx context.Context, oids []uint32) error {
	if err := c.ensure(ctx); err != nil {
		return err
	}
	if err := exec(ctx, c.dst, "BEGIN"); err != nil {
		return err
	}
	for _, oid := range oids {
		for off := int64(0); ; off += loChunk {
			var chunk []byte
			if err := c.src.QueryRow(ctx, "SELECT pg_catalog.lo_get($1, $2, $3)", oid, off, loChunk).Scan(&chunk); err != nil {
				return fmt.Errorf("read large object %d: %w", oid, err)
			}
			if len(chunk) > 0 {
				if _, err := c.dst.Exec(ctx, "SELECT pg_catalog.lo_put($1, $2, $3)", oid, off, chunk); err != nil {
					return fmt.Errorf("write large object %d: %w", oid, err)
				}
			}
			if len(chunk) < loChunk {
				break
			}
		}
	}
	return exec(ctx, c.dst, "COMMIT")
}
