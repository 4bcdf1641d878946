package platform

import (
	"encoding/json"
	"fmt"
	"os"
	"path/filepath"
	"reflect"
	"strings"
	"sync"
	"testing"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
	"github.com/replicatorhq/replicator/internal/remote/events"
)

// mocks stands in for the AWS provider: every resource is recorded with its
// inputs; outputs are the inputs plus plausible computed values.
type mocks struct {
	mu        sync.Mutex
	resources []res
	// Where the provider says the stack is (default us-east-1, aws).
	region, partition string
	invokes           []string
}

func (m *mocks) where() (string, string) {
	r, p := m.region, m.partition
	if r == "" {
		r = "us-east-1"
	}
	if p == "" {
		p = "aws"
	}
	return r, p
}

type res struct {
	Type, Name string
	Inputs     resource.PropertyMap
	Timeouts   string
	// Deps are the URNs the resource waits for (DependsOn and inputs).
	Deps []string
}

func (m *mocks) NewResource(args pulumi.MockResourceArgs) (string, resource.PropertyMap, error) {
	m.mu.Lock()
	r := res{Type: args.TypeToken, Name: args.Name, Inputs: args.Inputs}
	if args.RegisterRPC != nil && args.RegisterRPC.CustomTimeouts != nil {
		r.Timeouts = args.RegisterRPC.CustomTimeouts.Create
	}
	if args.RegisterRPC != nil {
		r.Deps = args.RegisterRPC.GetDependencies()
	}
	m.resources = append(m.resources, r)
	m.mu.Unlock()
	out := args.Inputs.Copy()
	region, partition := m.where()
	svc := strings.Split(args.TypeToken, ":")[1]
	out["arn"] = resource.NewStringProperty("arn:" + partition + ":" + strings.Split(svc, "/")[0] + ":" + region + ":123456789012:" + args.Name)
	out["name"] = resource.NewStringProperty(args.Name)
	switch args.TypeToken {
	case "aws:imagebuilder/image:Image":
		out["outputResources"] = resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{
			"amis": resource.NewArrayProperty([]resource.PropertyValue{resource.NewObjectProperty(resource.PropertyMap{
				"image": resource.NewStringProperty("ami-0123456789abcdef0"), "region": resource.NewStringProperty(region)})}),
		})})
	case "aws:apigatewayv2/stage:Stage":
		out["invokeUrl"] = resource.NewStringProperty("https://abc123.execute-api." + region + ".amazonaws.com/")
	case "aws:apigatewayv2/api:Api":
		out["executionArn"] = resource.NewStringProperty("arn:" + partition + ":execute-api:" + region + ":123456789012:abc123")
	case "aws:lambda/function:Function":
		out["invokeArn"] = resource.NewStringProperty("arn:" + partition + ":apigateway:" + region + ":lambda:path/fn")
	case "aws:kms/key:Key":
		out["keyId"] = resource.NewStringProperty("key-1")
	case "aws:s3/bucketV2:BucketV2":
		out["bucket"] = resource.NewStringProperty(args.Name + "-bucket")
	case "aws:cloudwatch/logGroup:LogGroup":
		out["arn"] = resource.NewStringProperty("arn:" + partition + ":logs:" + region + ":123456789012:log-group:" + args.Inputs["name"].StringValue() + ":*")
	case "aws:ec2/launchTemplate:LaunchTemplate":
		out["latestVersion"] = resource.NewNumberProperty(3)
	}
	return args.Name + "-id", out, nil
}

func (m *mocks) Call(args pulumi.MockCallArgs) (resource.PropertyMap, error) {
	region, partition := m.where()
	m.mu.Lock()
	m.invokes = append(m.invokes, args.Token)
	m.mu.Unlock()
	switch args.Token {
	case "aws:index/getRegion:getRegion":
		return resource.PropertyMap{"name": resource.NewStringProperty(region), "id": resource.NewStringProperty(region)}, nil
	case "aws:ec2/getVpc:getVpc":
		return resource.PropertyMap{"id": resource.NewStringProperty("vpc-default"), "default": resource.NewBoolProperty(true)}, nil
	case "aws:index/getCallerIdentity:getCallerIdentity":
		return resource.PropertyMap{"accountId": resource.NewStringProperty("123456789012"), "arn": resource.NewStringProperty("arn:aws:iam::123456789012:user/admin"),
			"userId": resource.NewStringProperty("AIDA"), "id": resource.NewStringProperty("123456789012")}, nil
	case "aws:index/getPartition:getPartition":
		return resource.PropertyMap{"partition": resource.NewStringProperty(partition), "dnsSuffix": resource.NewStringProperty("amazonaws.com"), "id": resource.NewStringProperty(partition)}, nil
	}
	return resource.PropertyMap{}, nil
}

func (m *mocks) of(typ string) []res {
	var out []res
	for _, r := range m.resources {
		if r.Type == typ {
			out = append(out, r)
		}
	}
	return out
}

func testConfig(t *testing.T) Config {
	dir := t.TempDir()
	for _, f := range []string{"lambda.zip", "worker"} {
		os.WriteFile(filepath.Join(dir, f), []byte("x"), 0o644)
	}
	return Config{Stack: "test", Version: "v1.2.3", LambdaZip: filepath.Join(dir, "lambda.zip"), WorkerBinary: filepath.Join(dir, "worker"),
		VPCID: "vpc-1", SubnetIDs: []string{"subnet-1", "subnet-2"}, SecurityGroupIDs: []string{"sg-1"}, MaxConcurrentJobs: 3,
		BuildSubnetID: "subnet-build", BuildVPCID: "vpc-build"}
}

func run(t *testing.T, cfg Config) *mocks {
	t.Helper()
	return runAt(t, cfg, &mocks{})
}

func runAt(t *testing.T, cfg Config, m *mocks) *mocks {
	t.Helper()
	if err := pulumi.RunErr(Program(cfg), pulumi.WithMocks("replicator", "test", m)); err != nil {
		t.Fatalf("program: %v", err)
	}
	return m
}

func one(t *testing.T, m *mocks, typ string) resource.PropertyMap {
	t.Helper()
	rs := m.of(typ)
	if len(rs) != 1 {
		t.Fatalf("%d %s, want 1", len(rs), typ)
	}
	return rs[0].Inputs
}

// workerGroups are the security groups the stack makes for its workers (the
// AMI build has its own, always).
func workerGroups(m *mocks) []res {
	var out []res
	for _, r := range m.of("aws:ec2/securityGroup:SecurityGroup") {
		if !strings.HasSuffix(r.Name, "-image-build") {
			out = append(out, r)
		}
	}
	return out
}

func TestEveryResourceAndItsProperties(t *testing.T) {
	m := run(t, testConfig(t))

	table := one(t, m, "aws:dynamodb/table:Table")
	if table["billingMode"].StringValue() != "PAY_PER_REQUEST" || !table["ttl"].ObjectValue()["enabled"].BoolValue() ||
		table["ttl"].ObjectValue()["attributeName"].StringValue() != "expires_at" ||
		!table["pointInTimeRecovery"].ObjectValue()["enabled"].BoolValue() || !table["serverSideEncryption"].ObjectValue()["enabled"].BoolValue() {
		t.Errorf("table: %v", table)
	}
	gsis := map[string]bool{}
	for _, g := range table["globalSecondaryIndexes"].ArrayValue() {
		gsis[g.ObjectValue()["name"].StringValue()] = true
	}
	if !gsis["by-owner"] || !gsis["active"] {
		t.Errorf("indexes %v", gsis)
	}

	fn := one(t, m, "aws:lambda/function:Function")
	if fn["runtime"].StringValue() != "provided.al2023" || fn["architectures"].ArrayValue()[0].StringValue() != "arm64" {
		t.Errorf("lambda %v", fn)
	}
	env := fn["environment"].ObjectValue()["variables"].ObjectValue()
	for _, k := range []string{"REPLICATOR_STACK", "REPLICATOR_PARTITION", "REPLICATOR_ACCOUNT_ID", "REPLICATOR_TABLE", "REPLICATOR_LAUNCH_TEMPLATE", "REPLICATOR_LOG_GROUP", "REPLICATOR_SECRET_PREFIX", "REPLICATOR_KMS_KEY_ID", "REPLICATOR_MAX_ACTIVE_JOBS", "REPLICATOR_WORKER_KEY"} {
		if _, ok := env[resource.PropertyKey(k)]; !ok {
			t.Errorf("lambda environment lacks %s", k)
		}
	}
	if env["REPLICATOR_MAX_ACTIVE_JOBS"].StringValue() != "3" {
		t.Errorf("max jobs %v", env["REPLICATOR_MAX_ACTIVE_JOBS"])
	}
	for _, lg := range m.of("aws:cloudwatch/logGroup:LogGroup") {
		if lg.Inputs["retentionInDays"].NumberValue() != 30 {
			t.Errorf("log group %s without retention", lg.Name)
		}
	}
	groups := map[string]bool{}
	for _, lg := range m.of("aws:cloudwatch/logGroup:LogGroup") {
		groups[lg.Inputs["name"].StringValue()] = true
	}
	// The stack owns Image Builder's log group too, so that teardown removes it.
	if !reflect.DeepEqual(groups, map[string]bool{"/replicator/test/jobs": true, "/aws/lambda/replicator-test-api": true, "/aws/imagebuilder/replicator-test-worker": true}) {
		t.Errorf("log groups %v", groups)
	}

	if api := one(t, m, "aws:apigatewayv2/api:Api"); api["protocolType"].StringValue() != "HTTP" {
		t.Errorf("api %v", api)
	}
	routes := m.of("aws:apigatewayv2/route:Route")
	if len(routes) != len(Routes) {
		t.Fatalf("%d routes", len(routes))
	}
	for _, r := range routes {
		if r.Inputs["authorizationType"].StringValue() != "AWS_IAM" {
			t.Errorf("route %s is not AWS_IAM", r.Inputs["routeKey"].StringValue())
		}
	}
	rules := map[string]resource.PropertyMap{}
	for _, r := range m.of("aws:cloudwatch/eventRule:EventRule") {
		rules[r.Name] = r.Inputs
	}
	if rule := rules["replicator-test-reaper"]; rule == nil || rule["scheduleExpression"].StringValue() != "rate(1 minute)" {
		t.Errorf("reaper schedule %v", rule)
	}
	if rule := rules["replicator-test-notify"]; rule == nil || rule["eventPattern"].StringValue() != events.NotifyPattern("test") {
		t.Errorf("notify rule %v", rule)
	}
	if n := len(m.of("aws:cloudwatch/eventTarget:EventTarget")); n != 2 {
		t.Errorf("%d event targets, want the reaper's and the topic", n)
	}
	if n := len(m.of("aws:lambda/permission:Permission")); n != 2 {
		t.Errorf("%d lambda permissions, want API Gateway and EventBridge", n)
	}

	if k := one(t, m, "aws:kms/key:Key"); !k["enableKeyRotation"].BoolValue() {
		t.Errorf("key rotation off")
	}
	pab := one(t, m, "aws:s3/bucketPublicAccessBlock:BucketPublicAccessBlock")
	for _, f := range []string{"blockPublicAcls", "blockPublicPolicy", "ignorePublicAcls", "restrictPublicBuckets"} {
		if !pab[resource.PropertyKey(f)].BoolValue() {
			t.Errorf("bucket is not private: %s", f)
		}
	}
	if v := one(t, m, "aws:s3/bucketVersioningV2:BucketVersioningV2"); v["versioningConfiguration"].ObjectValue()["status"].StringValue() != "Enabled" {
		t.Errorf("versioning %v", v)
	}
	one(t, m, "aws:s3/bucketServerSideEncryptionConfigurationV2:BucketServerSideEncryptionConfigurationV2")
	if o := one(t, m, "aws:s3/bucketObjectv2:BucketObjectv2"); o["key"].StringValue() != "worker/v1.2.3/worker" {
		t.Errorf("worker object %v", o)
	}

	lt := one(t, m, "aws:ec2/launchTemplate:LaunchTemplate")
	if lt["metadataOptions"].ObjectValue()["httpTokens"].StringValue() != "required" {
		t.Errorf("IMDSv2 not required: %v", lt["metadataOptions"])
	}
	if lt["instanceInitiatedShutdownBehavior"].StringValue() != "terminate" {
		t.Errorf("shutdown does not terminate")
	}
	ebs := lt["blockDeviceMappings"].ArrayValue()[0].ObjectValue()["ebs"].ObjectValue()
	if ebs["encrypted"].StringValue() != "true" {
		t.Errorf("volume not encrypted")
	}
	if sgs := lt["vpcSecurityGroupIds"].ArrayValue(); len(sgs) != 1 || sgs[0].StringValue() != "sg-1" {
		t.Errorf("launch template security groups %v", sgs)
	}
	// Every subnet is the Lambda's to try, in order.
	if env["REPLICATOR_SUBNET_IDS"].StringValue() != "subnet-1,subnet-2" || env["REPLICATOR_DEFAULT_INSTANCE_TYPE"].StringValue() != "c7g.large" {
		t.Errorf("lambda network/instance settings: %v", env)
	}
	if n := len(workerGroups(m)); n != 0 {
		t.Errorf("%d security groups created although the user gave theirs", n)
	}

	img := m.of("aws:imagebuilder/image:Image")
	if len(img) != 1 || img[0].Timeouts != ImageCreateTimeout {
		t.Errorf("image build %+v (want a %s create timeout)", img, ImageCreateTimeout)
	}
	// Image tests on purpose: the component's test phase checks the idle worker.
	if tc := img[0].Inputs["imageTestsConfiguration"].ObjectValue(); !tc["imageTestsEnabled"].BoolValue() {
		t.Errorf("image tests %v", tc)
	}
	recipe := one(t, m, "aws:imagebuilder/imageRecipe:ImageRecipe")
	if !strings.Contains(recipe["parentImage"].StringValue(), "amazon-linux-2023-arm64") {
		t.Errorf("parent image %v", recipe["parentImage"])
	}
	if ic := one(t, m, "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration"); ic["instanceMetadataOptions"].ObjectValue()["httpTokens"].StringValue() != "required" {
		t.Errorf("image builder instances without IMDSv2")
	}
	dist := one(t, m, "aws:imagebuilder/distributionConfiguration:DistributionConfiguration")
	tags := dist["distributions"].ArrayValue()[0].ObjectValue()["amiDistributionConfiguration"].ObjectValue()["amiTags"].ObjectValue()
	if tags["replicator:stack"].StringValue() != "test" {
		t.Errorf("AMIs are not tagged with the stack (teardown could not find them): %v", tags)
	}
	if one(t, m, "aws:imagebuilder/component:Component")["data"].StringValue() != componentYAML {
		t.Errorf("component is not image/component.yaml")
	}
}

// policies returns the role policies the program attaches, by resource name.
func policies(t *testing.T, m *mocks) map[string]Policy {
	out := map[string]Policy{}
	for _, r := range m.of("aws:iam/rolePolicy:RolePolicy") {
		var p Policy
		if err := json.Unmarshal([]byte(r.Inputs["policy"].StringValue()), &p); err != nil {
			t.Fatalf("%s: %v", r.Name, err)
		}
		out[r.Name] = p
	}
	return out
}

// Resource "*" only for actions that have no resource-level permissions.
var noResourceLevel = map[string]bool{"ec2:DescribeInstances": true, "cloudwatch:PutMetricData": true}

func TestNoWildcardResourceWhereANarrowerARNExists(t *testing.T) {
	m := run(t, testConfig(t))
	ps := policies(t, m)
	if len(ps) != 2 {
		t.Fatalf("%d role policies", len(ps))
	}
	for name, p := range ps {
		for _, s := range p.Statement {
			for _, r := range s.Resource {
				if r == "*" {
					for _, a := range s.Action {
						if !noResourceLevel[a] {
							t.Errorf("%s %s: %s on *", name, s.Sid, a)
						}
					}
				}
			}
			for _, a := range s.Action {
				if strings.Contains(a, "*") {
					t.Errorf("%s %s: wildcard action %s", name, s.Sid, a)
				}
			}
		}
	}
}

// The platform guide's resource table states the API's routes: the count follows
// Routes (it said 5 when there were 6).
func TestReadmeCountsTheRoutes(t *testing.T) {
	b, err := os.ReadFile("../docs/guides/remote.md")
	if err != nil {
		t.Fatal(err)
	}
	want := fmt.Sprintf("API Gateway HTTP API `replicator-STACK`, %d routes", len(Routes))
	if !strings.Contains(string(b), want) {
		t.Errorf("docs/guides/remote.md should say %q", want)
	}
}
