package awsenv

import (
	"fmt"
	"net/http"
	"strings"
	"testing"

	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/smithy-go"
	smithyhttp "github.com/aws/smithy-go/transport/http"
)

// What a job's record says of a failed AWS call: readable, and none of
// AWS's own text (here an ARN and a request id).
func TestDescribe(t *testing.T) {
	raw := &smithy.OperationError{ServiceID: "Secrets Manager", OperationName: "GetSecretValue",
		Err: &awshttp.ResponseError{RequestID: "7f3e-request-id", ResponseError: &smithyhttp.ResponseError{Response: &smithyhttp.Response{Response: &http.Response{StatusCode: 400}},
			Err: &smithy.GenericAPIError{Code: "AccessDeniedException", Message: "User: arn:aws:sts::123456789012:assumed-role/w/i-0abc is not authorized"}}}}
	err := fmt.Errorf("read the job's connection URLs: %w", raw)
	got, ok := Describe(err)
	if !ok || got != "read the job's connection URLs: Secrets Manager GetSecretValue failed (AccessDeniedException)" {
		t.Errorf("Describe = %q, %v", got, ok)
	}
	for _, leak := range []string{"arn:", "7f3e", "StatusCode", "not authorized"} {
		if strings.Contains(got, leak) {
			t.Errorf("%q shows %q", got, leak)
		}
	}
	if _, ok := Describe(fmt.Errorf("copy public.t: %w", fmt.Errorf("disk full"))); ok {
		t.Error("a non-AWS error was taken for one")
	}
}
