package awsenv

import (
	"errors"
	"fmt"
	"strings"

	"github.com/aws/smithy-go"
)

// Describe says a failed AWS call for a job's owner: the context the code
// added, the service, the operation and AWS's error code, never AWS's own
// text (request ids, ARNs, policy names), which belongs in the platform's
// log. ok is false for an error that holds no AWS call.
func Describe(err error) (msg string, ok bool) {
	var op *smithy.OperationError
	if !errors.As(err, &op) {
		return "", false
	}
	text := err.Error()
	prefix := ""
	if i := strings.Index(text, "operation error "); i > 0 {
		prefix = text[:i]
	}
	code := "no answer"
	var ae smithy.APIError
	if errors.As(err, &ae) {
		code = ae.ErrorCode()
	}
	return fmt.Sprintf("%s%s %s failed (%s)", prefix, op.Service(), op.Operation(), code), true
}
