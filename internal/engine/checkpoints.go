package engine

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
)

// checkpoints is the run's view of its checkpoint store: every record in memory,
// each change written through.
type checkpoints struct {
	store checkpoint.Store
	mu    sync.Mutex
	recs  map[string]checkpoint.Record
}

func loadCheckpoints(ctx context.Context, store checkpoint.Store) (*checkpoints, error) {
	c := &checkpoints{store: store, recs: map[string]checkpoint.Record{}}
	if store == nil {
		return c, nil
	}
	recs, err := store.Load(ctx)
	if err != nil {
		return nil, err
	}
	c.recs = recs
	return c, nil
}

func (c *checkpoints) get(key string) (checkpoint.Record, bool) {
	c.mu.Lock()
	defer c.mu.Unlock()
	r, ok := c.recs[key]
	return r, ok
}

func (c *checkpoints) done(key string) bool {
	r, ok := c.get(key)
	return ok && r.Status == checkpoint.Done
}

// mark records a unit's state; durable ones survive a machine crash.
func (c *checkpoints) mark(ctx context.Context, r checkpoint.Record, durable bool) error {
	r.Updated = time.Now().UTC()
	c.mu.Lock()
	c.recs[r.Key] = r
	c.mu.Unlock()
	if c.store == nil {
		return nil
	}
	if err := c.store.Put(ctx, r, durable); err != nil {
		return fmt.Errorf("record checkpoint %s: %w", r.Key, err)
	}
	return nil
}

// set records a status; not durable: losing it only repeats work.
func (c *checkpoints) set(ctx context.Context, key string, s checkpoint.Status) error {
	return c.mark(ctx, checkpoint.Record{Key: key, Status: s}, false)
}

// started reports whether an earlier run got past preflight.
func (c *checkpoints) started() bool {
	_, ok := c.get(keyMeta)
	return ok
}

func (c *checkpoints) clear(ctx context.Context) error {
	c.mu.Lock()
	c.recs = map[string]checkpoint.Record{}
	c.mu.Unlock()
	if c.store == nil {
		return nil
	}
	return c.store.Clear(ctx)
}

// Checkpoint keys. Names are the source's; none holds a secret.
const keyMeta = "meta"
const keyRoles = "roles"

func keyDB(db, what string) string { return "db/" + db + "/" + what }

func keyPart(db string, t catalog.Name, p *part) string {
	if p.whole {
		return keyDB(db, "table/"+t.String()+"/whole")
	}
	return keyDB(db, fmt.Sprintf("table/%s/pages/%d-%d", t, p.lo, p.hi))
}

func keySplit(db string, t catalog.Name) string { return keyDB(db, "table/"+t.String()+"/split") }

func keyIndex(db string, ix catalog.Name) string { return keyDB(db, "index/"+ix.String()) }

func keyAnalyze(db string, t catalog.Name) string { return keyDB(db, "analyze/"+t.String()) }

func keyConstraints(db string, t catalog.Name) string {
	return keyDB(db, "constraints/"+t.String())
}

func keyBlobs(db string, first, last uint32) string {
	return keyDB(db, fmt.Sprintf("large-objects/%d-%d", first, last))
}
