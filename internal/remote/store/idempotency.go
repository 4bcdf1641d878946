package store

import (
	"context"
	"fmt"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/replicatorhq/replicator/internal/remote"
)

// Idempotency is a submission's Idempotency-Key (scoped to its owner) and
// the hash of its body: a retried or replayed submission with the same key
// gets the job the first one made, not a second job.
type Idempotency struct {
	Key, BodyHash string
}

// IdempotencyTTL is how long a key is remembered.
const IdempotencyTTL = 24 * time.Hour

// Duplicate is a submission whose key was used before, by the same owner.
type Duplicate struct {
	JobID string
	// SameBody: the earlier submission had the same body; otherwise the key
	// was reused for another job, which is the caller's error.
	SameBody bool
}

func (d *Duplicate) Error() string {
	return fmt.Sprintf("idempotency key already used for job %s", d.JobID)
}

func idempotencyKey(owner, key string) map[string]types.AttributeValue {
	return map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: "IDEMP#" + owner + "#" + key}, "sk": &types.AttributeValueMemberS{Value: "IDEMP"}}
}

func (i *Idempotency) item(j *remote.Job) map[string]types.AttributeValue {
	item := idempotencyKey(j.Owner, i.Key)
	item["job_id"] = &types.AttributeValueMemberS{Value: j.ID}
	item["body_hash"] = &types.AttributeValueMemberS{Value: i.BodyHash}
	item["expires_at"] = &types.AttributeValueMemberN{Value: fmt.Sprint(j.CreatedAt.Add(IdempotencyTTL).Unix())}
	return item
}

// duplicate reads the record of a key already used.
func (s *Store) duplicate(ctx context.Context, owner string, idem *Idempotency) error {
	out, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: idempotencyKey(owner, idem.Key), ConsistentRead: aws.Bool(true)})
	if err != nil {
		return fmt.Errorf("read idempotency key: %w", err)
	}
	var rec struct {
		JobID    string `dynamodbav:"job_id"`
		BodyHash string `dynamodbav:"body_hash"`
	}
	if err := attributevalue.UnmarshalMap(out.Item, &rec); err != nil || rec.JobID == "" {
		return fmt.Errorf("read idempotency key: malformed record")
	}
	return &Duplicate{JobID: rec.JobID, SameBody: rec.BodyHash == idem.BodyHash}
}
