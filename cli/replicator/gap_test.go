package main_test

import (
	"reflect"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/testenv/pgtest"
)

// init, then changes on the source, then sync (issue 21, 5): the changes
// committed between the copy and the sync reach the target. sync compares
// every table at its new slot's snapshot and copies the changed ones again,
// under the target's foreign keys and triggers (replica mode keeps them
// from firing, as for the subscription's own changes).
func TestSyncAfterCopyLosesNothing(t *testing.T) {
	t.Parallel()
	const db = "gapdb"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	conn := syncedDB(t, db)
	pgtest.Exec(t, pair.Source, db, `
CREATE TABLE parent (id int PRIMARY KEY, v text);
CREATE TABLE child (id int PRIMARY KEY, parent int REFERENCES parent ON DELETE CASCADE, v text);
CREATE TABLE quiet (id int PRIMARY KEY, v text);
CREATE TABLE audit (at timestamptz DEFAULT now(), what text);
CREATE FUNCTION audit() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN INSERT INTO audit (what) VALUES (TG_OP); RETURN NULL; END $$;
CREATE TRIGGER child_audit AFTER INSERT OR DELETE ON child FOR EACH ROW EXECUTE FUNCTION audit();
INSERT INTO parent SELECT g, 'p' || g FROM generate_series(1, 100) g;
INSERT INTO child SELECT g, g, 'c' || g FROM generate_series(1, 100) g;
INSERT INTO quiet SELECT g, 'q' FROM generate_series(1, 50) g;
TRUNCATE audit;`)
	r := replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("init: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The gap: the application goes on writing before sync.
	pgtest.Exec(t, pair.Source, db, `SET session_replication_role = replica;
UPDATE parent SET v = 'changed' WHERE id = 7;
INSERT INTO child VALUES (101, 7, 'new');
DELETE FROM child WHERE id = 3;`)

	r = replicator(t, nil, append([]string{"sync", "--replica-identity-full"}, conn...)...)
	if r.code != 0 {
		t.Fatalf("sync: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stdout, "2 of 4 table(s) changed since the copy") || !strings.Contains(r.stdout, "public.child: 100 rows") {
		t.Errorf("sync should say which tables it copied again:\n%s", r.stdout)
	}
	if strings.Contains(r.stdout, "public.quiet") {
		t.Errorf("an unchanged table was copied again:\n%s", r.stdout)
	}
	pgtest.Exec(t, pair.Source, db, "INSERT INTO quiet VALUES (51, 'after')")
	catchUp(t, db)
	src, dst := pgtest.TableHashes(t, pair.Source, db), pgtest.TableHashes(t, pair.Target, db)
	if !reflect.DeepEqual(src, dst) {
		t.Fatalf("the target lost the changes made between the copy and the sync:\nsource %v\ntarget %v", src, dst)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM audit"); got[0] != "0" {
		t.Errorf("the target's trigger fired on the copy: %v rows in audit", got)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(*) FROM child"); got[0] != "100" {
		t.Errorf("child: %v rows (ON DELETE CASCADE fired?)", got)
	}
}

// --accept-gap starts without looking, and says what that means; a source
// whose tables changed shape since the copy is refused before anything
// stays behind on either side.
func TestSyncGapRefusalsAndAcceptGap(t *testing.T) {
	t.Parallel()
	const db = "gapshape"
	pgtest.Exec(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	conn := syncedDB(t, db)
	pgtest.Exec(t, pair.Source, db, "CREATE TABLE t (id int PRIMARY KEY, v text); INSERT INTO t VALUES (1, 'a')")
	if r := replicator(t, nil, append([]string{"init", "--no-roles"}, conn...)...); r.code != 0 {
		t.Fatalf("init: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	pgtest.Exec(t, pair.Source, db, "ALTER TABLE t ADD COLUMN extra int; UPDATE t SET extra = 1")
	r := replicator(t, nil, append([]string{"sync"}, conn...)...)
	assertOneLineError(t, r, "changed shape since the copy")
	// Which database: a sync of many says.
	assertOneLineError(t, r, "error: database "+db+": ")
	if !strings.Contains(r.stderr, "init --sync --drop-existing") || !strings.Contains(r.stderr, `ADD COLUMN "extra" integer on the target`) {
		t.Errorf("the refusal should give the fixes: %s", r.stderr)
	}
	if got := replicationObjects(t, db); !reflect.DeepEqual(got, []string{"0", "0", "0"}) {
		t.Errorf("a refused sync left slots, publications, subscriptions: %v", got)
	}
	if got := pgtest.Query(t, pair.Source, db, "SELECT count(*) FROM pg_event_trigger WHERE evtname LIKE 'replicator%'"); got[0] != "0" {
		t.Errorf("a refused sync left its event triggers: %v", got)
	}

	pgtest.Exec(t, pair.Target, db, "ALTER TABLE t ADD COLUMN extra int")
	r = replicator(t, nil, append([]string{"sync", "--accept-gap"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "--accept-gap: changes the source committed between the copy and now are not on the target") {
		t.Fatalf("sync --accept-gap: %d\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if got := pgtest.Query(t, pair.Target, db, "SELECT count(extra) FROM t"); got[0] != "0" {
		t.Errorf("--accept-gap copied: %v", got)
	}
	r = replicator(t, nil, append([]string{"sync", "--stop", "--accept-gap"}, conn...)...)
	assertOneLineError(t, r, "--accept-gap cannot be used with --stop")
	r = replicator(t, nil, append([]string{"sync", "--state-dir", t.TempDir()}, conn...)...)
	assertOneLineError(t, r, "--state-dir has no effect on sync")
}
