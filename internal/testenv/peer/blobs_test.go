package peer_test

import (
	"context"
	"crypto/md5"
	"encoding/hex"
	"fmt"
	"math/rand/v2"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/jackc/pgx/v5"
)

// blob is a large object written on the source, and what it holds.
type blob struct {
	oid  uint32
	md5  string
	size int
}

// blobContent is n bytes of deterministic noise (incompressible, as
// pgcopydb's photographs are).
func blobContent(seed uint64, n int) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	b := make([]byte, n)
	for i := 0; i < n; i += 8 {
		v := r.Uint64()
		for j := 0; j < 8 && i+j < n; j++ {
			b[i+j] = byte(v >> (8 * j))
		}
	}
	return b
}

// addBlob creates one large object owned by blob_owner and its row in
// images, in one transaction.
func addBlob(ctx context.Context, c *pgx.Conn, name string, content []byte) (blob, error) {
	tx, err := c.Begin(ctx)
	if err != nil {
		return blob{}, err
	}
	defer tx.Rollback(ctx)
	var oid uint32
	if _, err := tx.Exec(ctx, "SET LOCAL ROLE blob_owner"); err != nil {
		return blob{}, err
	}
	if err := tx.QueryRow(ctx, "SELECT lo_from_bytea(0, $1::bytea)", content).Scan(&oid); err != nil {
		return blob{}, err
	}
	if _, err := tx.Exec(ctx, "INSERT INTO images (name, lo) VALUES ($1, $2)", name, oid); err != nil {
		return blob{}, err
	}
	sum := md5.Sum(content)
	return blob{oid: oid, md5: hex.EncodeToString(sum[:]), size: len(content)}, tx.Commit(ctx)
}

// pgcopydb tests/blobs: large objects (pgcopydb imports six photographs;
// here six objects of noise, from empty to 2.5 MB, across the copy's 1 MB
// chunks), owned by a role without SUPERUSER, one with a grant and a
// comment. pgcopydb's test adds more after its snapshot and checks that
// they are not copied; here they are added while `replicator init` runs,
// one per transaction with their row in images. The target must hold
// exactly the large objects of one snapshot: every one committed before
// the copy started, whole, with its owner, grants and comment; of those
// added meanwhile, the ones committed before the snapshot (a prefix of the
// order they were added in), whole; and images' rows of the same snapshot.
func TestPeerBlobs(t *testing.T) {
	const db = "blobs"
	cleanup(t, []string{db}, "blob_owner", "blob_reader")
	sql(t, pair.Source, "postgres", "CREATE ROLE blob_owner LOGIN; CREATE ROLE blob_reader")
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	sql(t, pair.Source, db, `CREATE TABLE images (id serial PRIMARY KEY, name text NOT NULL, lo oid NOT NULL);
		GRANT INSERT, SELECT ON images TO blob_owner; GRANT USAGE ON SEQUENCE images_id_seq TO blob_owner`)

	ctx := context.Background()
	src, err := pair.Source.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer src.Close(ctx)
	var before []blob
	for i, size := range []int{0, 1, 100_000, 1 << 20, 1<<20 + 1, 2_500_000} {
		b, err := addBlob(ctx, src, fmt.Sprintf("image-%d", i), blobContent(uint64(i), size))
		if err != nil {
			t.Fatal(err)
		}
		before = append(before, b)
	}
	sql(t, pair.Source, db, fmt.Sprintf("GRANT SELECT ON LARGE OBJECT %d TO blob_reader; COMMENT ON LARGE OBJECT %d IS 'the 1 MB one'", before[3].oid, before[3].oid))

	// More large objects while the copy runs, until it ends.
	var (
		mu      sync.Mutex
		added   []blob
		addErr  error
		stop    = make(chan struct{})
		stopped = make(chan struct{})
	)
	adder, err := pair.Source.Connect(ctx, db)
	if err != nil {
		t.Fatal(err)
	}
	defer adder.Close(ctx)
	wait := start(t, append(append([]string{"init"}, conn()...), "--include-databases", db)...)
	go func() {
		defer close(stopped)
		for i := 0; ; i++ {
			select {
			case <-stop:
				return
			default:
			}
			b, err := addBlob(ctx, adder, fmt.Sprintf("during-%d", i), blobContent(uint64(1000+i), 64<<10+i*997))
			mu.Lock()
			if err != nil {
				addErr = err
				mu.Unlock()
				return
			}
			added = append(added, b)
			mu.Unlock()
			time.Sleep(20 * time.Millisecond)
		}
	}()
	r := wait()
	close(stop)
	<-stopped
	if addErr != nil {
		t.Fatalf("adding large objects during the copy: %v", addErr)
	}
	mustSucceed(t, "init", r)
	if len(added) == 0 {
		t.Fatal("no large object was added while the copy ran")
	}

	onTarget := map[uint32]bool{}
	for _, o := range query(t, pair.Target, db, "SELECT oid FROM pg_largeobject_metadata") {
		n, _ := strconv.ParseUint(o, 10, 32)
		onTarget[uint32(n)] = true
	}
	// Each large object there is whole: its bytes, and its pages as
	// pgcopydb's test counts them.
	check := func(b blob, what string) {
		t.Helper()
		got := one(t, pair.Target, db, "SELECT md5(lo_get($1)) || ' ' || length(lo_get($1))", b.oid)
		if want := fmt.Sprintf("%s %d", b.md5, b.size); got != want {
			t.Errorf("%s large object %d: %s on the target, want %s (md5, size)", what, b.oid, got, want)
		}
	}
	for _, b := range before {
		if !onTarget[b.oid] {
			t.Errorf("large object %d (committed before the copy) is not on the target", b.oid)
			continue
		}
		check(b, "a")
	}
	// Of the ones added during the copy: those of the snapshot, and no
	// other (a later one without an earlier one is not a snapshot).
	copied := 0
	for i, b := range added {
		if onTarget[b.oid] {
			if copied != i {
				t.Errorf("large object %d (added %dth) is on the target, the one added before it (%d) is not", b.oid, i, added[i-1].oid)
			}
			copied++
			check(b, "an added")
		}
	}
	if copied == len(added) {
		t.Errorf("all %d large objects added during the copy are on the target, even those added after it ended", len(added))
	}
	t.Logf("%d large objects added during the copy, %d of them before its snapshot", len(added), copied)
	if want := len(before) + copied; len(onTarget) != want {
		t.Errorf("%d large objects on the target, want %d", len(onTarget), want)
	}
	// images' rows come from the same snapshot: they name exactly the
	// large objects there.
	var wantRows []string
	for _, b := range append(slices.Clone(before), added[:copied]...) {
		wantRows = append(wantRows, strconv.FormatUint(uint64(b.oid), 10))
	}
	expect(t, pair.Target, db, "SELECT lo FROM images ORDER BY id", wantRows...)
	// Owners, grants and comments, and pg_largeobject's pages, as on the
	// source.
	var oids []string
	for o := range onTarget {
		oids = append(oids, strconv.FormatUint(uint64(o), 10))
	}
	in := "(" + strings.Join(oids, ",") + ")"
	same(t, db, "SELECT oid, lomowner::regrole::text, lomacl::text, obj_description(oid, 'pg_largeobject') FROM pg_largeobject_metadata WHERE oid IN "+in+" ORDER BY oid")
	same(t, db, "SELECT loid, count(data) AS parts, sum(length(data)) AS size FROM pg_largeobject WHERE loid IN "+in+" GROUP BY loid ORDER BY loid")
	expect(t, pair.Target, db, "SELECT DISTINCT lomowner::regrole::text FROM pg_largeobject_metadata", "blob_owner")
}
