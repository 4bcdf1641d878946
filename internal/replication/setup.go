package replication

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/problem"
)

// CheckTarget verifies the target role may create subscriptions: a
// superuser; on RDS and Aurora a member of rds_superuser, on every version
// (their own hook allows it); from PostgreSQL 16 on a member of
// pg_create_subscription that may also CREATE in the database (both are
// required).
func CheckTarget(ctx context.Context, dst *pgx.Conn, di *catalog.Server) error {
	return CheckSubscriber(ctx, dst, di, "target")
}

// CheckSubscriber is CheckTarget for the side named side (a cut-over's
// replication back subscribes on the source).
func CheckSubscriber(ctx context.Context, dst *pgx.Conn, di *catalog.Server, side string) error {
	if di.Superuser {
		return nil
	}
	var rds, predefined, create bool
	if err := dst.QueryRow(ctx, `SELECT
	  EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = 'rds_superuser' AND pg_catalog.pg_has_role(current_user, r.oid, 'MEMBER')),
	  EXISTS (SELECT 1 FROM pg_catalog.pg_roles r WHERE r.rolname = 'pg_create_subscription' AND pg_catalog.pg_has_role(current_user, r.oid, 'USAGE')),
	  pg_catalog.has_database_privilege(current_database(), 'CREATE')`).Scan(&rds, &predefined, &create); err != nil {
		return err
	}
	switch {
	case rds:
		return nil
	case di.Version.Major >= 16 && predefined && create:
		return nil
	case di.Version.Major >= 16 && predefined:
		db := pgx.Identifier{dst.Config().Database}.Sanitize()
		return &problem.Problem{Msg: fmt.Sprintf("%s role %s is in pg_create_subscription but may not CREATE in database %s, which PostgreSQL 16 also requires", side, di.User, dst.Config().Database),
			Fix: fmt.Sprintf("GRANT CREATE ON DATABASE %s TO %s (as the database's owner)", db, pgx.Identifier{di.User}.Sanitize())}
	}
	fix := "connect as a superuser (on RDS and Aurora: a member of rds_superuser)"
	if di.Version.Major >= 16 {
		fix += ", or GRANT pg_create_subscription TO the role, with CREATE on the database"
	}
	return &problem.Problem{Msg: fmt.Sprintf("%s role %s may not create subscriptions", side, di.User), Fix: fix}
}

// Options of a standalone set-up or stop.
type Options struct {
	Source, Target *conninfo.Endpoint
	// SourceForTarget is how the target reaches the source (nil: Source).
	SourceForTarget *conninfo.Endpoint
	Filters         *filter.Rules
	Force           bool // recreate what exists
	// AcceptGap starts replication without comparing the target with the
	// source first (what changed since the copy is then not on the target).
	AcceptGap           bool
	ReplicaIdentityFull bool
	// DDL: whether schema changes on the source are replicated.
	DDL DDLMode
	// Sequences copies sequence values (CopySequences does it).
	Sequences     bool
	CopySequences func(ctx context.Context, src, dst *conninfo.Endpoint) (int, error)
	// Log reports what happens, database by database.
	Log func(db, msg string)
}

type session struct {
	o      Options
	si, di *catalog.Server
	// captureDDL: schema changes are replicated (DDL decided for the source).
	captureDDL bool
}

func open(ctx context.Context, o Options) (*session, error) {
	s := &session{o: o}
	for _, side := range []struct {
		ep  *conninfo.Endpoint
		out **catalog.Server
	}{{o.Source, &s.si}, {o.Target, &s.di}} {
		conn, err := side.ep.Connect(ctx)
		if err != nil {
			return nil, err
		}
		*side.out, err = catalog.ReadServer(ctx, conn)
		if err == nil && side.ep == o.Target {
			err = CheckTarget(ctx, conn, s.di)
		}
		conn.Close(ctx)
		if err != nil {
			return nil, err
		}
	}
	if catalog.SameServer(s.si, s.di) {
		return nil, &problem.Problem{Msg: "source and target are the same server", Fix: "point --target at another cluster"}
	}
	return s, nil
}

// databases selected on the source, each required on the target. Filter
// patterns that match nothing are refused first (strict names).
func (s *session) databases(ctx context.Context, requireTarget bool) ([]string, error) {
	warnings, err := s.o.Filters.CheckDatabases(s.si.Databases)
	if err != nil {
		return nil, err
	}
	onTarget := map[string]bool{}
	for _, d := range s.di.Databases {
		onTarget[d] = true
	}
	var out []string
	for _, d := range s.si.Databases {
		if s.o.Filters.Database(d) {
			out = append(out, d)
		}
	}
	if len(out) == 0 {
		return nil, &problem.Problem{Msg: "no database selected", Fix: "every database except postgres is selected by default; name postgres in --include-databases to use it"}
	}
	more, err := catalog.CheckFilters(ctx, s.o.Source, out, s.o.Filters)
	if err != nil {
		return nil, err
	}
	for _, d := range out {
		if requireTarget && !onTarget[d] {
			return nil, &problem.Problem{Msg: fmt.Sprintf("database %s is not on the target", d),
				Fix: "copy it first: replicator init --sync copies and starts replication without a gap"}
		}
	}
	for _, w := range append(warnings, more...) {
		if s.o.Log != nil {
			s.o.Log("", "warning: "+w)
		}
	}
	return out, nil
}

// Setup starts replication for every selected database already on the target.
// Replication starts at the source's current position; what the source changed
// since the target was copied is found and copied again first (closeGap),
// unless AcceptGap.
func Setup(ctx context.Context, o Options) error {
	s, err := open(ctx, o)
	if err != nil {
		return err
	}
	if err := CheckSource(s.si); err != nil {
		return err
	}
	capture, warning, err := o.DDL.Decide(s.si)
	if err != nil {
		return err
	}
	s.captureDDL = capture
	dbs, err := s.databases(ctx, true)
	if err != nil {
		return err
	}
	if warning != "" && s.o.Log != nil {
		s.o.Log("", "warning: "+warning)
	}
	for _, db := range dbs {
		if err := s.setupDB(ctx, db); err != nil {
			return fmt.Errorf("database %s: %w", db, err)
		}
	}
	return nil
}

// analyzeJoined analyzes the tables that joined in an earlier run and whose
// copy has finished since.
func (s *session) analyzeJoined(ctx context.Context, db string, dst *pgx.Conn) error {
	analyzed, warnings, err := AnalyzeJoined(ctx, dst, NamesFor(db).Subscription)
	for _, w := range warnings {
		s.o.Log(db, "warning: "+w)
	}
	if len(analyzed) > 0 {
		s.o.Log(db, fmt.Sprintf("analyzed %s: the subscription copied their rows since they joined", strings.Join(analyzed, ", ")))
	}
	return err
}

func (s *session) setupDB(ctx context.Context, db string) error {
	src, dst, err := connectBoth(ctx, s.o.Source, s.o.Target, db)
	if err != nil {
		return err
	}
	defer src.Close(context.Background())
	defer dst.Close(context.Background())
	st, err := ReadStatus(ctx, src, dst, db)
	if err != nil {
		return err
	}
	n := NamesFor(db)
	if st.Publication && st.Slot != nil && st.Subscription != nil {
		if !s.o.Force && st.CaptureOutdated {
			if err := UpgradeCapture(ctx, src, dst, n.Publication, !s.o.Filters.LeavesOutTables()); err != nil {
				return fmt.Errorf("upgrade the schema change capture: %w", err)
			}
			st.CaptureOutdated = false
			s.o.Log(db, "upgraded the schema change capture an older replicator installed (a role that may create objects could take over its functions)")
		}
		if !s.o.Force {
			if err := s.analyzeJoined(ctx, db, dst); err != nil {
				return err
			}
			joined, err := JoinNewTables(ctx, src, dst, st)
			if err != nil {
				return err
			}
			if len(joined) > 0 {
				s.o.Log(db, fmt.Sprintf("new table(s) %s joined the subscription: the target copies their rows once, then applies their changes", strings.Join(joined, ", ")))
			} else {
				s.o.Log(db, "already replicating (subscription "+n.Subscription+", slot "+n.Slot+"): nothing to do; --force recreates it")
			}
			return s.sequences(ctx, db)
		}
		s.o.Log(db, "--force: recreating the replication")
	}
	if st.Publication || st.Slot != nil || st.Subscription != nil {
		if err := s.stopDB(ctx, db, src, dst, false); err != nil {
			return err
		}
	}
	warnings, err := Prepare(ctx, src, db, s.o.Filters, s.o.ReplicaIdentityFull)
	for _, w := range warnings {
		s.o.Log(db, "warning: "+w)
	}
	if err != nil {
		return err
	}
	if s.captureDDL {
		// Before the slot: each later change is in the queue.
		if err := InstallCapture(ctx, src, n.Publication, !s.o.Filters.LeavesOutTables()); err != nil {
			return err
		}
		if err := InstallApply(ctx, dst); err != nil {
			return err
		}
	}
	slot, err := CreateSlot(ctx, s.o.Source.MustWithDatabase(db), src, n.Slot)
	if err != nil {
		return err
	}
	undo := func() {
		// Only what this run created: the target's rows are left as they are.
		bg := context.Background()
		_ = DropSlot(bg, src, n.Slot)
		_ = DropPublication(bg, src, n.Publication)
		_, _ = RemoveCapture(bg, src)
		_, _ = RemoveApply(bg, dst)
	}
	// The slot's snapshot lives while its session is open and idle.
	err = s.closeGap(ctx, db, src, dst, slot.Snapshot)
	slot.Close()
	if err != nil {
		undo()
		return err
	}
	via := s.o.SourceForTarget
	if via == nil {
		via = s.o.Source
	}
	if err := CreateSubscription(ctx, dst, n, via.MustWithDatabase(db)); err != nil {
		undo()
		return err
	}
	s.o.Log(db, fmt.Sprintf("replicating from LSN %s: publication %s and slot %s on the source, subscription %s on the target", slot.LSN, n.Publication, n.Slot, n.Subscription))
	return s.sequences(ctx, db)
}

func (s *session) sequences(ctx context.Context, db string) error {
	if !s.o.Sequences {
		return nil
	}
	n, err := s.o.CopySequences(ctx, s.o.Source.MustWithDatabase(db), s.o.Target.MustWithDatabase(db))
	if err != nil {
		return err
	}
	s.o.Log(db, fmt.Sprintf("%d sequence(s) set to the source's current values", n))
	return nil
}

// Stop removes the subscription, the slot and the publication of every selected
// database, leaving no slot to fill the source's disk.
func Stop(ctx context.Context, o Options) error {
	s, err := open(ctx, o)
	if err != nil {
		return err
	}
	dbs, err := s.databases(ctx, false)
	if err != nil {
		return err
	}
	onTarget := map[string]bool{}
	for _, d := range s.di.Databases {
		onTarget[d] = true
	}
	for _, db := range dbs {
		srcConn, err := o.Source.MustWithDatabase(db).Connect(ctx)
		if err != nil {
			return err
		}
		var dstConn *pgx.Conn
		if onTarget[db] {
			if dstConn, err = o.Target.MustWithDatabase(db).Connect(ctx); err != nil {
				srcConn.Close(ctx)
				return err
			}
		}
		err = s.stopDB(ctx, db, srcConn, dstConn, true)
		srcConn.Close(ctx)
		if dstConn != nil {
			dstConn.Close(ctx)
		}
		if err != nil {
			return fmt.Errorf("database %s: %w", db, err)
		}
	}
	return nil
}

func (s *session) stopDB(ctx context.Context, db string, src, dst *pgx.Conn, cutover bool) error {
	n := NamesFor(db)
	if cutover && dst != nil {
		if err := s.drainBeforeStop(ctx, db, src, dst, n); err != nil {
			return err
		}
		if err := s.sequences(ctx, db); err != nil {
			return err
		}
	}
	var dropped []string
	if dst != nil {
		ok, err := DropSubscription(ctx, dst, n.Subscription)
		if err != nil {
			return err
		}
		if ok {
			dropped = append(dropped, "subscription "+n.Subscription)
		}
		if ok, err := RemoveApply(ctx, dst); err != nil {
			return err
		} else if ok {
			defer func() { s.o.Log(db, "dropped the target's schema change queue") }()
		}
	}
	var hadSlot bool
	if err := src.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_replication_slots WHERE slot_name = $1)", n.Slot).Scan(&hadSlot); err != nil {
		return err
	}
	if err := DropSlot(ctx, src, n.Slot); err != nil {
		return err
	}
	if hadSlot {
		dropped = append(dropped, "slot "+n.Slot)
	}
	var hadPub bool
	if err := src.QueryRow(ctx, "SELECT EXISTS (SELECT 1 FROM pg_catalog.pg_publication WHERE pubname = $1)", n.Publication).Scan(&hadPub); err != nil {
		return err
	}
	if err := DropPublication(ctx, src, n.Publication); err != nil {
		return err
	}
	if hadPub {
		dropped = append(dropped, "publication "+n.Publication)
	}
	if ok, err := RemoveCapture(ctx, src); err != nil {
		return err
	} else if ok {
		defer func() { s.o.Log(db, "dropped the source's schema change capture (event triggers and queue)") }()
	}
	if len(dropped) == 0 {
		s.o.Log(db, "no replication to stop")
	} else {
		s.o.Log(db, "dropped "+joinAnd(dropped))
	}
	return nil
}

// StopDrainWait bounds how long sync --stop waits for the target to apply
// what the source committed before it drops the subscription.
var StopDrainWait = 60 * time.Second

// drainBeforeStop waits until the target has applied everything the source
// had committed when the stop began; without that, dropping the
// subscription would lose committed changes without a word. --force drops
// it anyway, and says what that loses.
func (s *session) drainBeforeStop(ctx context.Context, db string, src, dst *pgx.Conn, n Names) error {
	exists, err := SubscriptionExists(ctx, dst, n.Subscription)
	if err != nil || !exists {
		return err
	}
	var active *bool
	err = src.QueryRow(ctx, "SELECT active FROM pg_catalog.pg_replication_slots WHERE slot_name = $1", n.Slot).Scan(&active)
	if errors.Is(err, pgx.ErrNoRows) {
		return nil
	}
	if err != nil {
		return err
	}
	lsn, err := CommittedLSN(ctx, src)
	if err != nil {
		return err
	}
	wait := StopDrainWait
	if active == nil || !*active {
		// Nobody streams from the slot: what it holds will not arrive.
		wait = 2 * time.Second
	}
	ok, took, err := Applied(ctx, src, dst, n, lsn, wait)
	if err != nil {
		return err
	}
	if ok {
		s.o.Log(db, fmt.Sprintf("the target applied everything the source had committed (in %s)", took.Round(time.Millisecond)))
		return nil
	}
	if s.o.Force {
		s.o.Log(db, fmt.Sprintf("warning: --force: dropping the subscription although the target has not applied everything up to the source's position %s: those changes are not on the target", lsn))
		return nil
	}
	return &problem.Problem{Msg: fmt.Sprintf("database %s: the target has not applied everything the source committed (not up to position %s after %s), so stopping now would lose those changes; nothing was dropped", db, lsn, took.Round(time.Second)),
		Fix: "see replicator status for why it lags, and run --stop again once it says caught up; to switch to the target, use replicator cutover; --force stops anyway and loses them"}
}

func joinAnd(s []string) string {
	if len(s) < 2 {
		return strings.Join(s, "")
	}
	return strings.Join(s[:len(s)-1], ", ") + " and " + s[len(s)-1]
}
