// Package store keeps remote jobs in DynamoDB: one item per job, one item per
// checkpoint of a job (a database may have tens of thousands of tables; items
// stay far below the 400 KB limit), and a counter of active jobs that caps how
// many run at once. Every status change is a conditional write: a finished job
// never changes again, and no update is lost.
package store

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/expression"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/cenkalti/backoff/v5"

	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/remote"
)

// Index names of the table.
const (
	OwnerIndex  = "by-owner" // gsi1pk = owner, gsi1sk = created_at#id
	ActiveIndex = "active"   // gsi2pk = "active" while the job is active (sparse)
)

// Errors the callers act on.
var (
	ErrNotFound = errors.New("job not found")
	ErrConflict = errors.New("job is not in a state that allows this")
	ErrCapacity = errors.New("too many active jobs")
	// ErrOwnerCapacity: the owner has as many active jobs as one may.
	ErrOwnerCapacity = errors.New("too many active jobs of this owner")
	// ErrInvalidCursor is a list cursor this store did not give, or another
	// owner's.
	ErrInvalidCursor = errors.New("invalid cursor")
	finishedTTL      = 90 * 24 * time.Hour
	counterKey       = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "ACCOUNT"}, "sk": &types.AttributeValueMemberS{Value: "ACTIVE"}}
	marshalOpts      = func(o *attributevalue.EncoderOptions) { o.TagKey = "json" }
	unmarshalOpt     = func(o *attributevalue.DecoderOptions) { o.TagKey = "json" }
)

// Store is the jobs table.
type Store struct {
	DB    *dynamodb.Client
	Table string
	Now   func() time.Time
	// OnDrift, when set, hears of a finish that found a slot counter already
	// at zero (the reaper's next passes repair the counter).
	OnDrift func(job string, counters int)
}

// New returns a store on table.
func New(db *dynamodb.Client, table string) *Store {
	return &Store{DB: db, Table: table, Now: time.Now}
}

func jobKey(id string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{
		"pk": &types.AttributeValueMemberS{Value: "JOB#" + id},
		"sk": &types.AttributeValueMemberS{Value: "JOB"},
	}
}

func (s *Store) item(j *remote.Job) (map[string]types.AttributeValue, error) {
	item, err := attributevalue.MarshalMapWithOptions(j, marshalOpts)
	if err != nil {
		return nil, err
	}
	for k, v := range jobKey(j.ID) {
		item[k] = v
	}
	item["gsi1pk"] = &types.AttributeValueMemberS{Value: j.Owner}
	item["gsi1sk"] = &types.AttributeValueMemberS{Value: j.CreatedAt.UTC().Format(time.RFC3339Nano) + "#" + j.ID}
	if !j.Status.Terminal() {
		item["gsi2pk"] = &types.AttributeValueMemberS{Value: "active"}
		item["gsi2sk"] = &types.AttributeValueMemberS{Value: j.ID}
	}
	return item, nil
}

func decode(item map[string]types.AttributeValue) (*remote.Job, error) {
	var j remote.Job
	if err := attributevalue.UnmarshalMapWithOptions(item, &j, unmarshalOpt); err != nil {
		return nil, fmt.Errorf("decode job: %w", err)
	}
	return &j, nil
}

// Create stores a new queued job, taking a slot of the platform's (at most
// caps.Active) and one of its owner's (at most caps.PerOwner) in the same
// transaction. With an idempotency key, the key is recorded in it too, and a
// key already recorded is a *Duplicate naming the job it made.
func (s *Store) Create(ctx context.Context, j *remote.Job, caps Caps, idem *Idempotency) error {
	item, err := s.item(j)
	if err != nil {
		return err
	}
	var items []types.TransactWriteItem
	if idem != nil {
		// First: a replay is answered with its job even when the caps are full.
		items = append(items, types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: idem.item(j), ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	}
	items = append(items, s.take(counterKey, caps.Active, ""), s.take(ownerKey(j.Owner), caps.PerOwner, j.Owner),
		types.TransactWriteItem{Put: &types.Put{TableName: &s.Table, Item: item, ConditionExpression: aws.String("attribute_not_exists(pk)")}})
	err = s.transact(ctx, items)
	var cf *conditionFailed
	if errors.As(err, &cf) {
		at := cf.item
		if idem == nil {
			at++
		}
		switch at {
		case 0:
			return s.duplicate(ctx, j.Owner, idem)
		case 1:
			return ErrCapacity
		case 2:
			return ErrOwnerCapacity
		}
	}
	if err != nil {
		return fmt.Errorf("store job: %w", err)
	}
	return nil
}

// ActiveCount is the number of jobs holding a slot.
func (s *Store) ActiveCount(ctx context.Context) (int, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: counterKey, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return 0, err
	}
	var c struct {
		N int `dynamodbav:"n"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return 0, err
	}
	return c.N, nil
}

// Get reads a job.
func (s *Store) Get(ctx context.Context, id string) (*remote.Job, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: jobKey(id), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read job %s: %w", id, err)
	}
	if len(out.Item) == 0 {
		return nil, ErrNotFound
	}
	return decode(out.Item)
}

// List returns an owner's jobs, newest first, a page at a time; cursor is
// opaque ("" for the first page, returned "" after the last).
func (s *Store) List(ctx context.Context, owner string, limit int, cursor string) ([]*remote.Job, string, error) {
	in := &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(OwnerIndex),
		KeyConditionExpression: aws.String("gsi1pk = :o"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":o": &types.AttributeValueMemberS{Value: owner},
		},
		ScanIndexForward: aws.Bool(false),
		Limit:            aws.Int32(int32(limit)),
	}
	if cursor != "" {
		raw, err := base64.RawURLEncoding.DecodeString(cursor)
		var key map[string]string
		if err == nil {
			err = json.Unmarshal(raw, &key)
		}
		// Exactly the keys a page of the owner index ends on, the owner's.
		if err != nil || len(key) != 4 || key["gsi1pk"] != owner || !strings.HasPrefix(key["pk"], "JOB#") || key["sk"] != "JOB" || key["gsi1sk"] == "" {
			return nil, "", ErrInvalidCursor
		}
		in.ExclusiveStartKey = map[string]types.AttributeValue{}
		for k, v := range key {
			in.ExclusiveStartKey[k] = &types.AttributeValueMemberS{Value: v}
		}
	}
	out, err := s.DB.Query(ctx, in)
	if err != nil {
		return nil, "", fmt.Errorf("list jobs: %w", err)
	}
	var list []*remote.Job
	for _, it := range out.Items {
		j, err := decode(it)
		if err != nil {
			return nil, "", err
		}
		list = append(list, j)
	}
	next := ""
	if len(out.LastEvaluatedKey) > 0 {
		key := map[string]string{}
		for k, v := range out.LastEvaluatedKey {
			if sv, ok := v.(*types.AttributeValueMemberS); ok {
				key[k] = sv.Value
			}
		}
		b, _ := json.Marshal(key)
		next = base64.RawURLEncoding.EncodeToString(b)
	}
	return list, next, nil
}

// ListActive returns every job that is not finished (for the reaper).
func (s *Store) ListActive(ctx context.Context) ([]*remote.Job, error) {
	p := dynamodb.NewQueryPaginator(s.DB, &dynamodb.QueryInput{
		TableName:              &s.Table,
		IndexName:              aws.String(ActiveIndex),
		KeyConditionExpression: aws.String("gsi2pk = :a"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":a": &types.AttributeValueMemberS{Value: "active"},
		},
	})
	var list []*remote.Job
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list active jobs: %w", err)
		}
		for _, it := range out.Items {
			j, err := decode(it)
			if err != nil {
				return nil, err
			}
			list = append(list, j)
		}
	}
	return list, nil
}

// Change describes a transition: the statuses it may start from, the status it
// goes to (empty: unchanged), and other fields to set.
type Change struct {
	From []remote.Status
	To   remote.Status
	// IfInstance, when set, also requires the job to be on that instance (so a
	// replaced worker cannot write over its successor).
	IfInstance string
	Set        map[string]any
	Remove     []string
}

// Transition applies a change atomically, or returns ErrConflict when the job
// is no longer in a state it may start from. A change to a finished status
// releases the job's slot in the same transaction.
func (s *Store) Transition(ctx context.Context, id string, c Change) (*remote.Job, error) {
	now := s.Now().UTC()
	upd := expression.Set(expression.Name("updated_at"), value(now))
	if c.To != "" {
		upd = upd.Set(expression.Name("status"), value(c.To))
	}
	for k, v := range c.Set {
		if text, ok := v.(string); ok && (k == "error" || k == "message") {
			v = redact.Truncate(text, remote.MaxTextBytes) // the item stays within DynamoDB's 400 KB
		}
		upd = upd.Set(expression.Name(k), value(v))
	}
	for _, k := range c.Remove {
		upd = upd.Remove(expression.Name(k))
	}
	terminal := c.To.Terminal()
	if terminal {
		upd = upd.Set(expression.Name("finished_at"), value(now)).
			Set(expression.Name("expires_at"), value(now.Add(finishedTTL).Unix())).
			Remove(expression.Name("gsi2pk")).Remove(expression.Name("gsi2sk"))
	}
	var statuses []expression.OperandBuilder
	for _, st := range c.From {
		statuses = append(statuses, value(st))
	}
	cond := expression.Name("pk").AttributeExists()
	if len(statuses) > 0 {
		cond = cond.And(expression.Name("status").In(statuses[0], statuses[1:]...))
	}
	if c.IfInstance != "" {
		cond = cond.And(expression.Name("instance_id").Equal(value(c.IfInstance)))
	}
	expr, err := expression.NewBuilder().WithUpdate(upd).WithCondition(cond).Build()
	if err != nil {
		return nil, err
	}
	update := &types.Update{
		TableName: &s.Table, Key: jobKey(id),
		UpdateExpression: expr.Update(), ConditionExpression: expr.Condition(),
		ExpressionAttributeNames: expr.Names(), ExpressionAttributeValues: expr.Values(),
	}
	if terminal {
		// The owner never changes: read it for its counter.
		j, gerr := s.Get(ctx, id)
		if errors.Is(gerr, ErrNotFound) {
			return nil, ErrConflict
		}
		if gerr != nil {
			return nil, gerr
		}
		var dropped int
		dropped, err = s.transactReleasing(ctx, types.TransactWriteItem{Update: update}, counterKey, ownerKey(j.Owner))
		if errors.Is(err, ErrConflict) {
			return nil, ErrConflict
		}
		if dropped > 0 && s.OnDrift != nil {
			s.OnDrift(id, dropped)
		}
	} else {
		_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{
			TableName: update.TableName, Key: update.Key, UpdateExpression: update.UpdateExpression,
			ConditionExpression: update.ConditionExpression, ExpressionAttributeNames: update.ExpressionAttributeNames,
			ExpressionAttributeValues: update.ExpressionAttributeValues,
		})
		var ccf *types.ConditionalCheckFailedException
		if errors.As(err, &ccf) {
			return nil, ErrConflict
		}
	}
	if err != nil {
		return nil, fmt.Errorf("update job %s: %w", id, err)
	}
	return s.Get(ctx, id)
}

// conditionFailed is a transaction cancelled because the condition of one of
// its items (by index) failed: the state is not what the caller expected.
type conditionFailed struct{ item int }

func (c *conditionFailed) Error() string {
	return fmt.Sprintf("condition of transaction item %d failed", c.item)
}

// TransactRetries bounds the retries of a transaction cancelled for a
// transient reason (a conflicting transaction, throttling).
var TransactRetries = 8

// transact runs a transaction. A cancellation names a reason per item: a
// failed condition is final (conditionFailed); any other reason
// (TransactionConflict, ThrottlingError, ProvisionedThroughputExceeded, ...) is
// transient and the transaction is tried again. Treating a transient
// cancellation as a failed condition once made a worker's final write look
// lost, and the job was relaunched and copied again.
func (s *Store) transact(ctx context.Context, items []types.TransactWriteItem) error {
	bo := backoff.NewExponentialBackOff()
	bo.InitialInterval, bo.MaxInterval = 50*time.Millisecond, 2*time.Second
	for attempt := 0; ; attempt++ {
		_, err := s.DB.TransactWriteItems(ctx, &dynamodb.TransactWriteItemsInput{TransactItems: items})
		var tce *types.TransactionCanceledException
		if !errors.As(err, &tce) {
			return err
		}
		for i, r := range tce.CancellationReasons {
			if aws.ToString(r.Code) == "ConditionalCheckFailed" {
				return &conditionFailed{item: i}
			}
		}
		if attempt >= TransactRetries {
			return fmt.Errorf("transaction kept being cancelled: %w", err)
		}
		select {
		case <-ctx.Done():
			return ctx.Err()
		case <-time.After(bo.NextBackOff()):
		}
	}
}

// Heartbeat records that the worker on instance is alive, with its progress,
// and tells it whether a cancel was asked.
func (s *Store) Heartbeat(ctx context.Context, id, instance string, snap *progress.Snapshot, message string) (cancel bool, err error) {
	set := map[string]any{"heartbeat_at": s.Now().UTC()}
	if snap != nil {
		set["progress"] = snap
	}
	if message != "" {
		set["message"] = message
	}
	j, err := s.Transition(ctx, id, Change{From: []remote.Status{remote.Running}, IfInstance: instance, Set: set})
	if err != nil {
		return false, err
	}
	return j.CancelAsked, nil
}

// value encodes v the way whole jobs are encoded (json field names), so that
// partial updates and full reads agree.
func value(v any) expression.ValueBuilder {
	av, err := attributevalue.MarshalWithOptions(v, marshalOpts)
	if err != nil {
		panic(fmt.Sprintf("encode %T: %v", v, err))
	}
	return expression.Value(av)
}

// Platform is what a worker needs to know beyond its job id and table name,
// kept in the table itself (the worker's user data carries only those two).
type Platform struct {
	Stack        string `json:"stack"`
	LogGroup     string `json:"log_group"`
	SecretPrefix string `json:"secret_prefix"`
	// The worker binary the image's boot script fetches.
	ArtifactsBucket string `json:"artifacts_bucket,omitempty"`
	WorkerKey       string `json:"worker_key,omitempty"`
}

var platformKey = map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "PLATFORM"}, "sk": &types.AttributeValueMemberS{Value: "CONFIG"}}

// PutPlatform records the platform's names (the API does at start).
func (s *Store) PutPlatform(ctx context.Context, p Platform) error {
	item, err := attributevalue.MarshalMapWithOptions(p, marshalOpts)
	if err != nil {
		return err
	}
	for k, v := range platformKey {
		item[k] = v
	}
	_, err = s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: item})
	return err
}

// GetPlatform reads the platform's names.
func (s *Store) GetPlatform(ctx context.Context) (*Platform, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: platformKey, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return nil, fmt.Errorf("read platform configuration: %w", err)
	}
	if len(out.Item) == 0 {
		return nil, fmt.Errorf("platform configuration missing from table %s", s.Table)
	}
	var p Platform
	err = attributevalue.UnmarshalMapWithOptions(out.Item, &p, unmarshalOpt)
	return &p, err
}
