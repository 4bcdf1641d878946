package store

import (
	"context"
	"errors"
	"fmt"
	"strconv"
	"strings"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Slot counters. The platform's (pk ACCOUNT) caps the jobs active at once;
// each owner's (pk OWNER#<arn>) caps one caller's, so that one user cannot
// hold every slot. A job takes one of each in the transaction that creates
// it and gives them back in the one that finishes it. A give-back never takes
// a counter below zero: its condition fails instead, and the finish goes on
// without that counter. Owner counters are listed in the active index under
// their own partition, so that the reaper finds them all and recomputes
// every counter from the active jobs (Reconcile).

// counterPartition is the active index's partition of owner counters.
const counterPartition = "counters"

// Caps are the limits Create enforces.
type Caps struct {
	Active, PerOwner int
}

func ownerKey(owner string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "OWNER#" + owner}, "sk": &types.AttributeValueMemberS{Value: "ACTIVE"}}
}

// take is the update that takes a slot of a counter, at most limit.
func (s *Store) take(key map[string]types.AttributeValue, limit int, owner string) types.TransactWriteItem {
	u := &types.Update{
		TableName: &s.Table, Key: key,
		UpdateExpression:    aws.String("ADD n :one, v :one"),
		ConditionExpression: aws.String("attribute_not_exists(n) OR n < :cap"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":one": &types.AttributeValueMemberN{Value: "1"},
			":cap": &types.AttributeValueMemberN{Value: strconv.Itoa(limit)},
		},
	}
	if owner != "" {
		u.UpdateExpression = aws.String("ADD n :one, v :one SET gsi2pk = :p, gsi2sk = :o")
		u.ExpressionAttributeValues[":p"] = &types.AttributeValueMemberS{Value: counterPartition}
		u.ExpressionAttributeValues[":o"] = &types.AttributeValueMemberS{Value: owner}
	}
	return types.TransactWriteItem{Update: u}
}

// giveBack is the update that returns a slot of a counter, never below zero.
func (s *Store) giveBack(key map[string]types.AttributeValue) types.TransactWriteItem {
	return types.TransactWriteItem{Update: &types.Update{
		TableName: &s.Table, Key: key,
		UpdateExpression:    aws.String("ADD n :minus, v :one"),
		ConditionExpression: aws.String("n > :zero"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":minus": &types.AttributeValueMemberN{Value: "-1"},
			":one":   &types.AttributeValueMemberN{Value: "1"},
			":zero":  &types.AttributeValueMemberN{Value: "0"},
		},
	}}
}

// transactReleasing runs first (the job's own write) with the give-backs of
// its slots. A give-back whose condition fails (the counter is already at
// zero: it drifted) is dropped and the rest tried again; first's failing
// condition is ErrConflict.
func (s *Store) transactReleasing(ctx context.Context, first types.TransactWriteItem, keys ...map[string]types.AttributeValue) (dropped int, err error) {
	items := []types.TransactWriteItem{first}
	for _, k := range keys {
		items = append(items, s.giveBack(k))
	}
	for {
		err := s.transact(ctx, items)
		var cf *conditionFailed
		if !errors.As(err, &cf) {
			return dropped, err
		}
		if cf.item == 0 {
			return dropped, ErrConflict
		}
		items = append(items[:cf.item], items[cf.item+1:]...)
		dropped++
	}
}

// Counters reads the platform's counter (key "") and every owner's.
func (s *Store) Counters(ctx context.Context) (map[string]int, error) {
	out := map[string]int{}
	total, err := s.ActiveCount(ctx)
	if err != nil {
		return nil, err
	}
	out[""] = total
	p := dynamodb.NewQueryPaginator(s.DB, &dynamodb.QueryInput{
		TableName: &s.Table, IndexName: aws.String(ActiveIndex),
		KeyConditionExpression:    aws.String("gsi2pk = :p"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":p": &types.AttributeValueMemberS{Value: counterPartition}},
	})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, fmt.Errorf("list slot counters: %w", err)
		}
		for _, it := range page.Items {
			var c struct {
				Owner string `dynamodbav:"gsi2sk"`
				N     int    `dynamodbav:"n"`
			}
			if err := attributevalue.UnmarshalMap(it, &c); err != nil {
				return nil, err
			}
			out[c.Owner] = c.N
		}
	}
	return out, nil
}

// OwnerCount is the number of slots owner holds.
func (s *Store) OwnerCount(ctx context.Context, owner string) (int, error) {
	return s.counterValue(ctx, ownerKey(owner))
}

func (s *Store) counterValue(ctx context.Context, key map[string]types.AttributeValue) (int, error) {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key, ConsistentRead: aws.Bool(true)})
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

// Reconcile moves a counter ("" the platform's, else owner's) to want, the
// number of active jobs it should count, when two passes in a row (of the
// reaper) found the same difference with the counter unchanged between them
// (its version, v, which every take and give-back moves):
// the active index is eventually consistent, and a job created or finished
// a moment ago may be missing from it or still in it. It reports whether it
// changed the counter.
func (s *Store) Reconcile(ctx context.Context, owner string, want int) (bool, error) {
	key := counterKey
	if owner != "" {
		key = ownerKey(owner)
	}
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: key, ConsistentRead: aws.Bool(true)})
	if err != nil {
		return false, err
	}
	// v counts every take and give-back: "unchanged" is the same version,
	// not the same value (a give-back then a take would leave n as it was,
	// with other jobs behind it).
	var c struct {
		N          int  `dynamodbav:"n"`
		V          int  `dynamodbav:"v"`
		CheckV     *int `dynamodbav:"check_v"`
		CheckCount *int `dynamodbav:"check_count"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &c); err != nil {
		return false, err
	}
	vals := map[string]types.AttributeValue{":v": &types.AttributeValueMemberN{Value: strconv.Itoa(c.V)}}
	// The counter as read: unchanged by a submission or a finish since.
	unchanged := "v = :v"
	if c.V == 0 {
		unchanged = "(attribute_not_exists(v) OR v = :v)"
	}
	var set, remove []string
	corrected := false
	switch {
	case c.N == want && c.CheckV == nil:
		return false, nil
	case c.N == want:
		remove = []string{"check_v", "check_count"}
	case c.CheckV != nil && *c.CheckV == c.V && c.CheckCount != nil && *c.CheckCount == want:
		set, remove, corrected = []string{"n = :want", "v = :next"}, []string{"check_v", "check_count"}, true
		vals[":want"] = &types.AttributeValueMemberN{Value: strconv.Itoa(want)}
		vals[":next"] = &types.AttributeValueMemberN{Value: strconv.Itoa(c.V + 1)}
	default:
		set = []string{"check_v = :v", "check_count = :want"}
		vals[":want"] = &types.AttributeValueMemberN{Value: strconv.Itoa(want)}
	}
	if owner != "" && len(set) > 0 {
		// An owner's counter the index lists (a counter made here, for jobs
		// that predate counters, has none yet).
		set = append(set, "gsi2pk = :p", "gsi2sk = :o")
		vals[":p"] = &types.AttributeValueMemberS{Value: counterPartition}
		vals[":o"] = &types.AttributeValueMemberS{Value: owner}
	}
	update := ""
	if len(set) > 0 {
		update = "SET " + strings.Join(set, ", ")
	}
	if len(remove) > 0 {
		update += " REMOVE " + strings.Join(remove, ", ")
	}
	_, err = s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table, Key: key, UpdateExpression: aws.String(strings.TrimSpace(update)),
		ConditionExpression: &unchanged, ExpressionAttributeValues: vals})
	var ccf *types.ConditionalCheckFailedException
	if errors.As(err, &ccf) {
		return false, nil // moved meanwhile: the next pass looks again
	}
	if err != nil {
		return false, fmt.Errorf("reconcile slot counter %q: %w", owner, err)
	}
	return corrected, nil
}
