package engine

import (
	"context"
	"fmt"
	"strings"
	"time"

	"golang.org/x/sync/errgroup"

	"github.com/jackc/pgx/v5"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/retry"
)

// loChunk bounds the memory a large object takes in flight.
const loChunk = 1 << 20

// loBatch is how many large objects one target transaction writes.
const loBatch = 500

// copyLargeObjects copies large objects: each is created with its owner,
// grants and comment, then its bytes follow, read in the snapshot a chunk at
// a time, a batch per target transaction. Writing is idempotent (an existing
// object is kept, lo_put writes the same offsets), so a batch is simply redone.
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
					r.retrying(w.name, "large objects %d-%d failed (%s); retrying in %s", batch[0], batch[len(batch)-1], oneLine(err), wait.Round(time.Millisecond))
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
	if err := c.createBlobs(ctx, oids); err != nil {
		return err
	}
	large, err := c.copySmallBlobs(ctx, oids)
	if err != nil {
		return err
	}
	for _, oid := range large {
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

// loSmall is the size up to which large objects are read, and written, many
// per query: most are small, and a query per object is a round trip per
// object, which a far source makes the whole cost.
const loSmall = 64 << 10

// copySmallBlobs copies the objects of a batch that fit in loSmall, reading
// the beginning of every object in one query and writing them in groups of
// up to loChunk bytes; it returns the larger ones, copied a chunk at a time.
func (c *copier) copySmallBlobs(ctx context.Context, oids []uint32) (large []uint32, err error) {
	rows, err := c.src.Query(ctx, "SELECT o, pg_catalog.lo_get(o, 0, $2) FROM unnest($1::pg_catalog.oid[]) AS o", oids, loSmall+1)
	if err != nil {
		return nil, fmt.Errorf("read large objects: %w", err)
	}
	var pending []uint32
	var data [][]byte
	size := 0
	flush := func() error {
		if len(pending) == 0 {
			return nil
		}
		if _, err := c.dst.Exec(ctx, "SELECT count(pg_catalog.lo_put(x.o, 0, x.d)) FROM unnest($1::pg_catalog.oid[], $2::bytea[]) AS x(o, d)", pending, data); err != nil {
			return fmt.Errorf("write large objects %d-%d: %w", pending[0], pending[len(pending)-1], err)
		}
		pending, data, size = pending[:0], data[:0], 0
		return nil
	}
	// The target is written while the source's rows stream: two connections.
	for rows.Next() {
		var oid uint32
		var b []byte
		if err := rows.Scan(&oid, &b); err != nil {
			rows.Close()
			return nil, fmt.Errorf("read large objects: %w", err)
		}
		if len(b) > loSmall {
			large = append(large, oid)
			continue
		}
		if len(b) == 0 {
			continue // created empty
		}
		pending, data, size = append(pending, oid), append(data, b), size+len(b)
		if size >= loChunk {
			if err := flush(); err != nil {
				rows.Close()
				return nil, err
			}
		}
	}
	if err := rows.Err(); err != nil {
		return nil, fmt.Errorf("read large objects: %w", err)
	}
	return large, flush()
}

// loMetadataSQL writes, on the source and quoted by it (%I, %L), the
// statements that give a batch of large objects their owner, privileges and
// comment: what pg_dump writes for them.
const loMetadataSQL = `
SELECT m.oid,
       format('ALTER LARGE OBJECT %s OWNER TO %I', m.oid, pg_catalog.pg_get_userbyid(m.lomowner)),
       ARRAY(SELECT format('GRANT %s ON LARGE OBJECT %s TO %s%s', a.privilege_type, m.oid,
                           CASE WHEN a.grantee = 0 THEN 'PUBLIC' ELSE quote_ident(pg_catalog.pg_get_userbyid(a.grantee)) END,
                           CASE WHEN a.is_grantable THEN ' WITH GRANT OPTION' ELSE '' END)
             FROM pg_catalog.aclexplode(m.lomacl) a WHERE a.grantee <> m.lomowner ORDER BY 1)
       || ARRAY(SELECT format('REVOKE %s ON LARGE OBJECT %s FROM %I', p, m.oid, pg_catalog.pg_get_userbyid(m.lomowner))
             FROM unnest(ARRAY['SELECT', 'UPDATE']) p
             WHERE m.lomacl IS NOT NULL AND NOT EXISTS (SELECT 1 FROM pg_catalog.aclexplode(m.lomacl) a WHERE a.grantee = m.lomowner AND a.privilege_type = p)),
       format('COMMENT ON LARGE OBJECT %s IS %L', m.oid, d.description)
FROM pg_catalog.pg_largeobject_metadata m
LEFT JOIN pg_catalog.pg_description d ON d.objoid = m.oid AND d.classoid = 'pg_catalog.pg_largeobject'::pg_catalog.regclass AND d.objsubid = 0
WHERE m.oid = ANY($1) ORDER BY m.oid`

// createBlobs creates a batch of large objects with their owner, privileges
// and comment, in the batch's transaction: pg_dump counts them as data (from
// 17 on in the data section, which would carry the contents too, read twice),
// and the schema is dumped without data. An object
// already there (a redone batch after a crash between commit and checkpoint)
// is left as it is. What a managed target refuses (owners it cannot set,
// grants) is a warning, as in pg_restore's output.
func (c *copier) createBlobs(ctx context.Context, oids []uint32) error {
	rows, err := c.src.Query(ctx, loMetadataSQL, oids)
	if err != nil {
		return fmt.Errorf("read large object metadata: %w", err)
	}
	type meta struct {
		oid     uint32
		owner   string
		grants  []string
		comment *string
	}
	var all []meta
	for rows.Next() {
		var m meta
		if err := rows.Scan(&m.oid, &m.owner, &m.grants, &m.comment); err != nil {
			rows.Close()
			return fmt.Errorf("read large object metadata: %w", err)
		}
		all = append(all, m)
	}
	if err := rows.Err(); err != nil {
		return fmt.Errorf("read large object metadata: %w", err)
	}
	// Created in one query, as the metadata statements below on a superuser's
	// target: a round trip per object is what a far target makes the cost.
	rows, err = c.dst.Query(ctx, `SELECT o FROM unnest($1::pg_catalog.oid[]) AS o
		WHERE NOT EXISTS (SELECT 1 FROM pg_catalog.pg_largeobject_metadata m WHERE m.oid = o)`, oids)
	if err != nil {
		return fmt.Errorf("create large objects: %w", err)
	}
	fresh, err := pgx.CollectRows(rows, pgx.RowTo[uint32])
	if err != nil {
		return fmt.Errorf("create large objects: %w", err)
	}
	if _, err := c.dst.Exec(ctx, "SELECT count(pg_catalog.lo_create(o)) FROM unnest($1::pg_catalog.oid[]) AS o", fresh); err != nil {
		return fmt.Errorf("create large objects: %w", err)
	}
	created := make(map[uint32]bool, len(fresh))
	for _, o := range fresh {
		created[o] = true
	}
	var stmts []string
	for _, m := range all {
		if !created[m.oid] {
			continue
		}
		stmts = append(stmts, m.owner)
		stmts = append(stmts, m.grants...)
		if m.comment != nil {
			stmts = append(stmts, *m.comment)
		}
	}
	if c.r.targetSuper {
		if len(stmts) > 0 {
			if err := exec(ctx, c.dst, strings.Join(stmts, ";\n")); err != nil {
				return fmt.Errorf("large objects' owners, grants and comments: %w", err)
			}
		}
		return nil
	}
	for _, stmt := range stmts {
		if err := c.blobStatement(ctx, stmt); err != nil {
			return fmt.Errorf("%s: %w", firstWords(stmt, 4), err)
		}
	}
	return nil
}

// blobStatement runs one metadata statement on a target that is not a
// superuser's, inside a savepoint, so that a refused owner or grant is a
// warning and the batch goes on.
func (c *copier) blobStatement(ctx context.Context, stmt string) error {
	if err := exec(ctx, c.dst, "SAVEPOINT lo_meta"); err != nil {
		return err
	}
	err := exec(ctx, c.dst, stmt)
	if err == nil {
		return exec(ctx, c.dst, "RELEASE SAVEPOINT lo_meta")
	}
	why := refusal(restoreIssue{Message: pgMessage(err), Command: stmt}, false)
	if why == "" {
		return err
	}
	c.r.mu.Lock()
	first := !c.r.loRefused[why]
	if c.r.loRefused == nil {
		c.r.loRefused = map[string]bool{}
	}
	c.r.loRefused[why] = true
	c.r.mu.Unlock()
	if first {
		c.r.warn(c.w.name, "large objects: %s (first: %s)", why, oneLine(err))
	}
	return exec(ctx, c.dst, "ROLLBACK TO SAVEPOINT lo_meta")
}
