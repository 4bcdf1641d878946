package cutover

import (
	"context"
	"errors"
	"fmt"
	"sort"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/replication"
)

// workerRestart is how long a missing apply worker is waited for.
const workerRestart = 8 * time.Second

// lagReadings is how many consecutive catch-up readings must each come in
// under --max-lag.
const lagReadings = 3

// guardrails checks, without changing anything, that the cut-over can
// succeed, and writes the plan. Every failing guardrail is named with its fix.
func (r *run) guardrails(ctx context.Context) error {
	var fails []string
	fail := func(db, format string, args ...any) {
		line := fmt.Sprintf(format, args...)
		if db != "" {
			line = db + ": " + line
		}
		fails = append(fails, line)
		r.o.Log(Guardrails, "", "failed: "+line)
	}
	if r.o.Reverse {
		r.reverseServers(fail)
	}
	for _, d := range r.dbs {
		if r.o.Reverse {
			// Found at the switch, with the up side fenced, it would fail
			// every rerun the same way.
			var p *problem.Problem
			if err := replication.CheckSubscriber(ctx, d.up, r.up.srv, r.up.role); errors.As(err, &p) {
				fail(d.db, "--reverse subscribes on the %s, where %v", r.up.role, err)
			} else if err != nil {
				return fmt.Errorf("database %s: %w", d.db, err)
			}
		}
		if err := r.replicating(ctx, d, fail); err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if err := r.sequencesReadable(ctx, d, fail); err != nil {
			return fmt.Errorf("database %s: %w", d.db, err)
		}
		if !r.o.FenceNone {
			if err := r.fenceable(ctx, d, fail); err != nil {
				return fmt.Errorf("database %s: %w", d.db, err)
			}
		}
		if r.o.Reverse && len(d.tables) > 0 {
			// The fix is cutover's: it has no --replica-identity-full.
			var p *problem.Problem
			if err := replication.CheckTables(ctx, d.down, d.keyed(), r.down.role); errors.As(err, &p) && len(p.Statements) > 0 {
				fail(d.db, "--reverse publishes the tables on the %s, where %s; fix: add primary keys, or run there: %s", r.down.role, p.Msg, strings.Join(p.Statements, "; "))
			} else if err != nil {
				fail(d.db, "--reverse publishes the tables on the %s, where %v", r.down.role, err)
			}
		}
	}
	if len(fails) == 0 {
		for _, d := range r.dbs {
			if err := r.lagUnder(ctx, d, fail); err != nil {
				return fmt.Errorf("database %s: %w", d.db, err)
			}
		}
	}
	if len(fails) > 0 {
		return &problem.Problem{Msg: fmt.Sprintf("%d guardrail(s) failed, nothing was changed: %s", len(fails), strings.Join(fails, "; "))}
	}
	r.plan()
	return nil
}

// replicating: the database streams up → down with nothing a person must
// look at (drift, a schema change not replayed or refused, new tables, a
// table without a key), and every table has finished its initial copy.
func (r *run) replicating(ctx context.Context, d *dbRun, fail func(db, format string, args ...any)) error {
	read := replication.ReadStatus
	if r.o.Rollback {
		read = replication.ReadReverseStatus
	}
	st, err := read(ctx, d.up, d.down, d.db)
	// An apply worker restarts a few seconds after an error or a change of
	// its subscription (wal_retrieve_retry_interval): give it that long.
	for wait := time.Now().Add(workerRestart); err == nil && st.State == replication.StateNoWorker && time.Now().Before(wait); {
		time.Sleep(200 * time.Millisecond)
		st, err = read(ctx, d.up, d.down, d.db)
	}
	if err != nil {
		return err
	}
	switch {
	case st.Slot == nil && st.Subscription == nil && !st.Publication && r.o.Rollback:
		fail(d.db, "nothing replicates from the target back to the source; fix: a rollback needs the replication that replicator cutover --reverse sets up at the switch")
		return nil
	case st.Slot == nil && st.Subscription == nil && !st.Publication:
		fail(d.db, "not replicating; fix: replicator sync (or init --sync) first, and wait until status says caught up")
		return nil
	case st.State != "streaming" && st.State != "catching up":
		fail(d.db, "replication is %s; fix: see replicator status", st.State)
	}
	var copying []string
	for _, t := range st.Tables {
		if t.State != "ready" {
			copying = append(copying, t.Table+" ("+t.State+")")
		}
	}
	if len(copying) > 0 {
		fail(d.db, "%d table(s) have not finished their initial copy: %s; fix: wait until status shows them ready", len(copying), problem.ListSome(copying, 5))
	}
	for _, p := range st.Problems(0) {
		fail("", "%s", p)
	}
	d.tables, err = publishedTables(ctx, d.up, d.n.Publication)
	return err
}

// publishedTables are the tables of the publication, replicator's own
// schema change queue left out.
func publishedTables(ctx context.Context, conn *pgx.Conn, pub string) ([]catalog.Name, error) {
	rows, err := conn.Query(ctx, `SELECT schemaname::text, tablename::text FROM pg_catalog.pg_publication_tables
	  WHERE pubname = $1 AND schemaname <> 'replicator_ddl' ORDER BY 1, 2`, pub)
	if err != nil {
		return nil, fmt.Errorf("published tables: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (catalog.Name, error) {
		var n catalog.Name
		err := row.Scan(&n.Schema, &n.Name)
		return n, err
	})
}

func (d *dbRun) keyed() []replication.Table {
	out := make([]replication.Table, len(d.tables))
	for i, t := range d.tables {
		out[i] = replication.Table{Name: t}
	}
	return out
}

// sequencesReadable: every sequence can be read on the up side and set on
// the down side.
func (r *run) sequencesReadable(ctx context.Context, d *dbRun, fail func(db, format string, args ...any)) error {
	seqs, err := catalog.Sequences(ctx, d.up)
	if err != nil {
		fail(d.db, "the %s's %v", r.up.role, err)
		return nil
	}
	names := make([]string, len(seqs))
	for i, s := range seqs {
		names[i] = s.Name.Quoted()
	}
	var denied []string
	rows, err := d.down.Query(ctx, `SELECT n FROM unnest($1::text[]) n
	  WHERE pg_catalog.to_regclass(n) IS NOT NULL AND NOT pg_catalog.has_sequence_privilege(pg_catalog.to_regclass(n), 'UPDATE')`, names)
	if err != nil {
		return err
	}
	if denied, err = pgx.CollectRows(rows, pgx.RowTo[string]); err != nil {
		return err
	}
	if len(denied) > 0 {
		fail(d.db, "the %s role may not set %d sequence(s): %s; fix: GRANT UPDATE ON SEQUENCE %s TO %s", r.down.role, len(denied),
			problem.ListSome(denied, 5), strings.Join(denied, ", "), pgx.Identifier{r.down.srv.User}.Sanitize())
	}
	return nil
}

// fenceable: the up side's role may set the database read-only and end
// every other session, no role overrides the database's default, and the
// database is not read-only already.
func (r *run) fenceable(ctx context.Context, d *dbRun, fail func(db, format string, args ...any)) error {
	db := pgx.Identifier{d.db}.Sanitize()
	var owner bool
	if err := d.up.QueryRow(ctx, `SELECT r.rolsuper OR pg_catalog.pg_has_role(d.datdba, 'MEMBER')
	  FROM pg_catalog.pg_database d, pg_catalog.pg_roles r WHERE d.datname = pg_catalog.current_database() AND r.rolname = current_user`).Scan(&owner); err != nil {
		return err
	}
	if !owner {
		fail(d.db, "role %s on the %s may not fence the database (ALTER DATABASE needs its owner); fix: connect as the database's owner or a superuser, or stop the application and pass --fence=none",
			r.up.srv.User, r.up.role)
	}
	cur, err := dbSetting(ctx, d.up)
	if err != nil {
		return err
	}
	if cur != nil && isOn(*cur) {
		fail(d.db, "the %s database is read-only by default already (default_transaction_read_only = %s), so a fence would not stop anything; fix: if an earlier cut-over left it so, ALTER DATABASE %s RESET default_transaction_read_only; if the application is stopped, pass --fence=none",
			r.up.role, *cur, db)
	}
	rows, err := d.up.Query(ctx, `SELECT DISTINCT r.rolname::text FROM pg_catalog.pg_db_role_setting s JOIN pg_catalog.pg_roles r ON r.oid = s.setrole,
	  unnest(s.setconfig) c
	  WHERE s.setdatabase IN (0, (SELECT oid FROM pg_catalog.pg_database WHERE datname = pg_catalog.current_database()))
	    AND c LIKE 'default\_transaction\_read\_only=%' ORDER BY 1`)
	if err != nil {
		return err
	}
	overriding, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return err
	}
	if len(overriding) > 0 {
		var fixes []string
		for _, o := range overriding {
			fixes = append(fixes, fmt.Sprintf("ALTER ROLE %s RESET default_transaction_read_only (or ALTER ROLE %s IN DATABASE %s RESET ...)", pgx.Identifier{o}.Sanitize(), pgx.Identifier{o}.Sanitize(), db))
		}
		fail(d.db, "role(s) %s set default_transaction_read_only themselves, so the fence would not bind their sessions; fix: %s", strings.Join(overriding, ", "), strings.Join(fixes, "; "))
	}
	sessions, err := otherSessions(ctx, d.up)
	if err != nil {
		return err
	}
	var cannot []string
	for _, s := range sessions {
		if !s.endable {
			cannot = append(cannot, s.role)
		}
	}
	if len(cannot) > 0 {
		fail(d.db, "role %s may not end the sessions of %s, which the fence must end; fix: GRANT pg_signal_backend TO %s (for roles that are not superusers), or stop those clients first and pass --fence=none",
			r.up.srv.User, strings.Join(uniq(cannot), ", "), pgx.Identifier{r.up.srv.User}.Sanitize())
	}
	d.sessions = sessions
	return nil
}

// lagUnder takes consecutive readings of how long the target takes to
// apply the up side's current position; each must come in under MaxLag.
func (r *run) lagUnder(ctx context.Context, d *dbRun, fail func(db, format string, args ...any)) error {
	var took []string
	for i := 0; i < lagReadings; i++ {
		lsn, err := replication.CommittedLSN(ctx, d.up)
		if err != nil {
			return err
		}
		ok, t, err := replication.Applied(ctx, d.up, d.down, d.n, lsn, r.o.MaxLag)
		if err != nil {
			return err
		}
		if !ok {
			fail(d.db, "the target is more than --max-lag %s behind (it had not applied the %s's position %s after %s); fix: wait until replicator status says caught up, or raise --max-lag",
				r.o.MaxLag, r.up.role, lsn, t.Round(time.Millisecond))
			return nil
		}
		took = append(took, t.Round(time.Millisecond).String())
		time.Sleep(100 * time.Millisecond)
	}
	r.o.Log(Guardrails, d.db, "caught up in "+strings.Join(took, ", "))
	return nil
}

// reverseServers: replication back needs PostgreSQL 16 on both sides (origin
// filtering), and the down side must publish and the up side subscribe.
func (r *run) reverseServers(fail func(db, format string, args ...any)) {
	if u, w := r.up.srv.Version.Major, r.down.srv.Version.Major; u < 16 || w < 16 {
		fail("", "--reverse needs PostgreSQL 16 or later on both sides, for the origin filtering that keeps the two directions from looping (the %s is %d, the %s %d); fix: cut over without --reverse",
			r.up.role, u, r.down.role, w)
		return
	}
	if err := replication.CheckPublisher(r.down.srv, r.down.role); err != nil {
		fail("", "--reverse needs the %s to publish: %v", r.down.role, err)
	}
}

// plan says what the fence, the drain and the switch will do.
func (r *run) plan() {
	add := func(s string) { r.res.Plan = append(r.res.Plan, s) }
	var names []string
	for _, d := range r.dbs {
		names = append(names, d.db)
	}
	if r.o.FenceNone {
		add(fmt.Sprintf("fence: none (--fence=none): the %s's writes must already have stopped; writes that arrive stop the cut-over", r.up.role))
	} else {
		add(fmt.Sprintf("fence: ALTER DATABASE ... SET default_transaction_read_only = on on the %s for %s, after up to %s for open transactions to finish",
			r.up.role, strings.Join(names, ", "), r.o.DrainTimeout))
		for _, d := range r.dbs {
			if len(d.sessions) > 0 {
				add(fmt.Sprintf("fence: end %d session(s) in %s: %s", len(d.sessions), d.db, d.sessionRoles()))
			}
		}
	}
	add(fmt.Sprintf("drain: wait up to %s for the %s to apply everything up to the fence", r.o.SwitchTimeout, r.down.role))
	add(fmt.Sprintf("sequences: copy every sequence's value to the %s (margin %d)", r.down.role, r.o.SequenceMargin))
	check := "row counts of every replicated table on both sides"
	if r.o.Verify {
		check += ", and a content hash of every table"
	}
	add("final check: " + check)
	sw := "switch: stop the replication (subscription, slot, publication, schema change capture)"
	if r.o.Reverse {
		sw += fmt.Sprintf("; replicate from the %s back to the %s from the switch on", r.down.role, r.up.role)
	}
	if r.o.UnfenceSource {
		sw += fmt.Sprintf("; lift the fence on the %s", r.up.role)
	} else {
		sw += fmt.Sprintf("; the %s stays read-only", r.up.role)
	}
	add(sw)
	for _, p := range r.res.Plan {
		r.o.Log(Guardrails, "", "plan: "+p)
	}
}

// session is another client's session in a database the fence covers.
type session struct {
	pid     int32
	role    string
	endable bool
	// inXact: it is in a transaction (the drain timeout lets it finish).
	inXact bool
}

// otherClients selects, in pg_stat_activity a, the client sessions of the
// current database but replicator's own ($1 is its application name). A
// role without pg_read_all_stats sees neither the backend type nor the
// state of other roles' sessions, only their pid, database and role: a
// session whose type is hidden counts unless it streams from a slot (every
// role sees a slot's active_pid); being in a transaction is read from
// pg_locks, which every role may read (a transaction holds its virtual
// transaction id's lock).
const otherClients = `a.datname = pg_catalog.current_database() AND a.pid <> pg_catalog.pg_backend_pid()
	  AND (a.backend_type = 'client backend' OR a.backend_type IS NULL AND a.usesysid IS NOT NULL)
	  AND a.pid NOT IN (SELECT s.active_pid FROM pg_catalog.pg_replication_slots s WHERE s.active_pid IS NOT NULL)
	  AND a.application_name IS DISTINCT FROM $1`

// otherSessions are the client sessions in conn's database, replicator's
// own left out; walsenders and background workers are not client backends.
func otherSessions(ctx context.Context, conn *pgx.Conn) ([]session, error) {
	rows, err := conn.Query(ctx, `SELECT a.pid, COALESCE(r.rolname::text, ''),
	  (SELECT rolsuper FROM pg_catalog.pg_roles WHERE rolname = current_user)
	    OR pg_catalog.pg_has_role(a.usesysid, 'MEMBER')
	    OR (pg_catalog.pg_has_role('pg_signal_backend', 'MEMBER') AND NOT COALESCE(r.rolsuper, false)),
	  EXISTS (SELECT 1 FROM pg_catalog.pg_locks l WHERE l.pid = a.pid AND l.locktype = 'virtualxid')
	FROM pg_catalog.pg_stat_activity a LEFT JOIN pg_catalog.pg_roles r ON r.oid = a.usesysid
	WHERE `+otherClients+`
	ORDER BY 2, 1`, appName)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	return pgx.CollectRows(rows, func(row pgx.CollectableRow) (session, error) {
		var s session
		err := row.Scan(&s.pid, &s.role, &s.endable, &s.inXact)
		return s, err
	})
}

func (d *dbRun) sessionRoles() string {
	count := map[string]int{}
	for _, s := range d.sessions {
		count[s.role]++
	}
	var parts []string
	for role, n := range count {
		parts = append(parts, fmt.Sprintf("%s (%d)", role, n))
	}
	sort.Strings(parts)
	return strings.Join(parts, ", ")
}

func uniq(s []string) []string {
	sort.Strings(s)
	out := s[:0]
	for i, v := range s {
		if i == 0 || v != s[i-1] {
			out = append(out, v)
		}
	}
	return out
}
