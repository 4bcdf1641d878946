// Command lambda is the replicator platform's Lambda function (provided.al2023,
// arm64): the job API behind API Gateway and the scheduled reaper.
package main

import (
	"context"
	"fmt"
	"os"

	"github.com/aws/aws-lambda-go/lambda"

	"github.com/replicatorhq/replicator/internal/remote/lambdafn"
)

func main() {
	h, err := lambdafn.New(context.Background())
	if err != nil {
		fmt.Fprintln(os.Stderr, "replicator lambda:", err)
		os.Exit(1)
	}
	lambda.Start(h.Invoke)
}
