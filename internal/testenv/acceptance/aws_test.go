// Package acceptance runs the whole platform against a real AWS account:
// setup, remote jobs between two RDS databases it creates, a worker killed
// mid-copy, cancel, sync, a second setup that changes nothing, teardown
// --purge, and a final scan for anything of the stack left behind.
//
// It runs only with REPLICATOR_AWS_ACCEPTANCE=1 and AWS credentials (go tool
// task test:aws); everywhere else it compiles and skips. It costs a few cents
// (see the README).
package acceptance

import (
	"context"
	"crypto/rand"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	ec2types "github.com/aws/aws-sdk-go-v2/service/ec2/types"
	"github.com/aws/aws-sdk-go-v2/service/rds"
	rdstypes "github.com/aws/aws-sdk-go-v2/service/rds/types"
	"github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi"
	tagtypes "github.com/aws/aws-sdk-go-v2/service/resourcegroupstaggingapi/types"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"
	smtypes "github.com/aws/aws-sdk-go-v2/service/secretsmanager/types"
	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Enabled is the variable that turns the test on.
const Enabled = "REPLICATOR_AWS_ACCEPTANCE"

type account struct {
	cfg    aws.Config
	region string
	stack  string
	bin    string
	env    []string
}

func setupAccount(t *testing.T) *account {
	if os.Getenv(Enabled) != "1" {
		t.Skipf("set %s=1 (and AWS credentials) to run against a real AWS account: go tool task test:aws", Enabled)
	}
	ctx := context.Background()
	cfg, err := config.LoadDefaultConfig(ctx)
	if err != nil || cfg.Region == "" {
		t.Fatalf("AWS configuration (set AWS_REGION): %v", err)
	}
	b := make([]byte, 4)
	rand.Read(b)
	a := &account{cfg: cfg, region: cfg.Region, stack: "acc-" + hex.EncodeToString(b)}
	a.bin = build(t)
	a.env = append(os.Environ(), "REPLICATOR_CONFIG_DIR="+t.TempDir(), "AWS_REGION="+cfg.Region)
	return a
}

// build makes a replicator embedding the linux/arm64 Lambda and worker, as
// go tool task build does.
func build(t *testing.T) string {
	t.Helper()
	root, _ := filepath.Abs("../../..")
	cmd := exec.Command("go", "tool", "task", "build")
	cmd.Dir = root
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go tool task build: %v\n%s", err, out)
	}
	return filepath.Join(root, "bin", "replicator")
}

func (a *account) run(t *testing.T, timeout time.Duration, args ...string) (string, string, error) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), timeout)
	defer cancel()
	cmd := exec.CommandContext(ctx, a.bin, args...)
	cmd.Env = a.env
	var out, errOut strings.Builder
	cmd.Stdout, cmd.Stderr = &out, io.MultiWriter(&errOut, testWriter{t})
	err := cmd.Run()
	return out.String(), errOut.String(), err
}

type testWriter struct{ t *testing.T }

func (w testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// database is an RDS PostgreSQL instance the test creates and removes.
type database struct {
	id, host, password string
}

func (d *database) url(db string) string {
	return fmt.Sprintf("postgres://replicator:%s@%s:5432/%s?sslmode=require", d.password, d.host, db)
}

// databases creates two db.t4g.micro instances (the source with logical
// replication on), reachable from this machine and from the default VPC.
func (a *account) databases(t *testing.T) (src, dst *database) {
	t.Helper()
	ctx := context.Background()
	r := rds.NewFromConfig(a.cfg)
	e := ec2.NewFromConfig(a.cfg)
	vpcs, err := e.DescribeVpcs(ctx, &ec2.DescribeVpcsInput{Filters: []ec2types.Filter{{Name: aws.String("is-default"), Values: []string{"true"}}}})
	if err != nil || len(vpcs.Vpcs) == 0 {
		t.Fatalf("the acceptance test needs a default VPC: %v", err)
	}
	ip := publicIP(t)
	sg, err := e.CreateSecurityGroup(ctx, &ec2.CreateSecurityGroupInput{GroupName: aws.String(a.stack + "-db"), Description: aws.String("replicator acceptance databases"),
		VpcId: vpcs.Vpcs[0].VpcId})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 30; i++ { // until the instances using it are gone
			if _, err := e.DeleteSecurityGroup(context.Background(), &ec2.DeleteSecurityGroupInput{GroupId: sg.GroupId}); err == nil {
				return
			}
			time.Sleep(20 * time.Second)
		}
		t.Errorf("security group %s left", aws.ToString(sg.GroupId))
	})
	for _, cidr := range []string{ip + "/32", aws.ToString(vpcs.Vpcs[0].CidrBlock)} {
		if _, err := e.AuthorizeSecurityGroupIngress(ctx, &ec2.AuthorizeSecurityGroupIngressInput{GroupId: sg.GroupId, IpProtocol: aws.String("tcp"),
			FromPort: aws.Int32(5432), ToPort: aws.Int32(5432), CidrIp: aws.String(cidr)}); err != nil {
			t.Fatal(err)
		}
	}
	pg := a.stack + "-logical"
	if _, err := r.CreateDBParameterGroup(ctx, &rds.CreateDBParameterGroupInput{DBParameterGroupName: aws.String(pg),
		DBParameterGroupFamily: aws.String("postgres16"), Description: aws.String("replicator acceptance: logical replication")}); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		for i := 0; i < 30; i++ {
			if _, err := r.DeleteDBParameterGroup(context.Background(), &rds.DeleteDBParameterGroupInput{DBParameterGroupName: aws.String(pg)}); err == nil {
				return
			}
			time.Sleep(20 * time.Second)
		}
	})
	if _, err := r.ModifyDBParameterGroup(ctx, &rds.ModifyDBParameterGroupInput{DBParameterGroupName: aws.String(pg),
		Parameters: []rdstypes.Parameter{{ParameterName: aws.String("rds.logical_replication"), ParameterValue: aws.String("1"), ApplyMethod: rdstypes.ApplyMethodPendingReboot}}}); err != nil {
		t.Fatal(err)
	}
	create := func(name, group string) *database {
		pw := make([]byte, 16)
		rand.Read(pw)
		d := &database{id: a.stack + "-" + name, password: hex.EncodeToString(pw)}
		in := &rds.CreateDBInstanceInput{DBInstanceIdentifier: aws.String(d.id), DBInstanceClass: aws.String("db.t4g.micro"), Engine: aws.String("postgres"),
			EngineVersion: aws.String("16"), AllocatedStorage: aws.Int32(20), MasterUsername: aws.String("replicator"), MasterUserPassword: aws.String(d.password),
			PubliclyAccessible: aws.Bool(true), VpcSecurityGroupIds: []string{aws.ToString(sg.GroupId)}, BackupRetentionPeriod: aws.Int32(0),
			StorageEncrypted: aws.Bool(true), Tags: []rdstypes.Tag{{Key: aws.String("replicator:acceptance"), Value: aws.String(a.stack)}}}
		if group != "" {
			in.DBParameterGroupName = aws.String(group)
		}
		if _, err := r.CreateDBInstance(ctx, in); err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() {
			r.DeleteDBInstance(context.Background(), &rds.DeleteDBInstanceInput{DBInstanceIdentifier: aws.String(d.id), SkipFinalSnapshot: aws.Bool(true),
				DeleteAutomatedBackups: aws.Bool(true)})
			rds.NewDBInstanceDeletedWaiter(r).Wait(context.Background(), &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(d.id)}, 30*time.Minute)
		})
		return d
	}
	src, dst = create("src", pg), create("dst", "")
	for _, d := range []*database{src, dst} {
		out, err := rds.NewDBInstanceAvailableWaiter(r).WaitForOutput(ctx, &rds.DescribeDBInstancesInput{DBInstanceIdentifier: aws.String(d.id)}, 40*time.Minute)
		if err != nil {
			t.Fatalf("%s: %v", d.id, err)
		}
		d.host = aws.ToString(out.DBInstances[0].Endpoint.Address)
	}
	return src, dst
}

func publicIP(t *testing.T) string {
	t.Helper()
	resp, err := http.Get("https://checkip.amazonaws.com")
	if err != nil {
		t.Fatalf("this machine's public address: %v", err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return strings.TrimSpace(string(b))
}

func exec1(t *testing.T, url, sql string) {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, url)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	if _, err := conn.Exec(ctx, sql); err != nil {
		t.Fatalf("%v\n%s", err, sql)
	}
}

type jobView struct {
	ID, Status, InstanceID, Error string
	Attempts                      int
}

func (a *account) job(t *testing.T, id string) jobView {
	t.Helper()
	out, _, err := a.run(t, time.Minute, "jobs", "show", id, "--json", "--stack", a.stack)
	if err != nil {
		t.Fatal(err)
	}
	var j struct {
		ID         string `json:"id"`
		Status     string `json:"status"`
		InstanceID string `json:"instance_id"`
		Error      string `json:"error"`
		Attempts   int    `json:"attempts"`
	}
	json.Unmarshal([]byte(out), &j)
	return jobView{ID: j.ID, Status: j.Status, InstanceID: j.InstanceID, Error: j.Error, Attempts: j.Attempts}
}

func (a *account) wait(t *testing.T, id string, timeout time.Duration, cond func(jobView) bool) jobView {
	t.Helper()
	deadline := time.Now().Add(timeout)
	for time.Now().Before(deadline) {
		if j := a.job(t, id); cond(j) {
			return j
		}
		time.Sleep(15 * time.Second)
	}
	t.Fatalf("job %s: condition not met in %s", id, timeout)
	return jobView{}
}

func TestAWSAcceptance(t *testing.T) {
	a := setupAccount(t)
	ctx := context.Background()
	tornDown := false
	t.Cleanup(func() {
		if !tornDown {
			a.run(t, time.Hour, "teardown", "--stack", a.stack, "--force", "--yes", "--purge")
		}
	})

	// 1. Setup of a fresh stack.
	if _, _, err := a.run(t, 2*time.Hour, "setup", "--stack", a.stack); err != nil {
		t.Fatalf("setup: %v", err)
	}
	src, dst := a.databases(t)
	exec1(t, src.url("postgres"), "CREATE DATABASE shop")
	exec1(t, src.url("shop"), `CREATE TABLE orders (id bigint PRIMARY KEY, note text);
		INSERT INTO orders SELECT g, repeat(md5(g::text), 8) FROM generate_series(1, 2000000) g;
		CREATE TABLE items (id serial PRIMARY KEY, name text UNIQUE); INSERT INTO items (name) SELECT 'i' || g FROM generate_series(1, 1000) g;`)
	common := []string{"--stack", a.stack, "--source", src.url("postgres"), "--target", dst.url("postgres"), "--include-databases", "shop", "--no-roles"}

	// 2. init --remote with verify.
	if _, stderr, err := a.run(t, time.Hour, append([]string{"init", "--remote", "--verify"}, common...)...); err != nil {
		t.Fatalf("init --remote: %v\n%s", err, stderr)
	}

	// 3. A worker killed mid-copy: the reaper relaunches, the copy resumes.
	out, _, err := a.run(t, 10*time.Minute, append([]string{"init", "--remote", "--detach", "--drop-existing", "--yes", "--split-tables-larger-than", "50MB"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	id := strings.TrimSpace(out)
	j := a.wait(t, id, 15*time.Minute, func(j jobView) bool { return j.Status == "running" })
	time.Sleep(20 * time.Second)
	if _, err := ec2.NewFromConfig(a.cfg).TerminateInstances(ctx, &ec2.TerminateInstancesInput{InstanceIds: []string{j.InstanceID}}); err != nil {
		t.Fatal(err)
	}
	j = a.wait(t, id, 40*time.Minute, func(j jobView) bool {
		return j.Status == "succeeded" || j.Status == "failed" || j.Status == "cancelled"
	})
	if j.Status != "succeeded" || j.Attempts < 2 {
		t.Fatalf("after a killed worker: %+v", j)
	}
	if _, stderr, err := a.run(t, time.Hour, "verify", "--source", src.url("postgres"), "--target", dst.url("postgres"), "--include-databases", "shop"); err != nil {
		t.Fatalf("verify after the resumed copy: %v\n%s", err, stderr)
	}

	// 4. Cancel.
	out, _, err = a.run(t, 10*time.Minute, append([]string{"init", "--remote", "--detach", "--drop-existing", "--yes"}, common...)...)
	if err != nil {
		t.Fatal(err)
	}
	id = strings.TrimSpace(out)
	a.wait(t, id, 15*time.Minute, func(j jobView) bool { return j.Status == "running" })
	if _, _, err := a.run(t, time.Minute, "jobs", "cancel", id, "--stack", a.stack); err != nil {
		t.Fatal(err)
	}
	if j := a.wait(t, id, 10*time.Minute, func(j jobView) bool { return j.Status == "cancelled" }); j.Status != "cancelled" {
		t.Fatalf("cancel: %+v", j)
	}

	// 5. init --sync --remote, then sync --stop.
	if _, stderr, err := a.run(t, time.Hour, append([]string{"init", "--remote", "--drop-existing", "--yes", "--sync"}, common...)...); err != nil {
		t.Fatalf("init --sync --remote: %v\n%s", err, stderr)
	}
	exec1(t, src.url("shop"), "INSERT INTO items (name) VALUES ('after the copy')")
	time.Sleep(30 * time.Second)
	if _, stderr, err := a.run(t, 30*time.Minute, "sync", "--remote", "--stop", "--sequences", "--stack", a.stack,
		"--source", src.url("postgres"), "--target", dst.url("postgres"), "--include-databases", "shop"); err != nil {
		t.Fatalf("sync --remote --stop: %v\n%s", err, stderr)
	}

	// 6. A second setup changes nothing.
	_, stderr, err := a.run(t, 2*time.Hour, "setup", "--stack", a.stack)
	if err != nil || !strings.Contains(stderr, "No changes") {
		t.Errorf("second setup: %v\n%s", err, stderr)
	}

	// 7. Teardown --purge, then nothing of the stack is left.
	if _, stderr, err := a.run(t, time.Hour, "teardown", "--stack", a.stack, "--yes", "--purge"); err != nil {
		t.Fatalf("teardown: %v\n%s", err, stderr)
	}
	tornDown = true
	a.scan(t)
}

// scan fails on anything of the stack that remains: tagged resources (KMS
// keys pending deletion and terminated instances aside), AMIs and
// snapshots, log groups, secrets. What AWS lists lags what it did (the
// tagging API shows a deleted resource for minutes, a terminated instance
// for an hour), so the scan is repeated until it comes back empty, for up
// to 5 minutes.
func (a *account) scan(t *testing.T) {
	t.Helper()
	ctx := context.Background()
	left, err := untilEmpty(ctx, 5*time.Minute, 20*time.Second, func() ([]string, error) { return a.leftovers(ctx) })
	if err != nil {
		t.Fatal(err)
	}
	for _, l := range left {
		t.Errorf("left behind: %s", l)
	}
}

// untilEmpty calls list until it returns nothing or wait has passed, and
// returns its last answer.
func untilEmpty(ctx context.Context, wait, every time.Duration, list func() ([]string, error)) ([]string, error) {
	deadline := time.Now().Add(wait)
	for {
		left, err := list()
		if err != nil || len(left) == 0 || time.Now().After(deadline) {
			return left, err
		}
		select {
		case <-ctx.Done():
			return left, ctx.Err()
		case <-time.After(every):
		}
	}
}

// leftovers is one pass of the scan.
func (a *account) leftovers(ctx context.Context) ([]string, error) {
	var left []string
	n := stacknames.Of(a.stack)
	e := ec2.NewFromConfig(a.cfg)
	tags := resourcegroupstaggingapi.NewFromConfig(a.cfg)
	p := resourcegroupstaggingapi.NewGetResourcesPaginator(tags, &resourcegroupstaggingapi.GetResourcesInput{
		TagFilters: []tagtypes.TagFilter{{Key: aws.String(stacknames.TagStack), Values: []string{a.stack}}}})
	for p.HasMorePages() {
		page, err := p.NextPage(ctx)
		if err != nil {
			return nil, err
		}
		for _, r := range page.ResourceTagMappingList {
			arn := aws.ToString(r.ResourceARN)
			if strings.Contains(arn, ":kms:") {
				continue // scheduled for deletion: AWS keeps keys 7 days at least
			}
			if i := strings.Index(arn, ":instance/"); i >= 0 && instanceGone(ctx, e, arn[i+len(":instance/"):]) {
				continue // terminated: listed for an hour, billed for nothing
			}
			left = append(left, arn)
		}
	}
	// A failed call fails the scan: it must never read as "none left".
	imgs, err := e.DescribeImages(ctx, &ec2.DescribeImagesInput{Owners: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("tag:" + stacknames.TagStack), Values: []string{a.stack}}}})
	if err != nil {
		return nil, fmt.Errorf("describe images: %w", err)
	}
	for _, i := range imgs.Images {
		left = append(left, "AMI "+aws.ToString(i.ImageId))
	}
	snaps, err := e.DescribeSnapshots(ctx, &ec2.DescribeSnapshotsInput{OwnerIds: []string{"self"}, Filters: []ec2types.Filter{{Name: aws.String("description"), Values: []string{"*" + n.Image() + "*"}}}})
	if err != nil {
		return nil, fmt.Errorf("describe snapshots: %w", err)
	}
	for _, s := range snaps.Snapshots {
		left = append(left, "snapshot "+aws.ToString(s.SnapshotId))
	}
	lg := cloudwatchlogs.NewFromConfig(a.cfg)
	for _, prefix := range []string{"/replicator/" + a.stack + "/", n.FunctionLogGroup(), n.ImageLogGroup()} {
		out, err := lg.DescribeLogGroups(ctx, &cloudwatchlogs.DescribeLogGroupsInput{LogGroupNamePrefix: aws.String(prefix)})
		if err != nil {
			return nil, fmt.Errorf("describe log groups: %w", err)
		}
		for _, g := range out.LogGroups {
			left = append(left, "log group "+aws.ToString(g.LogGroupName))
		}
	}
	sm := secretsmanager.NewFromConfig(a.cfg)
	secrets, err := sm.ListSecrets(ctx, &secretsmanager.ListSecretsInput{IncludePlannedDeletion: aws.Bool(false),
		Filters: []smtypes.Filter{{Key: smtypes.FilterNameStringTypeName, Values: []string{n.SecretPrefix()}}}})
	if err != nil {
		return nil, fmt.Errorf("list secrets: %w", err)
	}
	for _, s := range secrets.SecretList {
		left = append(left, "secret "+aws.ToString(s.Name))
	}
	return left, nil
}

// instanceGone reports whether an instance is terminated or terminating
// (or no longer known).
func instanceGone(ctx context.Context, e *ec2.Client, id string) bool {
	out, err := e.DescribeInstances(ctx, &ec2.DescribeInstancesInput{InstanceIds: []string{id}})
	if err != nil {
		return strings.Contains(err.Error(), "InvalidInstanceID.NotFound")
	}
	for _, r := range out.Reservations {
		for _, in := range r.Instances {
			if in.State != nil && in.State.Name != ec2types.InstanceStateNameTerminated && in.State.Name != ec2types.InstanceStateNameShuttingDown {
				return false
			}
		}
	}
	return true
}
