package awsenv

import (
	"context"
	"fmt"
	"os"
	"strings"
	"sync"

	awsmiddleware "github.com/aws/aws-sdk-go-v2/aws/middleware"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	"github.com/aws/smithy-go/middleware"
)

// RecordEnv names the file where AWS API calls are recorded, one
// "component service:Action" line per call, for the IAM contract test.
const RecordEnv = "REPLICATOR_RECORD_AWS_CALLS"

// iamPrefix maps SDK service ids to IAM action prefixes.
var iamPrefix = map[string]string{
	"DynamoDB": "dynamodb", "EC2": "ec2", "Secrets Manager": "secretsmanager", "CloudWatch Logs": "logs",
	"STS": "sts", "S3": "s3", "KMS": "kms", "EventBridge": "events", "CloudWatch": "cloudwatch",
}

var recordMu sync.Mutex

// Record returns a config option that records every call of component (lambda,
// worker) to the file named by $REPLICATOR_RECORD_AWS_CALLS, or nothing when it
// is unset.
func Record(component string) func(*config.LoadOptions) error {
	path := os.Getenv(RecordEnv)
	return func(o *config.LoadOptions) error {
		if path == "" {
			return nil
		}
		o.APIOptions = append(o.APIOptions, func(s *middleware.Stack) error {
			return s.Initialize.Add(middleware.InitializeMiddlewareFunc("replicator-record", func(ctx context.Context, in middleware.InitializeInput, next middleware.InitializeHandler) (middleware.InitializeOutput, middleware.Metadata, error) {
				service := awsmiddleware.GetServiceID(ctx)
				prefix := iamPrefix[service]
				if prefix == "" {
					prefix = strings.ToLower(strings.ReplaceAll(service, " ", ""))
				}
				recordMu.Lock()
				if f, err := os.OpenFile(path, os.O_APPEND|os.O_CREATE|os.O_WRONLY, 0o644); err == nil {
					for _, action := range iamActions(awsmiddleware.GetOperationName(ctx), in.Parameters) {
						fmt.Fprintf(f, "%s %s:%s\n", component, prefix, action)
					}
					f.Close()
				}
				recordMu.Unlock()
				return next.HandleInitialize(ctx, in)
			}), middleware.After)
		})
		return nil
	}
}

// iamActions are the IAM actions a call is authorised by. Most operations
// are their own action; TransactWriteItems is not an IAM action at all:
// DynamoDB authorises each of its items as PutItem, UpdateItem, DeleteItem
// or ConditionCheckItem ("Using IAM with DynamoDB transactions").
func iamActions(operation string, params any) []string {
	in, ok := params.(*dynamodb.TransactWriteItemsInput)
	if operation != "TransactWriteItems" || !ok {
		return []string{operation}
	}
	var out []string
	for _, item := range in.TransactItems {
		switch {
		case item.Put != nil:
			out = append(out, "PutItem")
		case item.Update != nil:
			out = append(out, "UpdateItem")
		case item.Delete != nil:
			out = append(out, "DeleteItem")
		case item.ConditionCheck != nil:
			out = append(out, "ConditionCheckItem")
		}
	}
	return out
}
