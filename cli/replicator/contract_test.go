package main_test

import (
	"bufio"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// checkAWSCalls holds the AWS calls the Lambda and the workers made during the
// tests that ran against platform/testdata/aws-calls.txt, the list the IAM
// policies are checked against (platform's contract test): a new call without
// a policy update fails the run. TestMain calls it after every test has run,
// so it holds whichever tests ran, in whatever order.
func checkAWSCalls() error {
	recorded, err := readCalls(os.Getenv("REPLICATOR_RECORD_AWS_CALLS"))
	if err != nil {
		return err
	}
	declared, err := readCalls(filepath.Join("..", "..", "platform", "testdata", "aws-calls.txt"))
	if err != nil {
		return err
	}
	var missing []string
	for c := range recorded {
		if !declared[c] {
			missing = append(missing, c)
		}
	}
	sort.Strings(missing)
	if len(missing) > 0 {
		return fmt.Errorf("AWS calls made but not declared in platform/testdata/aws-calls.txt (add them, and to the IAM policies in platform/iam.go):\n%s",
			strings.Join(missing, "\n"))
	}
	return nil
}

func readCalls(path string) (map[string]bool, error) {
	out := map[string]bool{}
	f, err := os.Open(path)
	if os.IsNotExist(err) {
		return out, nil
	}
	if err != nil {
		return nil, err
	}
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		line := strings.TrimSpace(sc.Text())
		if line != "" && !strings.HasPrefix(line, "#") {
			out[line] = true
		}
	}
	return out, sc.Err()
}
