package main_test

import (
	"bufio"
	"context"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/jobs"
	"github.com/replicatorhq/replicator/internal/jobstore"
)

// artifactsOverlay writes a go build -overlay file that makes
// platform/artifacts/{bootstrap,worker} read from the given files ("" for
// absent).
func artifactsOverlay(dir, bootstrap, worker string) (string, error) {
	root, err := filepath.Abs(filepath.Join("..", "..", "platform", "artifacts"))
	if err != nil {
		return "", err
	}
	b, _ := json.Marshal(map[string]map[string]string{"Replace": {
		filepath.Join(root, "bootstrap"): bootstrap, filepath.Join(root, "worker"): worker,
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

type fakeOp struct{ Op, Type, Name string }

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

// setup and teardown through the Automation API, for real: the pulumi CLI and
// engine, a file:// backend, offline. The AWS provider plugin cannot be fetched
// here, so a stand-in (internal/deploy/fakeaws) plays it; STS, EC2 and DynamoDB
// calls of the CLI itself go to moto.
func TestSetupAndTeardown(t *testing.T) {
	s := platform(t)
	dir := t.TempDir()
	plugins := filepath.Join(dir, "plugins")
	if out, err := exec.Command("go", "build", "-o", filepath.Join(plugins, "pulumi-resource-aws"), "../../internal/deploy/fakeaws").CombinedOutput(); err != nil {
		t.Fatalf("build the stand-in provider: %v\n%s", err, out)
	}
	art := filepath.Join(dir, "artifact")
	os.WriteFile(art, []byte("linux/arm64 stand-in"), 0o644)
	overlay, _ := artifactsOverlay(dir, art, art)
	withArtifacts := filepath.Join(dir, "replicator")
	if out, err := exec.Command("go", "build", "-overlay", overlay, "-o", withArtifacts, ".").CombinedOutput(); err != nil {
		t.Fatalf("build: %v\n%s", err, out)
	}
	fakeLog, state, configDir := filepath.Join(dir, "fakeaws.jsonl"), filepath.Join(dir, "state"), filepath.Join(dir, "config")
	os.MkdirAll(state, 0o755)
	env := append(s.CallerEnv("alice"),
		"PATH="+plugins+string(os.PathListSeparator)+os.Getenv("PATH"),
		"REPLICATOR_PULUMI_ROOT="+pulumiRoot(t), "PULUMI_HOME="+filepath.Join(dir, "pulumi-home"),
		"PULUMI_CONFIG_PASSPHRASE=", "FAKEAWS_LOG="+fakeLog, "REPLICATOR_CONFIG_DIR="+configDir, "REPLICATOR_API_URL=")
	run := func(args ...string) result {
		t.Helper()
		saved := bin
		bin = withArtifacts
		defer func() { bin = saved }()
		return replicator(t, env, args...)
	}
	backend := []string{"--backend", "file://" + state, "--stack", "e2e"}

	r := run(append([]string{"setup", "--max-jobs", "3", "--subnet-ids", "subnet-1", "--vpc-id", "vpc-1"}, backend...)...)
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
	ops := fakeOps(t, fakeLog)
	for typ, n := range map[string]int{"aws:dynamodb/table:Table": 1, "aws:lambda/function:Function": 1, "aws:apigatewayv2/route:Route": 5,
		"aws:imagebuilder/image:Image": 1, "aws:ec2/launchTemplate:LaunchTemplate": 1, "aws:iam/rolePolicy:RolePolicy": 2,
		"aws:cloudwatch/eventRule:EventRule": 1, "aws:kms/key:Key": 1, "aws:s3/bucketObjectv2:BucketObjectv2": 1} {
		if got := count(ops, "create", typ); got != n {
			t.Errorf("%d %s created, want %d", got, typ, n)
		}
	}
	cached, err := os.ReadFile(filepath.Join(configDir, "stacks", "e2e.json"))
	if err != nil || !strings.Contains(string(cached), `"api_url": "https://fakeapi.execute-api.us-east-1.amazonaws.com"`) {
		t.Errorf("outputs not cached: %v %s", err, cached)
	}

	// Again: nothing to do.
	r = run(append([]string{"setup", "--max-jobs", "3", "--subnet-ids", "subnet-1", "--vpc-id", "vpc-1"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "No changes") || len(fakeOps(t, fakeLog)) != len(ops) {
		t.Errorf("re-running setup changed something (%d):\n%s", r.code, r.stderr)
	}

	// A stale lock left by a killed setup is cleared.
	lockDir := filepath.Join(state, ".pulumi", "locks", "organization", "replicator", "e2e")
	os.MkdirAll(lockDir, 0o755)
	os.WriteFile(filepath.Join(lockDir, "0b3f2c1e-8d8e-4d5c-9c1a-1f2e3d4c5b6a.json"),
		[]byte(`{"pid":999999,"username":"ghost","hostname":"elsewhere","timestamp":"2026-01-01T00:00:00Z"}`), 0o644)
	r = run(append([]string{"setup", "--max-jobs", "4", "--subnet-ids", "subnet-1", "--vpc-id", "vpc-1"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "stale lock") || count(fakeOps(t, fakeLog), "update", "aws:lambda/function:Function") != 1 {
		t.Errorf("setup over a stale lock (%d):\n%s", r.code, r.stderr)
	}

	// Pending operations left by a setup killed mid-update are cleared.
	injectPendingOperation(t, env, state)
	r = run(append([]string{"setup", "--max-jobs", "4", "--subnet-ids", "subnet-1", "--vpc-id", "vpc-1"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "Recovering from an interrupted run: clearing 1 pending operation(s)") {
		t.Errorf("setup after a killed setup (%d):\n%s", r.code, r.stderr)
	}

	// Teardown refuses while a job runs...
	ctx := context.Background()
	store := jobstore.New(s.Clients.DynamoDB, "replicator-e2e-jobs")
	provisionTable(t, s, "replicator-e2e-jobs")
	now := time.Now().UTC()
	job := &jobs.Job{ID: jobs.NewID(), Owner: "arn:aws:iam::123456789012:user/alice", Command: "init", Status: jobs.Queued, CreatedAt: now, UpdatedAt: now}
	if err := store.Create(ctx, job, 10); err != nil {
		t.Fatal(err)
	}
	r = run(append([]string{"teardown", "--yes"}, backend...)...)
	assertLastLineError(t, r, "1 job(s) are queued or running: "+job.ID+" (queued); wait for them, cancel them (replicator jobs cancel ID), or pass --force")
	if count(fakeOps(t, fakeLog), "delete", "") != 0 {
		t.Fatalf("teardown deleted while refusing")
	}
	// ...and without --yes and a terminal, it does not wait for an answer.
	r = run(append([]string{"teardown", "--force"}, backend...)...)
	assertLastLineError(t, r, "teardown not confirmed: nothing was changed")
	if j, _ := store.Get(ctx, job.ID); j.Status != jobs.Queued {
		t.Fatalf("an unconfirmed teardown touched the job: %s", j.Status)
	}

	// --force cancels the job, then everything goes.
	r = run(append([]string{"teardown", "--force", "--yes"}, backend...)...)
	if r.code != 0 || !strings.Contains(r.stdout, "nothing of it remains billable") {
		t.Fatalf("teardown (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if j, _ := store.Get(ctx, job.ID); j.Status != jobs.Cancelled {
		t.Errorf("job not cancelled by teardown --force: %s", j.Status)
	}
	ops = fakeOps(t, fakeLog)
	if creates, deletes := count(ops, "create", ""), count(ops, "delete", ""); deletes != creates {
		t.Errorf("%d resources created, %d deleted", creates, deletes)
	}
	if _, err := os.Stat(filepath.Join(configDir, "stacks", "e2e.json")); !os.IsNotExist(err) {
		t.Errorf("cached outputs left")
	}
	if files, _ := filepath.Glob(filepath.Join(state, ".pulumi", "stacks", "replicator", "e2e.json")); len(files) != 0 {
		t.Errorf("stack state left: %v", files)
	}
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

// injectPendingOperation edits the stack's state file as a setup killed while
// creating a resource leaves it (a pending "creating" operation).
func injectPendingOperation(t *testing.T, env []string, state string) {
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
	res := dep["resources"].([]any)
	dep["pending_operations"] = []any{map[string]any{"resource": res[len(res)-1], "type": "creating"}}
	b, _ := json.Marshal(st)
	if err := os.WriteFile(file, b, 0o644); err != nil {
		t.Fatal(err)
	}
}
