package awsenv

import (
	"reflect"
	"testing"

	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
)

// Rule (Using IAM with DynamoDB transactions): TransactWriteItems is
// authorised item by item, as PutItem, UpdateItem, DeleteItem and
// ConditionCheckItem; it is not an IAM action itself. The recorder writes
// what IAM checks, so the contract test checks the policies against it.
func TestTransactionsAreRecordedItemByItem(t *testing.T) {
	in := &dynamodb.TransactWriteItemsInput{TransactItems: []types.TransactWriteItem{
		{Put: &types.Put{}}, {Update: &types.Update{}}, {Delete: &types.Delete{}}, {ConditionCheck: &types.ConditionCheck{}}}}
	got := iamActions("TransactWriteItems", in)
	if want := []string{"PutItem", "UpdateItem", "DeleteItem", "ConditionCheckItem"}; !reflect.DeepEqual(got, want) {
		t.Errorf("recorded %v, want %v", got, want)
	}
	if got := iamActions("GetItem", &dynamodb.GetItemInput{}); !reflect.DeepEqual(got, []string{"GetItem"}) {
		t.Errorf("GetItem recorded as %v", got)
	}
}
