package platform

import (
	"bufio"
	"os"
	"strings"
	"testing"
)

// Actions the policies grant that the recorded calls do not show, each with why.
var justified = map[string]string{
	"lambda kms:GenerateDataKey":  "CreateSecret with the customer key encrypts through KMS",
	"lambda kms:Decrypt":          "same, for Secrets Manager's envelope encryption",
	"lambda ec2:CreateTags":       "RunInstances with tag specifications needs it (limited to RunInstances)",
	"lambda iam:PassRole":         "RunInstances hands the worker role to the instance",
	"lambda logs:CreateLogStream": "the Lambda runtime writes the function's own logs",
	"lambda logs:PutLogEvents":    "the Lambda runtime writes the function's own logs",
	"worker kms:Decrypt":          "GetSecretValue decrypts with the customer key",
	"worker s3:GetObject":         "the image's boot script fetches the worker binary (aws CLI, not recorded)",
}

// The IAM policies allow every AWS action the Lambda and the worker actually
// call (recorded from the end-to-end tests against moto, see
// platform/testdata/aws-calls.txt) and nothing beyond them but the justified.
func TestPoliciesMatchRecordedCalls(t *testing.T) {
	f, err := os.Open("testdata/aws-calls.txt")
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	recorded := map[string]bool{}
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if l := strings.TrimSpace(sc.Text()); l != "" && !strings.HasPrefix(l, "#") {
			recorded[l] = true
		}
	}
	if len(recorded) < 10 {
		t.Fatalf("only %d recorded calls: regenerate with go tool task record-aws-calls", len(recorded))
	}
	a := ARNs{Partition: "aws", Region: "us-east-1", Account: "123456789012", Table: "arn:table", SecretsKey: "arn:key",
		JobsLogGroup: "arn:logs", LambdaLogGroup: "arn:fnlogs", Bucket: "arn:bucket", WorkerRole: "arn:role", LaunchTemplate: "arn:lt", SecretPrefix: "replicator/x/jobs/"}
	granted := map[string]bool{}
	for component, p := range map[string]Policy{"lambda": LambdaPolicy(a), "worker": WorkerPolicy(a)} {
		for _, s := range p.Statement {
			for _, act := range s.Action {
				granted[component+" "+act] = true
			}
		}
	}
	for call := range recorded {
		if !granted[call] {
			t.Errorf("%s is called but not allowed by the policy", call)
		}
	}
	for g := range granted {
		if !recorded[g] && justified[g] == "" {
			t.Errorf("%s is allowed but never called: remove it, or justify it", g)
		}
	}
}

// Rule (Using IAM with DynamoDB transactions): transactions are authorised
// item by item; "dynamodb:TransactWriteItems" and "TransactGetItems" are
// not IAM actions, and a policy naming them grants nothing.
func TestPoliciesNameOnlyIAMActions(t *testing.T) {
	a := ARNs{Partition: "aws", Region: "us-east-1", Account: "123456789012", Table: "arn:table"}
	for name, p := range map[string]Policy{"lambda": LambdaPolicy(a), "worker": WorkerPolicy(a)} {
		for _, s := range p.Statement {
			for _, act := range s.Action {
				if act == "dynamodb:TransactWriteItems" || act == "dynamodb:TransactGetItems" {
					t.Errorf("%s policy grants %s, which is not an IAM action", name, act)
				}
			}
		}
	}
}
