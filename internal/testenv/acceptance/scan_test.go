package acceptance

import (
	"context"
	"reflect"
	"testing"
	"time"
)

// Issue 22, 4: the final scan waits out AWS's eventual consistency: what
// is still listed a moment after teardown is asked again, and only what
// stays is reported.
func TestScanWaitsForAWSToCatchUp(t *testing.T) {
	calls := 0
	left, err := untilEmpty(context.Background(), time.Second, time.Millisecond, func() ([]string, error) {
		calls++
		if calls < 3 {
			return []string{"arn:aws:lambda:us-east-1:1:function:x"}, nil
		}
		return nil, nil
	})
	if err != nil || len(left) != 0 || calls != 3 {
		t.Errorf("a resource AWS stopped listing on the third pass: %v %v after %d passes", left, err, calls)
	}
	left, _ = untilEmpty(context.Background(), 20*time.Millisecond, time.Millisecond, func() ([]string, error) {
		return []string{"secret s"}, nil
	})
	if !reflect.DeepEqual(left, []string{"secret s"}) {
		t.Errorf("what stays is reported: %v", left)
	}
}
