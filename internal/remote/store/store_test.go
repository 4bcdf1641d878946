package store_test

import (
	"context"
	"errors"
	"fmt"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/smithy-go/middleware"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

var stack *devstack.Stack

func TestMain(m *testing.M) {
	var err error
	if stack, err = devstack.Start(context.Background(), devstack.Options{ReaperEvery: time.Hour}); err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	code := m.Run()
	stack.Stop()
	os.Exit(code)
}

// cancelTransactions makes the next n TransactWriteItems fail as DynamoDB does
// when another transaction touched the same items (reason TransactionConflict:
// nothing was written). moto cannot produce it: the error is injected.
func cancelTransactions(n int32, code string) (*dynamodb.Client, *atomic.Int32) {
	var left atomic.Int32
	left.Store(n)
	cfg := stack.Clients.AWS.Copy()
	cfg.APIOptions = append(cfg.APIOptions, func(s *middleware.Stack) error {
		return s.Initialize.Add(middleware.InitializeMiddlewareFunc("conflict", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
			if _, ok := in.Parameters.(*dynamodb.TransactWriteItemsInput); ok && left.Add(-1) >= 0 {
				return middleware.InitializeOutput{}, middleware.Metadata{}, &types.TransactionCanceledException{
					Message:             aws.String("Transaction cancelled, please refer cancellation reasons for specific reasons [" + code + ", None, None]"),
					CancellationReasons: []types.CancellationReason{{Code: aws.String(code)}, {Code: aws.String("None")}, {Code: aws.String("None")}}}
			}
			return next.HandleInitialize(ctx, in)
		}), middleware.Before)
	})
	return dynamodb.NewFromConfig(cfg), &left
}

func running(t *testing.T) *remote.Job {
	t.Helper()
	ctx := context.Background()
	now := time.Now().UTC()
	j := &remote.Job{ID: remote.NewID(), Owner: "arn:aws:iam::123456789012:user/alice", Command: "init", Status: remote.Queued, CreatedAt: now, UpdatedAt: now}
	if err := stack.Store().Create(ctx, j, store.Caps{Active: 100, PerOwner: 100}, nil); err != nil {
		t.Fatal(err)
	}
	if _, err := stack.Store().Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Queued}, To: remote.Running, Set: map[string]any{"instance_id": "i-1"}}); err != nil {
		t.Fatal(err)
	}
	return j
}

// A transaction cancelled for a transient reason is tried again: taking it
// for "someone else finished the job" once left a finished job running, and
// the reaper relaunched it (with --drop-existing, a copy from scratch).
func TestTransientCancellationsAreRetried(t *testing.T) {
	ctx := context.Background()
	j := running(t)
	before, _ := stack.Store().ActiveCount(ctx)
	db, left := cancelTransactions(3, "TransactionConflict")
	st := store.New(db, stack.Config.Table)
	got, err := st.Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Succeeded, IfInstance: "i-1"})
	if err != nil || got.Status != remote.Succeeded {
		t.Fatalf("final write after transient cancellations: %v %+v", err, got)
	}
	if left.Load() >= 0 {
		t.Errorf("the injected cancellations were not all met: %d left", left.Load())
	}
	if after, _ := stack.Store().ActiveCount(ctx); after != before-1 {
		t.Errorf("the slot counter went from %d to %d, want one fewer", before, after)
	}
	// Throttling too.
	j = running(t)
	db, _ = cancelTransactions(2, "ThrottlingError")
	if _, err := store.New(db, stack.Config.Table).Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Failed}); err != nil {
		t.Errorf("after throttling: %v", err)
	}
}

// A failed condition is final: the job is not in the state the change needs.
func TestFailedConditionIsAConflict(t *testing.T) {
	ctx := context.Background()
	j := running(t)
	if _, err := stack.Store().Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Succeeded}); err != nil {
		t.Fatal(err)
	}
	_, err := stack.Store().Transition(ctx, j.ID, store.Change{From: remote.Active, To: remote.Failed})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("ending an ended job: %v", err)
	}
	db, _ := cancelTransactions(1, "ConditionalCheckFailed")
	_, err = store.New(db, stack.Config.Table).Transition(ctx, running(t).ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Failed})
	if !errors.Is(err, store.ErrConflict) {
		t.Errorf("a failed condition: %v", err)
	}
}

func setCounter(t *testing.T, pk string, n int) {
	t.Helper()
	_, err := stack.Clients.DynamoDB.UpdateItem(context.Background(), &dynamodb.UpdateItemInput{TableName: aws.String(stack.Config.Table),
		Key: map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: pk}, "sk": &types.AttributeValueMemberS{Value: "ACTIVE"}},
		// As every take and give-back does, the change moves the version.
		UpdateExpression: aws.String("SET n = :n ADD v :one"), ExpressionAttributeValues: map[string]types.AttributeValue{
			":n": &types.AttributeValueMemberN{Value: fmt.Sprint(n)}, ":one": &types.AttributeValueMemberN{Value: "1"}}})
	if err != nil {
		t.Fatal(err)
	}
}

// A finish never takes a counter below zero: a counter that drifted to zero
// while a job was active stays at zero, and the job still finishes.
func TestCountersNeverGoBelowZero(t *testing.T) {
	ctx := context.Background()
	j := running(t) // alice's
	setCounter(t, "OWNER#"+j.Owner, 0)
	var drifted atomic.Int32
	st := stack.Store()
	st.OnDrift = func(string, int) { drifted.Add(1) }
	if _, err := st.Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Succeeded}); err != nil {
		t.Fatal(err)
	}
	if n, _ := st.OwnerCount(ctx, j.Owner); n != 0 {
		t.Errorf("owner counter %d, want 0", n)
	}
	if drifted.Load() != 1 {
		t.Errorf("the drift was not reported")
	}
}

// The reaper's recomputation: a counter is moved to the count of active jobs
// when two passes agree, with the counter unchanged between them; a
// submission between the passes defers the correction.
func TestReconcile(t *testing.T) {
	ctx := context.Background()
	st := stack.Store()
	const owner = "arn:aws:iam::123456789012:user/reconciled"
	setCounter(t, "OWNER#"+owner, 5) // as if five finishes had been lost
	if changed, err := st.Reconcile(ctx, owner, 0); err != nil || changed {
		t.Fatalf("first pass corrected at once: %v %v", changed, err)
	}
	if changed, err := st.Reconcile(ctx, owner, 0); err != nil || !changed {
		t.Fatalf("second pass did not correct: %v %v", changed, err)
	}
	if n, _ := st.OwnerCount(ctx, owner); n != 0 {
		t.Errorf("counter %d after the correction", n)
	}
	counters, err := st.Counters(ctx)
	if err != nil || counters[owner] != 0 {
		t.Errorf("Counters: %v %v", counters, err)
	}

	// A counter that moves between the passes is left for later.
	setCounter(t, "OWNER#"+owner, 3)
	st.Reconcile(ctx, owner, 1)
	setCounter(t, "OWNER#"+owner, 4)
	if changed, _ := st.Reconcile(ctx, owner, 1); changed {
		t.Error("corrected although the counter moved between the passes")
	}
	if changed, _ := st.Reconcile(ctx, owner, 1); !changed {
		t.Error("not corrected once two passes agreed")
	}
	if n, _ := st.OwnerCount(ctx, owner); n != 1 {
		t.Errorf("counter %d, want 1", n)
	}

	// A give-back and a take between the passes leave the value as it was,
	// with other jobs behind it: not the agreement a correction needs (the
	// version moved). moto's transactions, visible half-done, made this
	// happen in TestFairLimitsUnderRaces.
	setCounter(t, "OWNER#"+owner, 2)
	st.Reconcile(ctx, owner, 0)
	setCounter(t, "OWNER#"+owner, 1)
	setCounter(t, "OWNER#"+owner, 2)
	if changed, _ := st.Reconcile(ctx, owner, 0); changed {
		t.Error("corrected although the counter went down and up again between the passes")
	}
}

// Issue 22, 7: a job's error and message are bounded when written, so
// that the final write of a job with an error the size of 2,400 database
// names fits the item (it failed, and the job ended as "stopped
// heart-beating").
func TestErrorAndMessageAreBounded(t *testing.T) {
	ctx := context.Background()
	j := running(t)
	huge := strings.Repeat("database x matches nothing; ", 20000)
	got, err := stack.Store().Transition(ctx, j.ID, store.Change{From: []remote.Status{remote.Running}, To: remote.Failed,
		Set: map[string]any{"error": huge, "message": huge}})
	if err != nil {
		t.Fatalf("final write with a %d-byte error: %v", len(huge), err)
	}
	if len(got.Error) > remote.MaxTextBytes+3 || len(got.Message) > remote.MaxTextBytes+3 || !strings.HasPrefix(huge, strings.TrimSuffix(got.Error, "...")) {
		t.Errorf("error %d bytes, message %d bytes, over %d", len(got.Error), len(got.Message), remote.MaxTextBytes)
	}
}

// Issue 22, 5: jobs stored when an owner was the session's ARN are
// rewritten to the role's, so that every session lists them; a pass that
// finds none left marks the table, and later passes read only the mark.
func TestOldOwnersAreMigrated(t *testing.T) {
	ctx := context.Background()
	now := time.Now().UTC()
	session := "arn:aws:sts::123456789012:assumed-role/migrated/cli-42"
	user := "arn:aws:iam::123456789012:user/migrated"
	var ids []string
	for _, owner := range []string{session, user} {
		j := &remote.Job{ID: remote.NewID(), Owner: owner, Command: "init", Status: remote.Queued, CreatedAt: now, UpdatedAt: now}
		if err := stack.Store().Create(ctx, j, store.Caps{Active: 100, PerOwner: 100}, nil); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	n, err := stack.Store().MigrateOwners(ctx)
	if err != nil || n < 1 {
		t.Fatalf("first pass: %d %v", n, err)
	}
	list, _, err := stack.Store().List(ctx, "arn:aws:sts::123456789012:assumed-role/migrated", 10, "")
	if err != nil || len(list) != 1 || list[0].ID != ids[0] || list[0].Owner != "arn:aws:sts::123456789012:assumed-role/migrated" {
		t.Errorf("the role lists %v (%v)", list, err)
	}
	if j, _ := stack.Store().Get(ctx, ids[1]); j.Owner != user {
		t.Errorf("a user's job changed owner: %s", j.Owner)
	}
	if n, err := stack.Store().MigrateOwners(ctx); err != nil || n != 0 {
		t.Errorf("second pass: %d %v", n, err)
	}
	// Marked: a job stored in the old form now is not looked for again.
	late := &remote.Job{ID: remote.NewID(), Owner: session, Command: "init", Status: remote.Queued, CreatedAt: now, UpdatedAt: now}
	if err := stack.Store().Create(ctx, late, store.Caps{Active: 100, PerOwner: 100}, nil); err != nil {
		t.Fatal(err)
	}
	if n, err := stack.Store().MigrateOwners(ctx); err != nil || n != 0 {
		t.Errorf("after the mark: %d %v", n, err)
	}
}
