package store

import (
	"context"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/replicatorhq/replicator/internal/checkpoint"
)

// Checkpoints is a job's checkpoint store: one item per record, so a new worker
// resumes where a dead one stopped.
type Checkpoints struct {
	s  *Store
	id string
}

// Checkpoints returns the checkpoint store of job id.
func (s *Store) Checkpoints(id string) *Checkpoints { return &Checkpoints{s: s, id: id} }

var _ checkpoint.Store = (*Checkpoints)(nil)

func (c *Checkpoints) pk() *types.AttributeValueMemberS {
	return &types.AttributeValueMemberS{Value: "JOB#" + c.id}
}

func (c *Checkpoints) query(ctx context.Context, fn func(map[string]types.AttributeValue) error) error {
	p := dynamodb.NewQueryPaginator(c.s.DB, &dynamodb.QueryInput{
		TableName:              &c.s.Table,
		KeyConditionExpression: aws.String("pk = :pk AND begins_with(sk, :cp)"),
		ExpressionAttributeValues: map[string]types.AttributeValue{
			":pk": c.pk(), ":cp": &types.AttributeValueMemberS{Value: "CP#"},
		},
		ConsistentRead: aws.Bool(true),
	})
	for p.HasMorePages() {
		out, err := p.NextPage(ctx)
		if err != nil {
			return fmt.Errorf("read checkpoints: %w", err)
		}
		for _, it := range out.Items {
			if err := fn(it); err != nil {
				return err
			}
		}
	}
	return nil
}

func (c *Checkpoints) Load(ctx context.Context) (map[string]checkpoint.Record, error) {
	out := map[string]checkpoint.Record{}
	err := c.query(ctx, func(it map[string]types.AttributeValue) error {
		var r checkpoint.Record
		if err := attributevalue.UnmarshalMapWithOptions(it, &r, unmarshalOpt); err != nil {
			return err
		}
		out[r.Key] = r
		return nil
	})
	return out, err
}

// Put writes a record; DynamoDB writes are durable when acknowledged.
func (c *Checkpoints) Put(ctx context.Context, r checkpoint.Record, durable bool) error {
	item, err := attributevalue.MarshalMapWithOptions(r, marshalOpts)
	if err != nil {
		return err
	}
	item["pk"] = c.pk()
	item["sk"] = &types.AttributeValueMemberS{Value: "CP#" + r.Key}
	if _, err := c.s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &c.s.Table, Item: item}); err != nil {
		return fmt.Errorf("write checkpoint: %w", err)
	}
	return nil
}

// Clear deletes every record of the job.
func (c *Checkpoints) Clear(ctx context.Context) error {
	var keys []map[string]types.AttributeValue
	if err := c.query(ctx, func(it map[string]types.AttributeValue) error {
		keys = append(keys, map[string]types.AttributeValue{"pk": it["pk"], "sk": it["sk"]})
		return nil
	}); err != nil {
		return err
	}
	for start := 0; start < len(keys); start += 25 {
		var reqs []types.WriteRequest
		for _, k := range keys[start:min(start+25, len(keys))] {
			reqs = append(reqs, types.WriteRequest{DeleteRequest: &types.DeleteRequest{Key: k}})
		}
		pending := map[string][]types.WriteRequest{c.s.Table: reqs}
		for len(pending) > 0 {
			out, err := c.s.DB.BatchWriteItem(ctx, &dynamodb.BatchWriteItemInput{RequestItems: pending})
			if err != nil {
				return fmt.Errorf("clear checkpoints: %w", err)
			}
			pending = out.UnprocessedItems
		}
	}
	return nil
}
