package store

import (
	"context"
	"errors"
	"fmt"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/feature/dynamodb/attributevalue"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"

	"github.com/replicatorhq/replicator/internal/remote"
)

// ownersMigrated marks a table whose jobs all have principal owners.
var ownersMigrated = map[string]types.AttributeValue{
	"pk": &types.AttributeValueMemberS{Value: "ACCOUNT"},
	"sk": &types.AttributeValueMemberS{Value: "OWNERS-ARE-PRINCIPALS"},
}

// MigrateOwners rewrites the jobs stored when an owner was the caller's
// session ARN (before 0.6) to the principal's (remote.OwnerOf), so that
// every session of a role lists them; the reaper's counter pass then moves
// their slots. Once a pass finds none left it marks the table, and later
// calls read only the mark. It returns how many jobs it rewrote.
func (s *Store) MigrateOwners(ctx context.Context) (int, error) {
	mark, err := s.DB.GetItem(ctx, &dynamodb.GetItemInput{TableName: &s.Table, Key: ownersMigrated})
	if err != nil {
		return 0, fmt.Errorf("migrate owners: %w", err)
	}
	if len(mark.Item) > 0 {
		return 0, nil
	}
	n := 0
	p := dynamodb.NewScanPaginator(s.DB, &dynamodb.ScanInput{TableName: &s.Table,
		FilterExpression:          aws.String("sk = :job AND contains(gsi1pk, :role)"),
		ProjectionExpression:      aws.String("pk, gsi1pk"),
		ExpressionAttributeValues: map[string]types.AttributeValue{":job": &types.AttributeValueMemberS{Value: "JOB"}, ":role": &types.AttributeValueMemberS{Value: ":assumed-role/"}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return n, fmt.Errorf("migrate owners: %w", err)
		}
		for _, item := range page.Items {
			var row struct {
				PK    string `dynamodbav:"pk"`
				Owner string `dynamodbav:"gsi1pk"`
			}
			if err := attributevalue.UnmarshalMap(item, &row); err != nil {
				return n, err
			}
			owner := remote.OwnerOf(row.Owner)
			if owner == row.Owner {
				continue
			}
			_, err := s.DB.UpdateItem(ctx, &dynamodb.UpdateItemInput{TableName: &s.Table,
				Key:                       map[string]types.AttributeValue{"pk": &types.AttributeValueMemberS{Value: row.PK}, "sk": &types.AttributeValueMemberS{Value: "JOB"}},
				UpdateExpression:          aws.String("SET #o = :new, gsi1pk = :new"),
				ConditionExpression:       aws.String("gsi1pk = :old"),
				ExpressionAttributeNames:  map[string]string{"#o": "owner"},
				ExpressionAttributeValues: map[string]types.AttributeValue{":new": &types.AttributeValueMemberS{Value: owner}, ":old": &types.AttributeValueMemberS{Value: row.Owner}}})
			var failed *types.ConditionalCheckFailedException
			if err != nil && !errors.As(err, &failed) {
				return n, fmt.Errorf("migrate owner of %s: %w", row.PK, err)
			}
			if err == nil {
				n++
			}
		}
	}
	if n > 0 {
		return n, nil // the next pass confirms none is left, then marks
	}
	if _, err := s.DB.PutItem(ctx, &dynamodb.PutItemInput{TableName: &s.Table, Item: ownersMigrated}); err != nil {
		return 0, fmt.Errorf("migrate owners: %w", err)
	}
	return 0, nil
}
