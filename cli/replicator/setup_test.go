package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/stacknames"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

// artifactsOverlay writes a go build -overlay file that makes
// platform/artifacts/{bootstrap,worker} read from the given files ("" for
// absent).
func artifactsOverlay(dir, bootstrap, worker string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", "platform", "artifacts"))
	if err != nil {
		return "", err
	}
	// The gzipped forms `go tool task build` leaves are taken out whatever
	// the case: they would win over the plain ones.
	b, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(root, "bootstrap"): bootstrap, filepath.Join(root, "worker"): worker,
		filepath.Join(root, "bootstrap.gz"): "", filepath.Join(root, "worker.gz"): "",
	}})
	path := filepath.Join(dir, fmt.Sprintf("overlay-%d.json", time.Now().UnixNano()))
	return path, os.WriteFile(path, b, 0o644)
}

func TestSetupWithoutArtifactsSaysHowToBuild(t *testing.T) {
	r := replicator(t, nil, "setup", "--backend", "file://"+t.TempDir())
	assertOneLineError(t, r, "built without the linux/arm64 Lambda and worker it deploys: build it with `go tool task build`")
}

// pulumiRoot finds the pulumi CLI built from the module proxy (.ci/build-pulumi.sh)
// and lays it out as the Automation API expects (ROOT/bin/pulumi).
func pulumiRoot(t *testing.T) string {
	t.Helper()
	bin := os.Getenv("REPLICATOR_PULUMI_BIN")
	if bin == "" {
		home, _ := os.UserHomeDir()
		bin = filepath.Join(home, ".cache", "replicator", "pulumi-v3.274.1")
	}
	if _, err := os.Stat(bin); err != nil {
		t.Fatalf("the pulumi CLI is not built (%v): run .ci/build-pulumi.sh (go tool task deps:pulumi)", err)
	}
	root := t.TempDir()
	os.MkdirAll(filepath.Join(root, "bin"), 0o755)
	if err := os.Symlink(bin, filepath.Join(root, "bin", "pulumi")); err != nil {
		t.Fatal(err)
	}
	return root
}

type fakeOp struct {
	Op, Type, Name string
	Inputs         map[string]any
}

func fakeOps(t *testing.T, path string) []fakeOp {
	f, err := os.Open(path)
	if err != nil {
		return nil
	}
	defer f.Close()
	var out []fakeOp
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		var op fakeOp
		json.Unmarshal(sc.Bytes(), &op)
		out = append(out, op)
	}
	return out
}

func count(ops []fakeOp, op, typ string) int {
	n := 0
	for _, o := range ops {
		if o.Op == op && (typ == "" || o.Type == typ) {
			n++
		}
	}
	return n
}

// setupHarness runs a replicator binary that embeds (stand-in) artifacts
// against the real pulumi CLI and engine, offline. The AWS provider plugin
// cannot be fetched here, so a stand-in (internal/testenv/fakeaws) plays it,
// keeping AWS's naming and uniqueness rules; STS, EC2, S3, KMS, DynamoDB,
// Secrets Manager and CloudWatch Logs calls of the CLI itself go to moto.
type setupHarness struct {
	dir, fakeLog, fakeState, configDir string
	env                                []string
	bin                                string
}

var (
	setupBinOnce         sync.Once
	setupBin, pluginsDir string
	setupBinErr          error
)

func newSetupHarness(t *testing.T, s *devstack.Stack) *setupHarness {
	t.Helper()
	setupBinOnce.Do(func() {
		dir, err := os.MkdirTemp("", "replicator-setup-bin-")
		if err != nil {
			setupBinErr = err
			return
		}
		pluginsDir = filepath.Join(dir, "plugins")
		if out, err := exec.Command("go", "build", "-o", filepath.Join(pluginsDir, "pulumi-resource-aws"), "../../internal/testenv/fakeaws").CombinedOutput(); err != nil {
			setupBinErr = fmt.Errorf("build the stand-in provider: %v\n%s", err, out)
			return
		}
		art := filepath.Join(dir, "artifact")
		os.WriteFile(art, []byte("linux/arm64 stand-in"), 0o644)
		overlay, _ := artifactsOverlay(dir, art, art)
		setupBin = filepath.Join(dir, "replicator")
		if out, err := exec.Command("go", "build", "-overlay", overlay, "-o", setupBin, ".").CombinedOutput(); err != nil {
			setupBinErr = fmt.Errorf("build: %v\n%s", err, out)
		}
	})
	if setupBinErr != nil {
		t.Fatal(setupBinErr)
	}
	dir := t.TempDir()
	h := &setupHarness{dir: dir, fakeLog: filepath.Join(dir, "fakeaws.jsonl"), fakeState: filepath.Join(dir, "fakeaws-state.json"),
		configDir: filepath.Join(dir, "config"), bin: setupBin}
	h.env = append(s.CallerEnv("alice"),
		"PATH="+pluginsDir+string(os.PathListSeparator)+os.Getenv("PATH"),
		"REPLICATOR_PULUMI_ROOT="+pulumiRoot(t), "PULUMI_HOME="+filepath.Join(dir, "pulumi-home"),
		"PULUMI_CONFIG_PASSPHRASE=", "FAKEAWS_LOG="+h.fakeLog, "FAKEAWS_STATE="+h.fakeState,
		"REPLICATOR_CONFIG_DIR="+h.configDir, "REPLICATOR_API_URL=")
	return h
}

func (h *setupHarness) run(t *testing.T, env []string, args ...string) result {
	t.Helper()
	return runBinary(t, h.bin, append(append([]string{}, h.env...), env...), args...)
}

// lambdaEnv is the Lambda's environment as last created or updated.
func lambdaEnv(t *testing.T, path string) map[string]any {
	t.Helper()
	var env map[string]any
	for _, op := range fakeOps(t, path) {
		if op.Type == "aws:lambda/function:Function" && op.Inputs != nil {
			env, _ = op.Inputs["environment"].(map[string]any)["variables"].(map[string]any)
		}
	}
	return env
}

// setup and teardown through the Automation API, for real: the pulumi CLI and
// engine, a file:// backend, offline.
func TestSetupAndTeardown(t *testing.T) {
	t.Parallel()
	s := platform(t)
	h := newSetupHarness(t, s)
	state := filepath.Join(h.dir, "state")
	os.MkdirAll(state, 0o755)
	backend := []string{"--backend", "file://" + state, "--stack", "e2e"}
	run := func(args ...string) result { return h.run(t, nil, args...) }

	// --rebuild-image on a stack with no image yet: built once, as always
	// (Pulumi refuses a replace target its state lacks).
	r := run(append([]string{"setup", "--max-jobs", "3", "--rebuild-image"}, backend...)...)
	if r.code != 0 {
		t.Fatalf("setup (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	for _, want := range []string{"AWS account 123456789012, region us-east-1", "Deploying stack e2e", "creating  aws:dynamodb/table:Table",
		"aws:imagebuilder/image:Image", "the worker AMI build: the slow step", "created   aws:lambda/function:Function"} {
		if !strings.Contains(r.stderr, want) {
			t.Errorf("setup output lacks %q:\n%s", want, r.stderr)
		}
	}
	if !strings.Contains(r.stdout, "API URL:    https://fakeapi.execute-api.us-east-1.amazonaws.com") || !strings.Contains(r.stdout, "worker AMI: ami-0fake") {
		t.Errorf("outputs:\n%s", r.stdout)
	}
	ops := fakeOps(t, h.fakeLog)
	for typ, n := range map[string]int{"aws:dynamodb/table:Table": 1, "aws:lambda/function:Function": 1, "aws:apigatewayv2/route:Route": 6,
		"aws:imagebuilder/image:Image": 1, "aws:ec2/launchTemplate:LaunchTemplate": 1, "aws:iam/rolePolicy:RolePolicy": 2,
		"aws:cloudwatch/eventRule:EventRule": 2, "aws:kms/key:Key": 1, "aws:s3/bucketObjectv2:BucketObjectv2": 1,
		"aws:ec2/securityGroup:SecurityGroup": 2, "aws:sns/topic:Topic": 1, "aws:sns/topicPolicy:TopicPolicy": 1,
		"aws:cloudwatch/dashboard:Dashboard": 1, "aws:cloudwatch/metricAlarm:MetricAlarm": 2} {
		if got := count(ops, "create", typ); got != n {
			t.Errorf("%d %s created, want %d", got, typ, n)
		}
	}
	if env := lambdaEnv(t, h.fakeLog); env["REPLICATOR_LAUNCH_TEMPLATE_VERSION"] != "1" || env["REPLICATOR_STACK"] != "e2e" {
		t.Errorf("lambda environment: %v", env)
	}
	cached, err := os.ReadFile(filepath.Join(h.configDir, "stacks", "e2e.json"))
	if err != nil || !strings.Contains(string(cached), `"api_url": "https://fakeapi.execute-api.us-east-1.amazonaws.com"`) {
		t.Errorf("outputs not cached: %v %s", err, cached)
	}

	// Again: nothing to do.
	r = run(append([]string{"setup", "--max-jobs", "3"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "No changes") || len(fakeOps(t, h.fakeLog)) != len(ops) {
		t.Errorf("re-running setup changed something (%d):\n%s", r.code, r.stderr)
	}

	// A changed launch template is a new version, and the Lambda launches
	// from it (never from version 1, whose AMI setup may have removed).
	r = run(append([]string{"setup", "--max-jobs", "3", "--instance-type", "m7g.large"}, backend...)...)
	if r.code != 0 || count(fakeOps(t, h.fakeLog), "update", "aws:ec2/launchTemplate:LaunchTemplate") != 1 {
		t.Fatalf("setup with another instance type (%d):\n%s", r.code, r.stderr)
	}
	if env := lambdaEnv(t, h.fakeLog); env["REPLICATOR_LAUNCH_TEMPLATE_VERSION"] != "2" || env["REPLICATOR_DEFAULT_INSTANCE_TYPE"] != "m7g.large" {
		t.Errorf("after the launch template changed, the Lambda has %v", env)
	}

	// Locks: a stale one (another host, long ago) is cleared...
	lockDir := filepath.Join(state, ".pulumi", "locks", "organization", "replicator", "e2e")
	lock := func(name, host string, pid int, at time.Time) string {
		os.MkdirAll(lockDir, 0o755)
		p := filepath.Join(lockDir, name+".json")
		b, _ := json.Marshal(map[string]any{"pid": pid, "username": "alice", "hostname": host, "timestamp": at})
		os.WriteFile(p, b, 0o644)
		return p
	}
	lock("0b3f2c1e-8d8e-4d5c-9c1a-1f2e3d4c5b6a", "elsewhere", 999999, time.Now().Add(-30*time.Hour))
	r = run(append([]string{"setup", "--max-jobs", "4"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "Removed the stack's lock held by alice@elsewhere (pid 999999)") ||
		count(fakeOps(t, h.fakeLog), "update", "aws:lambda/function:Function") != 2 {
		t.Errorf("setup over a stale lock (%d):\n%s", r.code, r.stderr)
	}
	// ...so is one of this host whose process is gone...
	dead := exec.Command("true")
	dead.Run()
	host, _ := os.Hostname()
	lock("1b3f2c1e-8d8e-4d5c-9c1a-1f2e3d4c5b6a", host, dead.Process.Pid, time.Now())
	r = run(append([]string{"setup", "--max-jobs", "4"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "its process on this host is gone") {
		t.Errorf("setup over a dead process's lock (%d):\n%s", r.code, r.stderr)
	}
	// ...but a teammate's live one is not taken away: it names who holds it.
	before := len(fakeOps(t, h.fakeLog))
	live := lock("2b3f2c1e-8d8e-4d5c-9c1a-1f2e3d4c5b6a", "bobs-laptop", 4242, time.Now().Add(-5*time.Minute))
	r = run(append([]string{"setup", "--max-jobs", "5"}, backend...)...)
	assertLastLineError(t, r, "stack e2e is locked by alice@bobs-laptop (pid 4242), since ")
	if !strings.Contains(r.stderr, "wait for it to end, or pass --unlock if it is dead") || len(fakeOps(t, h.fakeLog)) != before {
		t.Errorf("a live lock was not respected:\n%s", r.stderr)
	}
	if _, err := os.Stat(live); err != nil {
		t.Errorf("the live lock was removed: %v", err)
	}
	// --unlock asks; without a terminal and without --yes, the answer is no.
	r = run(append([]string{"setup", "--max-jobs", "5", "--unlock"}, backend...)...)
	assertLastLineError(t, r, "is locked by alice@bobs-laptop")
	r = run(append([]string{"setup", "--max-jobs", "5", "--unlock", "--yes"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "removed on request (--unlock)") {
		t.Errorf("setup --unlock --yes (%d):\n%s", r.code, r.stderr)
	}

	// A setup killed while creating the table left it in AWS but not in the
	// state: it is imported, not created again ("already exists").
	interrupt(t, h, state, "aws:dynamodb/table:Table")
	before = count(fakeOps(t, h.fakeLog), "create", "aws:dynamodb/table:Table")
	r = run(append([]string{"setup", "--max-jobs", "5"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "aws:dynamodb/table:Table") || !strings.Contains(r.stderr, "named replicator-e2e-jobs, imported") ||
		count(fakeOps(t, h.fakeLog), "create", "aws:dynamodb/table:Table") != before {
		t.Errorf("setup after one killed while creating the table (%d):\n%s", r.code, r.stderr)
	}

	// A setup killed during the AMI build: the build went on in AWS, and is
	// imported rather than started again. (Image Builder is not in moto: a
	// stub answers ListImageBuildVersions.)
	imageARN := interrupt(t, h, state, "aws:imagebuilder/image:Image")
	stub := imageBuilderStub(t, imageARN, "AVAILABLE", "2026.11.20")
	before = count(fakeOps(t, h.fakeLog), "create", "aws:imagebuilder/image:Image")
	r = h.run(t, []string{"AWS_ENDPOINT_URL_IMAGEBUILDER=" + stub}, append([]string{"setup", "--max-jobs", "5"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "the build finished, imported") || count(fakeOps(t, h.fakeLog), "create", "aws:imagebuilder/image:Image") != before {
		t.Errorf("setup after one killed during the AMI build (%d):\n%s", r.code, r.stderr)
	}

	// Issue 22, 2: Amazon releases a new Amazon Linux: setup builds the
	// worker image again (OS patches, newer client tools); its recipe's
	// version follows the parent's. --rebuild-image builds it again with
	// nothing changed.
	newer := []string{"AWS_ENDPOINT_URL_IMAGEBUILDER=" + imageBuilderStub(t, "", "", "2026.12.01")}
	before = count(fakeOps(t, h.fakeLog), "create", "aws:imagebuilder/image:Image")
	r = h.run(t, newer, append([]string{"setup", "--max-jobs", "5"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "built on Amazon Linux 2023 (arm64) 2026.12.01") ||
		count(fakeOps(t, h.fakeLog), "create", "aws:imagebuilder/image:Image") != before+1 {
		t.Errorf("setup after a new parent image did not rebuild the worker image (%d):\n%s", r.code, r.stderr)
	}
	r = h.run(t, newer, append([]string{"setup", "--max-jobs", "5"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "No changes") {
		t.Errorf("setup again on the same parent changed something (%d):\n%s", r.code, r.stderr)
	}
	r = h.run(t, newer, append([]string{"setup", "--max-jobs", "5", "--rebuild-image"}, backend...)...)
	if r.code != 0 || count(fakeOps(t, h.fakeLog), "create", "aws:imagebuilder/image:Image") != before+2 {
		t.Errorf("setup --rebuild-image did not rebuild the worker image (%d):\n%s", r.code, r.stderr)
	}

	// Teardown refuses while a job runs...
	ctx := context.Background()
	jobs := store.New(s.Clients.DynamoDB, "replicator-e2e-jobs")
	provisionTable(t, s, "replicator-e2e-jobs")
	now := time.Now().UTC()
	job := &remote.Job{ID: remote.NewID(), Owner: "arn:aws:iam::123456789012:user/alice", Command: "init", Status: remote.Queued, CreatedAt: now, UpdatedAt: now}
	if err := jobs.Create(ctx, job, store.Caps{Active: 10, PerOwner: 10}, nil); err != nil {
		t.Fatal(err)
	}
	deletes := count(fakeOps(t, h.fakeLog), "delete", "") // the replaced images'
	r = run(append([]string{"teardown", "--yes"}, backend...)...)
	assertLastLineError(t, r, "1 job(s) are queued or running: "+job.ID+" (queued); wait for them, cancel them (replicator jobs cancel ID), or pass --force")
	if count(fakeOps(t, h.fakeLog), "delete", "") != deletes {
		t.Fatalf("teardown deleted while refusing")
	}
	// ...and without --yes and a terminal, it does not wait for an answer.
	r = run(append([]string{"teardown", "--force"}, backend...)...)
	assertLastLineError(t, r, "teardown not confirmed: nothing was changed")
	if j, _ := jobs.Get(ctx, job.ID); j.Status != remote.Queued {
		t.Fatalf("an unconfirmed teardown touched the job: %s", j.Status)
	}

	// What AWS services and crashed jobs leave outside the state goes too:
	// Image Builder's log group, a job secret.
	if _, err := s.Clients.Logs.CreateLogGroup(ctx, &cloudwatchlogs.CreateLogGroupInput{LogGroupName: aws.String("/aws/imagebuilder/replicator-e2e-worker")}); err != nil {
		t.Fatal(err)
	}
	leftover := &secrets.Store{SM: s.Clients.SecretsManager, Stack: "e2e", Prefix: stacknames.Of("e2e").SecretPrefix()}
	if _, err := leftover.Create(ctx, "j-zzzzzzzzzzzzzzzz", remote.Secret{Source: "postgres://a", Target: "postgres://b"}); err != nil {
		t.Fatal(err)
	}
	// --force cancels the job, then everything goes.
	r = run(append([]string{"teardown", "--force", "--yes"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing of it remains billable") {
		t.Fatalf("teardown (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if j, _ := jobs.Get(ctx, job.ID); j.Status != remote.Cancelled {
		t.Errorf("job not cancelled by teardown --force: %s", j.Status)
	}
	if reg, _ := os.ReadFile(h.fakeState); string(reg) != "{}" {
		t.Errorf("resources left in the (stand-in) account: %s", reg)
	}
	groups, _ := s.Clients.Logs.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String("/aws/imagebuilder/replicator-e2e")})
	if len(groups.LogGroups) != 0 || !strings.Contains(r.stderr, "Deleted the log group /aws/imagebuilder/replicator-e2e-worker") {
		t.Errorf("Image Builder's log group left: %v\n%s", groups.LogGroups, r.stderr)
	}
	if ids, _ := leftover.List(ctx); len(ids) != 0 {
		t.Errorf("job secrets left: %v", ids)
	}
	if _, err := os.Stat(filepath.Join(h.configDir, "stacks", "e2e.json")); !os.IsNotExist(err) {
		t.Errorf("cached outputs left")
	}
	if files, _ := filepath.Glob(filepath.Join(state, ".pulumi", "stacks", "replicator", "e2e.json")); len(files) != 0 {
		t.Errorf("stack state left: %v", files)
	}
}

// The default backend is the S3 bucket and KMS key setup bootstraps (moto
// here). The pulumi CLI must get the region with it: with a profile that has
// none it would fail ("region is required"), with a profile in another region
// S3 would answer PermanentRedirect.
func TestSetupOnTheDefaultS3Backend(t *testing.T) {
	t.Parallel()
	s := platform(t)
	for _, tc := range []struct{ name, profile string }{
		{"profile without a region", "[default]\n"},
		{"profile in another region", "[default]\nregion = eu-west-1\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			h := newSetupHarness(t, s)
			profile := filepath.Join(h.dir, "aws-config")
			os.WriteFile(profile, []byte(tc.profile), 0o600)
			env := []string{"AWS_REGION=", "AWS_DEFAULT_REGION=", "AWS_CONFIG_FILE=" + profile}
			stack := "s3" + strings.ReplaceAll(strings.Fields(tc.name)[len(strings.Fields(tc.name))-1], "region", "r")
			r := h.run(t, env, "setup", "--region", "us-east-2", "--stack", stack)
			if r.code != 0 {
				t.Fatalf("setup (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
			if !strings.Contains(r.stderr, "state in s3://replicator-state-123456789012-us-east-2?region=us-east-2") {
				t.Errorf("backend:\n%s", r.stderr)
			}
			// The state is in the bucket of us-east-2.
			out, err := s3Client(t, s, "us-east-2").ListObjectsV2(context.Background(), &s3.ListObjectsV2Input{
				Bucket: aws.String("replicator-state-123456789012-us-east-2"), Prefix: aws.String(".pulumi/stacks/replicator/" + stack)})
			if err != nil || len(out.Contents) == 0 {
				t.Errorf("no state in the bucket: %v", err)
			}
			r = h.run(t, env, "teardown", "--region", "us-east-2", "--stack", stack, "--yes")
			if r.code != 0 {
				t.Fatalf("teardown (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
			}
		})
	}
}

// Mistakes a setup can make are refused before anything is deployed, each in
// one line with its fix.
func TestSetupRefusesBadOptions(t *testing.T) {
	t.Parallel()
	s := platform(t)
	h := newSetupHarness(t, s)
	ctx := context.Background()
	vpc, err := s.Clients.EC2.CreateVpc(ctx, &ec2.CreateVpcInput{CidrBlock: aws.String("10.77.0.0/16")})
	if err != nil {
		t.Fatal(err)
	}
	isolated, err := s.Clients.EC2.CreateSubnet(ctx, &ec2.CreateSubnetInput{VpcId: vpc.Vpc.VpcId, CidrBlock: aws.String("10.77.1.0/24")})
	if err != nil {
		t.Fatal(err)
	}
	backend := []string{"--backend", "file://" + t.TempDir()}
	for _, tc := range []struct {
		name string
		args []string
		want string
	}{
		{"x86 instance type", []string{"--instance-type", "c7i.large"}, `--instance-type: "c7i.large" is not arm64: the worker image runs on Graviton instance types only`},
		{"reserved stack name", []string{"--stack", "state"}, `stack name "state" is reserved`},
		{"too long a stack name", []string{"--stack", "abcdefghijklmnopqrstuvwxyz"}, "at most 24 characters"},
		{"build subnet with no way out", []string{"--build-subnet-id", aws.ToString(isolated.Subnet.SubnetId)},
			"has no route to the internet and no VPC endpoint for ec2messages, imagebuilder, s3, ssm, ssmmessages: the AMI build would hang for 90 minutes"},
		{"vpc without subnets", []string{"--vpc-id", aws.ToString(vpc.Vpc.VpcId)}, "needs --subnet-ids in that VPC"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			r := h.run(t, nil, append(append([]string{"setup"}, backend...), tc.args...)...)
			assertLastLineError(t, r, tc.want)
			if ops := fakeOps(t, h.fakeLog); len(ops) != 0 {
				t.Errorf("deployed although refused: %v", ops)
			}
		})
	}
}

// interrupt edits the stack's state as a setup killed while creating a
// resource of typ leaves it: the resource exists in AWS (the stand-in's
// registry), the state has it only as a pending create, and what depends on
// it was never created. It returns the resource's id.
func interrupt(t *testing.T, h *setupHarness, state, typ string) string {
	t.Helper()
	file := filepath.Join(state, ".pulumi", "stacks", "replicator", "e2e.json")
	raw, err := os.ReadFile(file)
	if err != nil {
		t.Fatal(err)
	}
	var st map[string]any
	if err := json.Unmarshal(raw, &st); err != nil {
		t.Fatal(err)
	}
	dep := st["checkpoint"].(map[string]any)["latest"].(map[string]any)
	resources := dep["resources"].([]any)
	var target map[string]any
	gone := map[string]bool{}
	for _, r := range resources {
		if m := r.(map[string]any); m["type"] == typ {
			target, gone[m["urn"].(string)] = m, true
		}
	}
	if target == nil {
		t.Fatalf("no %s in the state", typ)
	}
	// Everything that depends on it, transitively, was never created.
	var never []map[string]any
	for changed := true; changed; {
		changed = false
		for _, r := range resources {
			m := r.(map[string]any)
			if gone[m["urn"].(string)] {
				continue
			}
			deps, _ := m["dependencies"].([]any)
			for _, d := range deps {
				if gone[d.(string)] {
					gone[m["urn"].(string)], changed = true, true
					never = append(never, m)
					break
				}
			}
		}
	}
	var kept []any
	for _, r := range resources {
		if !gone[r.(map[string]any)["urn"].(string)] {
			kept = append(kept, r)
		}
	}
	dep["resources"] = kept
	pending := map[string]any{}
	for k, v := range target {
		if k != "id" && k != "outputs" {
			pending[k] = v
		}
	}
	dep["pending_operations"] = []any{map[string]any{"resource": pending, "type": "creating"}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
	// The stand-in's account: the dependents do not exist.
	var reg map[string]map[string]any
	rb, _ := os.ReadFile(h.fakeState)
	json.Unmarshal(rb, &reg)
	for _, m := range never {
		for k, e := range reg {
			if e["id"] == m["id"] && e["type"] == m["type"] {
				delete(reg, k)
			}
		}
	}
	rb, _ = json.Marshal(reg)
	os.WriteFile(h.fakeState, rb, 0o644)
	id, _ := target["id"].(string)
	return id
}

// imageBuilderStub answers ListImageBuildVersions with one build of arn in
// the given state, and GetImage with Amazon Linux at parentVersion. Image
// Builder is not in moto; this is the one AWS API the tests mock by hand
// (the devstack's gate answers GetImage with 2026.11.20).
func imageBuilderStub(t *testing.T, arn, status, parentVersion string) string {
	t.Helper()
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Content-Type", "application/json")
		switch r.URL.Path {
		case "/ListImageBuildVersions":
			fmt.Fprintf(w, `{"imageSummaryList":[{"arn":%q,"state":{"status":%q},"dateCreated":"2026-11-26T10:00:00.000Z"}]}`, arn, status)
		case "/GetImage":
			fmt.Fprintf(w, `{"image":{"version":%q}}`, parentVersion)
		default:
			w.WriteHeader(http.StatusNotFound)
		}
	}))
	t.Cleanup(srv.Close)
	return srv.URL
}

func provisionTable(t *testing.T, s interface {
	CreateTable(context.Context, string) error
}, name string) {
	t.Helper()
	if err := s.CreateTable(context.Background(), name); err != nil {
		t.Fatal(err)
	}
}

// assertLastLineError: the failure is the last line, after progress lines.
func assertLastLineError(t *testing.T, r result, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.stderr), "\n")
	if r.code == 0 || !strings.HasPrefix(lines[len(lines)-1], "error: ") || !strings.Contains(lines[len(lines)-1], want) {
		t.Errorf("want a failure ending with %q, got %d:\n%s", want, r.code, r.stderr)
	}
}

func s3Client(t *testing.T, s *devstack.Stack, region string) *s3.Client {
	t.Helper()
	cfg := s.Clients.AWS.Copy()
	cfg.Region = region
	return s3.NewFromConfig(cfg, func(o *s3.Options) { o.UsePathStyle = true })
}
