package platform

import (
	"encoding/json"
	"fmt"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/stacknames"

	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/pulumi"
)

// Each test here states an AWS rule the program must keep, checked offline
// against the Pulumi mocks.

// strings of every input, recursively.
func inputStrings(v resource.PropertyValue, out *[]string) {
	switch {
	case v.IsString():
		*out = append(*out, v.StringValue())
	case v.IsArray():
		for _, e := range v.ArrayValue() {
			inputStrings(e, out)
		}
	case v.IsObject():
		for _, e := range v.ObjectValue() {
			inputStrings(e, out)
		}
	}
}

// Rule: the region and partition come from the AWS provider (aws.GetRegion,
// aws.GetPartition), never from a us-east-1 fallback or a literal arn:aws. The
// plain pulumi CLI path sets no aws:region config (the provider reads
// AWS_REGION), and China and GovCloud are partitions of their own.
func TestRegionAndPartitionComeFromTheProvider(t *testing.T) {
	m := runAt(t, testConfig(t), &mocks{region: "cn-north-1", partition: "aws-cn"})
	for _, r := range m.resources {
		var all []string
		for _, v := range r.Inputs {
			inputStrings(v, &all)
		}
		for _, s := range all {
			if strings.Contains(s, "arn:aws:") || strings.Contains(s, "us-east-1") {
				t.Errorf("%s %s: %q is not in the provider's region and partition", r.Type, r.Name, s)
			}
		}
	}
	recipe := one(t, m, "aws:imagebuilder/imageRecipe:ImageRecipe")
	if got := recipe["parentImage"].StringValue(); got != "arn:aws-cn:imagebuilder:cn-north-1:aws:image/amazon-linux-2023-arm64/x.x.x" {
		t.Errorf("parent image %s", got)
	}
	fn := one(t, m, "aws:lambda/function:Function")
	if p := fn["environment"].ObjectValue()["variables"].ObjectValue()["REPLICATOR_PARTITION"].StringValue(); p != "aws-cn" {
		t.Errorf("the Lambda builds instance ARNs in partition %q", p)
	}
	dist := one(t, m, "aws:imagebuilder/distributionConfiguration:DistributionConfiguration")
	if r := dist["distributions"].ArrayValue()[0].ObjectValue()["region"].StringValue(); r != "cn-north-1" {
		t.Errorf("AMI distributed to %s", r)
	}
}

// nameRule is an AWS (or Terraform provider) limit on a physical name.
type nameRule struct {
	field   string // the input holding the name
	max     int
	pattern *regexp.Regexp
	// autonamed: without the field, the bridge names it logical-name + "-" +
	// 7 hex characters (pulumi-terraform-bridge AutoName).
	autonamed bool
	source    string
}

var nameRules = map[string]nameRule{
	"aws:s3/bucketV2:BucketV2":                                                 {field: "bucket", max: 63, pattern: regexp.MustCompile(`^[a-z0-9][a-z0-9.-]+[a-z0-9]$`), source: "S3 bucket naming rules: 3 to 63 lowercase characters"},
	"aws:dynamodb/table:Table":                                                 {field: "name", max: 255, pattern: regexp.MustCompile(`^[a-zA-Z0-9_.-]+$`), autonamed: true, source: "DynamoDB: table names 3 to 255 characters"},
	"aws:lambda/function:Function":                                             {field: "name", max: 64, pattern: regexp.MustCompile(`^[a-zA-Z0-9_-]+$`), autonamed: true, source: "Lambda: a function name alone is limited to 64 characters"},
	"aws:iam/role:Role":                                                        {field: "name", max: 64, pattern: regexp.MustCompile(`^[\w+=,.@-]+$`), autonamed: true, source: "IAM quotas: role names 64 characters"},
	"aws:iam/instanceProfile:InstanceProfile":                                  {field: "name", max: 128, autonamed: true, source: "IAM quotas: instance profile names 128 characters"},
	"aws:iam/rolePolicy:RolePolicy":                                            {field: "name", max: 128, autonamed: true, source: "IAM quotas: inline policy names 128 characters"},
	"aws:cloudwatch/eventRule:EventRule":                                       {field: "name", max: 64, pattern: regexp.MustCompile(`^[.\-_A-Za-z0-9]+$`), autonamed: true, source: "EventBridge PutRule: names 1 to 64 characters"},
	"aws:cloudwatch/eventTarget:EventTarget":                                   {field: "targetId", max: 64, autonamed: true, source: "EventBridge PutTargets: target ids up to 64 characters"},
	"aws:cloudwatch/logGroup:LogGroup":                                         {field: "name", max: 512, autonamed: true, source: "CloudWatch Logs: log group names 1 to 512 characters"},
	"aws:kms/alias:Alias":                                                      {field: "name", max: 256, pattern: regexp.MustCompile(`^alias/[a-zA-Z0-9/_-]+$`), source: "KMS: alias names 1 to 256 characters"},
	"aws:ec2/launchTemplate:LaunchTemplate":                                    {field: "name", max: 125, pattern: regexp.MustCompile(`^[a-zA-Z0-9().\-/_]+$`), autonamed: true, source: "EC2 launch template names up to 128 characters (the Terraform provider allows 125)"},
	"aws:ec2/securityGroup:SecurityGroup":                                      {field: "name", max: 255, autonamed: true, source: "EC2: security group names up to 255 characters"},
	"aws:apigatewayv2/api:Api":                                                 {field: "name", max: 128, autonamed: true, source: "API Gateway v2: API names up to 128 characters"},
	"aws:lambda/permission:Permission":                                         {field: "statementId", max: 100, autonamed: true, source: "Lambda AddPermission: statement ids up to 100 characters"},
	"aws:imagebuilder/component:Component":                                     {field: "name", max: 126, pattern: regexp.MustCompile(`^[-_A-Za-z0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z0-9]$`), source: "Image Builder: component names 1 to 126 characters (Terraform), pattern of the API"},
	"aws:imagebuilder/imageRecipe:ImageRecipe":                                 {field: "name", max: 128, pattern: regexp.MustCompile(`^[-_A-Za-z0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z0-9]$`), source: "Image Builder: recipe names 3 to 128 characters"},
	"aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration": {field: "name", max: 128, pattern: regexp.MustCompile(`^[-_A-Za-z0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z0-9]$`), source: "Image Builder: names 3 to 128 characters"},
	"aws:imagebuilder/distributionConfiguration:DistributionConfiguration":     {field: "name", max: 128, pattern: regexp.MustCompile(`^[-_A-Za-z0-9][-_A-Za-z0-9 ]{1,126}[-_A-Za-z0-9]$`), source: "Image Builder: names 3 to 128 characters"},
	"aws:sns/topic:Topic":                                                      {field: "name", max: 256, pattern: regexp.MustCompile(`^[A-Za-z0-9_-]+$`), source: "SNS CreateTopic: 1 to 256 letters, digits, hyphens and underscores"},
	"aws:cloudwatch/dashboard:Dashboard":                                       {field: "dashboardName", max: 255, pattern: regexp.MustCompile(`^[A-Za-z0-9_-]+$`), source: "CloudWatch PutDashboard: up to 255 of A-Z a-z 0-9 - _"},
	"aws:cloudwatch/metricAlarm:MetricAlarm":                                   {field: "name", max: 255, source: "CloudWatch PutMetricAlarm: alarm names 1 to 255 characters"},
	"aws:cloudwatch/eventConnection:EventConnection":                           {field: "name", max: 64, pattern: regexp.MustCompile(`^[.\-_A-Za-z0-9]+$`), source: "EventBridge CreateConnection: names 1 to 64 of [.-_A-Za-z0-9]"},
	"aws:cloudwatch/eventApiDestination:EventApiDestination":                   {field: "name", max: 64, pattern: regexp.MustCompile(`^[.\-_A-Za-z0-9]+$`), source: "EventBridge CreateApiDestination: names 1 to 64 of [.-_A-Za-z0-9]"},
}

// Rule: every generated AWS name fits its service's limit at the longest stack
// name setup accepts (24 characters), the longest region name (14) and a
// 12-digit account. Names the program leaves to Pulumi are the logical name,
// a dash and 7 hex characters; a bucket prefix may not exceed 37 characters.
func TestNamesFitAtTheLongestStackName(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stack = "abcdefghijklmnopqrstuvwx" // 24, the most stackRE allows
	cfg.SecurityGroupIDs, cfg.BuildSubnetID, cfg.BuildVPCID = nil, "subnet-build", "vpc-build"
	cfg.NotifyEmails = []string{"dba@example.com"}
	cfg.NotifyWebhooks = []string{"https://hooks.example.com/1", "https://hooks.example.com/2", "https://hooks.example.com/3", "https://hooks.example.com/4"}
	cfg.Defaults()
	if err := cfg.Validate(); err != nil {
		t.Fatal(err)
	}
	m := runAt(t, cfg, &mocks{region: "ap-southeast-2"})
	checked := map[string]bool{}
	for _, r := range m.resources {
		if p, ok := r.Inputs["bucketPrefix"]; ok && len(p.StringValue()) > 37 {
			t.Errorf("%s: bucketPrefix %q is over the 37 characters the AWS provider allows", r.Name, p.StringValue())
		}
		rule, ok := nameRules[r.Type]
		if !ok {
			continue
		}
		name := ""
		if v, ok := r.Inputs[resource.PropertyKey(rule.field)]; ok && v.IsString() {
			name = v.StringValue()
		} else if rule.autonamed {
			name = r.Name + "-0123abc"
		} else {
			t.Errorf("%s %s has no %s", r.Type, r.Name, rule.field)
			continue
		}
		checked[r.Type] = true
		if len(name) > rule.max {
			t.Errorf("%s: %q is %d characters, over %d (%s)", r.Type, name, len(name), rule.max, rule.source)
		}
		if rule.pattern != nil && !rule.pattern.MatchString(name) {
			t.Errorf("%s: %q does not match %s (%s)", r.Type, name, rule.pattern, rule.source)
		}
	}
	for typ := range nameRules {
		if !checked[typ] {
			t.Errorf("no %s was checked: the program no longer declares one, or the rule table is stale", typ)
		}
	}
	// The AMI name expands {{ imagebuilder:buildDate }} (a timestamp of about
	// 24 characters); Image Builder's output AMI names are 1 to 127 characters.
	dist := one(t, m, "aws:imagebuilder/distributionConfiguration:DistributionConfiguration")
	ami := dist["distributions"].ArrayValue()[0].ObjectValue()["amiDistributionConfiguration"].ObjectValue()["name"].StringValue()
	if n := len(strings.Replace(ami, "{{ imagebuilder:buildDate }}", "2026-11-26T23-08-39.000Z", 1)); n > 127 {
		t.Errorf("AMI name %q expands to %d characters", ami, n)
	}
	// Names written by hand elsewhere (devstack, teardown) use the same Names.
	if b := stacknames.Of(cfg.Stack).ArtifactsBucket("123456789012", "ap-southeast-2"); len(b) != 63 {
		t.Errorf("artifacts bucket %q: %d characters", b, len(b))
	}
}

// Rule: a region name too long for the artifacts bucket is refused up front.
func TestTooLongABucketNameIsRefused(t *testing.T) {
	cfg := testConfig(t)
	cfg.Stack = "abcdefghijklmnopqrstuvwx"
	m := &mocks{region: "ap-southeast-10"} // 15 characters: no such region today
	err := runErr(cfg, m)
	if err == nil || !strings.Contains(err.Error(), "over S3's 63 characters") {
		t.Errorf("got %v", err)
	}
}

// Rule: Image Builder components and recipes are immutable per name and
// version, and every one of their inputs forces a replacement (created before
// the old one is deleted). A changed component.yaml must therefore carry a new
// version, and so must the recipe that uses it; each version part must be
// below 2^30.
func TestImageVersionsFollowTheirContent(t *testing.T) {
	semver := regexp.MustCompile(`^(\d+)\.(\d+)\.(\d+)$`)
	a, b := ComponentVersion(componentYAML), ComponentVersion(componentYAML+"\n# changed\n")
	if a == b || a != ComponentVersion(componentYAML) {
		t.Errorf("component versions %s and %s", a, b)
	}
	parent := "arn:aws:imagebuilder:us-east-1:aws:image/amazon-linux-2023-arm64/x.x.x"
	ra, rb := recipeVersion(a, parent), recipeVersion(b, parent)
	if ra == rb {
		t.Errorf("the recipe keeps version %s when its component changes", ra)
	}
	for _, v := range []string{a, b, ra, rb} {
		m := semver.FindStringSubmatch(v)
		if m == nil {
			t.Fatalf("%q is not major.minor.patch", v)
		}
		for _, part := range m[1:] {
			if n, _ := strconv.ParseUint(part, 10, 64); n > 1<<30-1 {
				t.Errorf("%s: part %d over 2^30-1", v, n)
			}
		}
	}
	m := run(t, testConfig(t))
	comp := one(t, m, "aws:imagebuilder/component:Component")
	recipe := one(t, m, "aws:imagebuilder/imageRecipe:ImageRecipe")
	if comp["version"].StringValue() != a || recipe["version"].StringValue() != recipeVersion(a, parent) {
		t.Errorf("program versions: component %v, recipe %v", comp["version"], recipe["version"])
	}
}

// Rule: RunInstances without a Version uses the template's default version
// (the first, unless changed), so the stack keeps the default current and
// tells the Lambda the version it deployed.
func TestLaunchesUseTheCurrentTemplateVersion(t *testing.T) {
	m := run(t, testConfig(t))
	lt := one(t, m, "aws:ec2/launchTemplate:LaunchTemplate")
	if !lt["updateDefaultVersion"].BoolValue() {
		t.Errorf("updateDefaultVersion is off: the default stays at version 1")
	}
	env := one(t, m, "aws:lambda/function:Function")["environment"].ObjectValue()["variables"].ObjectValue()
	if env["REPLICATOR_LAUNCH_TEMPLATE_VERSION"].StringValue() != "3" || env["REPLICATOR_LAUNCH_TEMPLATE"].StringValue() != "replicator-test-worker" {
		t.Errorf("the Lambda launches from %v version %v", env["REPLICATOR_LAUNCH_TEMPLATE"], env["REPLICATOR_LAUNCH_TEMPLATE_VERSION"])
	}
}

// Rule: without subnets the workers go to the default VPC; without security
// groups the stack makes one with no inbound rule in the workers' VPC. The
// AMI build always has its own subnet and outbound-only group (issue 22, 3):
// given none, the build instance got the default VPC's default group, which
// CIS / Security Hub EC2.2 leave without rules, and never reached SSM.
func TestNetworks(t *testing.T) {
	cfg := testConfig(t)
	cfg.VPCID, cfg.SubnetIDs, cfg.SecurityGroupIDs = "", nil, nil
	m := run(t, cfg)
	sgs := workerGroups(m)
	if len(sgs) != 1 || sgs[0].Inputs["vpcId"].StringValue() != "vpc-default" || sgs[0].Inputs.HasValue("ingress") {
		t.Errorf("worker security group: %+v", sgs)
	}
	ic := one(t, m, "aws:imagebuilder/infrastructureConfiguration:InfrastructureConfiguration")
	if ic["subnetId"].StringValue() != "subnet-build" || len(ic["securityGroupIds"].ArrayValue()) != 1 {
		t.Errorf("build network %v", ic)
	}
	var build []res
	for _, r := range m.of("aws:ec2/securityGroup:SecurityGroup") {
		if strings.HasSuffix(r.Name, "-image-build") {
			build = append(build, r)
		}
	}
	if len(build) != 1 || build[0].Inputs["vpcId"].StringValue() != "vpc-build" || build[0].Inputs.HasValue("ingress") ||
		len(build[0].Inputs["egress"].ArrayValue()) != 1 {
		t.Errorf("build security group %+v", build)
	}

	cfg = testConfig(t)
	cfg.BuildSubnetID, cfg.BuildVPCID = "", ""
	if err := pulumi.RunErr(Program(cfg), pulumi.WithMocks("replicator", "test", &mocks{})); err == nil || !strings.Contains(err.Error(), "the AMI build needs a subnet") {
		t.Errorf("a config without a build subnet: %v", err)
	}
}

func statementsWith(p Policy, action string) []Statement {
	var out []Statement
	for _, s := range p.Statement {
		for _, a := range s.Action {
			if a == action {
				out = append(out, s)
			}
		}
	}
	return out
}

func condition(s Statement, op, key string) string {
	v, _ := s.Condition[op][key]
	b, _ := json.Marshal(v)
	return strings.Trim(string(b), `"`)
}

// Rules of least privilege, as IAM can enforce them:
//   - RunInstances creates instances and volumes only from the stack's launch
//     template (ec2:LaunchTemplate) and only with the stack's worker tags in
//     the request (aws:RequestTag);
//   - the Lambda terminates only instances tagged as the stack's workers;
//   - a worker reads only the secret tagged with its own instance
//     (ec2:SourceInstanceARN, which may be a policy variable in a Condition
//     value but never in a Resource);
//   - a worker has no EC2 rights (it ends its instance by powering off);
//   - every ARN is in the provider's partition.
func TestPoliciesAreLeastPrivilege(t *testing.T) {
	m := runAt(t, testConfig(t), &mocks{partition: "aws-us-gov", region: "us-gov-west-1"})
	ps := policies(t, m)
	lambda, worker := ps["replicator-test-api"], ps["replicator-test-worker"]
	if len(lambda.Statement) == 0 || len(worker.Statement) == 0 {
		t.Fatalf("policies %v", ps)
	}
	for _, s := range statementsWith(lambda, "ec2:RunInstances") {
		for _, r := range s.Resource {
			if strings.Contains(r, ":instance/") || strings.Contains(r, ":volume/") {
				if condition(s, "ArnEquals", "ec2:LaunchTemplate") == "" ||
					condition(s, "StringEquals", "aws:RequestTag/replicator:stack") != "test" ||
					condition(s, "StringEquals", "aws:RequestTag/replicator:role") != "worker" {
					t.Errorf("RunInstances on %s without the launch template and tag conditions: %+v", r, s)
				}
			}
		}
	}
	for _, s := range statementsWith(lambda, "ec2:TerminateInstances") {
		if condition(s, "StringEquals", "ec2:ResourceTag/replicator:stack") != "test" {
			t.Errorf("the Lambda may terminate other stacks' instances: %+v", s)
		}
	}
	for _, s := range statementsWith(lambda, "secretsmanager:CreateSecret") {
		if condition(s, "StringEquals", "aws:RequestTag/replicator:stack") != "test" {
			t.Errorf("secrets may be created without the stack tag: %+v", s)
		}
	}
	for _, s := range worker.Statement {
		for _, a := range s.Action {
			if strings.HasPrefix(a, "ec2:") {
				t.Errorf("the worker has %s", a)
			}
			if strings.HasPrefix(a, "secretsmanager:") && condition(s, "StringEquals", "secretsmanager:ResourceTag/replicator:instance") != "${ec2:SourceInstanceARN}" {
				t.Errorf("the worker may use any job's secret: %+v", s)
			}
		}
	}
	for name, p := range ps {
		for _, s := range p.Statement {
			for _, r := range s.Resource {
				if strings.Contains(r, "${") {
					t.Errorf("%s %s: policy variable in a Resource (%s)", name, s.Sid, r)
				}
				if strings.HasPrefix(r, "arn:") && !strings.HasPrefix(r, "arn:aws-us-gov:") {
					t.Errorf("%s %s: %s is not in the provider's partition", name, s.Sid, r)
				}
			}
		}
	}
}

func runErr(cfg Config, m *mocks) error {
	return pulumi.RunErr(Program(cfg), pulumi.WithMocks("replicator", "test", m))
}

func lambdaEnv(t *testing.T, m *mocks) resource.PropertyMap {
	t.Helper()
	return one(t, m, "aws:lambda/function:Function")["environment"].ObjectValue()["variables"].ObjectValue()
}

// Rule: ec2:InstanceType is a condition key of RunInstances' instance
// resource only; the volume, network interface, subnet, security group and
// image have none, and a StringLike on a key absent from the request context
// does not match, which would deny every launch. So the instance, and only
// it, is conditioned on the allowlist's patterns up to --max-instance-size:
// a bug in the API's own check cannot start a p5.48xlarge.
func TestLaunchesAreLimitedToTheAllowedInstanceTypes(t *testing.T) {
	cfg := testConfig(t)
	cfg.MaxInstanceSize, cfg.DefaultInstanceType = "2xlarge", "c7g.large"
	m := run(t, cfg)
	lambda := policies(t, m)["replicator-test-api"]
	var patterns []string
	for _, s := range statementsWith(lambda, "ec2:RunInstances") {
		v, has := s.Condition["StringLike"]["ec2:InstanceType"]
		for _, r := range s.Resource {
			if onInstance := strings.Contains(r, ":instance/"); onInstance != has {
				t.Errorf("%s: resource %s, ec2:InstanceType condition %v", s.Sid, r, has)
			}
		}
		if has {
			for _, p := range v.([]any) {
				patterns = append(patterns, p.(string))
			}
		}
	}
	if !slices.Equal(patterns, remote.InstanceTypePatterns("2xlarge")) {
		t.Fatalf("instance type patterns %v", patterns)
	}
	for typ, ok := range map[string]bool{"c7g.large": true, "r8g.2xlarge": true, "c7g.4xlarge": false, "p5.48xlarge": false, "g5g.xlarge": false} {
		if remote.MatchesPatterns(typ, patterns) != ok {
			t.Errorf("IAM allows %s: %v, want %v", typ, !ok, ok)
		}
	}
	env := lambdaEnv(t, m)
	for k, want := range map[string]string{"REPLICATOR_MAX_INSTANCE_SIZE": "2xlarge", "REPLICATOR_MAX_JOBS_PER_OWNER": "2",
		"REPLICATOR_MAX_TIME_LIMIT_MINUTES": "10080"} {
		if got := env[resource.PropertyKey(k)].StringValue(); got != want {
			t.Errorf("%s = %q, want %q", k, got, want)
		}
	}
}

// Rule: the security group the stack creates lets workers reach HTTPS (AWS's
// APIs: security groups do not filter instance metadata or the Amazon DNS
// server) and the database ports, nothing else, unless --egress-ports all;
// the API is told the ports so that a job naming another one is refused at
// submission rather than timing out. With the user's own groups, it is told
// nothing.
func TestWorkerEgress(t *testing.T) {
	rules := func(m *mocks) []string {
		var out []string
		groups := workerGroups(m)
		if len(groups) != 1 {
			t.Fatalf("%d worker security groups", len(groups))
		}
		for _, e := range groups[0].Inputs["egress"].ArrayValue() {
			o := e.ObjectValue()
			out = append(out, fmt.Sprintf("%s %v-%v", o["protocol"].StringValue(), o["fromPort"].NumberValue(), o["toPort"].NumberValue()))
		}
		return out
	}
	cfg := testConfig(t)
	cfg.SecurityGroupIDs = nil
	m := run(t, cfg)
	if got := rules(m); !slices.Equal(got, []string{"tcp 443-443", "tcp 5432-5432", "tcp 6432-6432", "tcp 6543-6543"}) {
		t.Errorf("egress %v", got)
	}
	if got := lambdaEnv(t, m)["REPLICATOR_EGRESS_PORTS"].StringValue(); got != "5432,6432,6543" {
		t.Errorf("the API is told ports %q", got)
	}

	cfg = testConfig(t)
	cfg.SecurityGroupIDs, cfg.EgressAllPorts = nil, true
	m = run(t, cfg)
	if got := rules(m); !slices.Equal(got, []string{"-1 0-0"}) {
		t.Errorf("egress with all ports %v", got)
	}
	if got := lambdaEnv(t, m)["REPLICATOR_EGRESS_PORTS"].StringValue(); got != "" {
		t.Errorf("all ports, yet the API is told %q", got)
	}
	if got := lambdaEnv(t, run(t, testConfig(t)))["REPLICATOR_EGRESS_PORTS"].StringValue(); got != "" {
		t.Errorf("the user's security groups, yet the API is told %q", got)
	}
}

// Rule: a Lambda run ends at its timeout, so a job still without its secret
// after the reaper's submit timeout is one whose submission stopped: the
// timeout must exceed the API Lambda's.
func TestSubmitTimeoutExceedsTheLambdas(t *testing.T) {
	fn := one(t, run(t, testConfig(t)), "aws:lambda/function:Function")
	lambdaTimeout := time.Duration(fn["timeout"].NumberValue()) * time.Second
	if lambdaTimeout <= 0 || awsenv.DefaultSubmitTimeout <= lambdaTimeout {
		t.Errorf("submit timeout %s, Lambda timeout %s", awsenv.DefaultSubmitTimeout, lambdaTimeout)
	}
}

// Rule (issue 22, 4): the image build waits for its role's policy
// attachments: the build instance needs SSM and Image Builder's own policy
// from its first minute, and an instance profile exists before them.
func TestImageBuildWaitsForItsPolicies(t *testing.T) {
	m := run(t, testConfig(t))
	img := m.of("aws:imagebuilder/image:Image")
	if len(img) != 1 {
		t.Fatalf("%d images", len(img))
	}
	n := 0
	for _, att := range m.of("aws:iam/rolePolicyAttachment:RolePolicyAttachment") {
		if !strings.Contains(att.Name, "-image-builder-") {
			continue
		}
		n++
		found := false
		for _, d := range img[0].Deps {
			found = found || strings.HasSuffix(d, "::"+att.Name)
		}
		if !found {
			t.Errorf("the image build does not wait for %s: %v", att.Name, img[0].Deps)
		}
	}
	if n != 2 {
		t.Errorf("%d policy attachments of the build role, want 2", n)
	}
}
