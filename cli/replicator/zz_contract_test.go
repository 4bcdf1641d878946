package main_test

import (
	"bufio"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"testing"
)

// The AWS calls the Lambda and the workers made during these tests must all be
// declared in platform/testdata/aws-calls.txt, the list the IAM policies are
// checked against (platform's contract test): a new call without a policy update
// fails here. Runs last (file name), after the remote tests.
func TestZZAWSCallsAreDeclared(t *testing.T) {
	recorded := readCalls(t, os.Getenv("REPLICATOR_RECORD_AWS_CALLS"))
	if len(recorded) == 0 {
		t.Log("no AWS calls recorded (remote tests not run)")
		return
	}
	declared := readCalls(t, filepath.Join("..", "..", "platform", "testdata", "aws-calls.txt"))
	var missing []string
	for c := range recorded {
		if !declared[c] {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		t.Errorf("AWS calls made but not declared in platform/testdata/aws-calls.txt (add them, and to the IAM policies in platform/iam.go):\n%s",
			strings.Join(missing, "\n"))
	}
}

func readCalls(t *testing.T, path string) map[string]bool {
	out := map[string]bool{}
	f, err := os.Open(path)
	if err != nil {
		if os.IsNotExist(err) {
			return out
		}
		t.Fatal(err)
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out
}
