package remote

import (
	"errors"
	"os"
	"strings"
	"testing"
)

// Every invalid field of a submission is reported, each once, its problems
// joined rather than overwritten, in a stable order.
func TestEveryInvalidFieldIsReported(t *testing.T) {
	r := Request{Command: "sync", Source: "not a url", Target: "postgres://h/db", SourceForTarget: "::bad",
		Options: Options{Jobs: -1, DropExisting: true, Verify: true, SplitLargerThan: -7, InstanceType: "c7i.large", MaintenanceWorkMem: "lots"}}
	_, _, err := r.Validate(DefaultLimits())
	var fe FieldErrors
	if !errors.As(err, &fe) {
		t.Fatalf("%v", err)
	}
	for _, f := range []string{"source", "source_from_target", "options.jobs", "options.drop_existing", "options.verify",
		"options.split_tables_larger_than", "options.instance_type", "options.maintenance_work_mem"} {
		if fe[f] == "" {
			t.Errorf("%s not reported: %v", f, fe)
		}
	}
	if !strings.Contains(fe["options.instance_type"], "is not arm64") {
		t.Errorf("instance type: %q", fe["options.instance_type"])
	}
	first := err.Error()
	for i := 0; i < 20; i++ {
		_, _, again := r.Validate(DefaultLimits())
		if again.Error() != first {
			t.Fatalf("unstable order:\n%s\n%s", first, again.Error())
		}
	}
	if !strings.HasPrefix(first, "invalid job: options.drop_existing: ") {
		t.Errorf("not sorted by field: %s", first)
	}
	r = Request{Command: "init", Source: "postgres://h/a", Target: "postgres://h/b", SourceForTarget: "::bad"}
	_, _, err = r.Validate(DefaultLimits())
	if got := err.(FieldErrors)["source_from_target"]; !strings.Contains(got, "; applies to sync and init with sync") {
		t.Errorf("a field's second problem overwrote or lost the first: %q", got)
	}
}

// --replicate-ddl travels as "on" or "off", and only where it means
// something: a bad value or a job without sync is refused at submission.
func TestReplicateDDLOption(t *testing.T) {
	for _, tc := range []struct {
		command string
		o       Options
		want    string
	}{
		{"sync", Options{ReplicateDDL: "yes"}, `must be "on" or "off"`},
		{"init", Options{ReplicateDDL: "off"}, "applies to sync and init with sync"},
		{"sync", Options{ReplicateDDL: "on", Stop: true}, "--stop removes the schema change capture"},
		{"init", Options{ReplicateDDL: "on", Sync: true}, ""},
		{"sync", Options{ReplicateDDL: "off"}, ""},
	} {
		r := Request{Command: tc.command, Source: "postgres://h/a", Target: "postgres://h/b", Options: tc.o}
		_, _, err := r.Validate(DefaultLimits())
		got := ""
		if fe, ok := err.(FieldErrors); ok {
			got = fe["options.replicate_ddl"]
		}
		if tc.want == "" && got != "" || !strings.Contains(got, tc.want) {
			t.Errorf("%s %+v: %q, want %q", tc.command, tc.o, got, tc.want)
		}
	}
}

func TestInstanceTypes(t *testing.T) {
	for typ, ok := range map[string]bool{"c7g.large": true, "m7gd.2xlarge": true, "r8g.xlarge": true, "c6gn.4xlarge": true, "t4g.medium": true,
		"x2gd.large": true, "c8gb.xlarge": true,
		// Not arm64; not offered families (storage, accelerated, HPC); too
		// small, too large, metal.
		"c7i.large": false, "m5.large": false, "g4dn.xlarge": false, "p5.48xlarge": false, "large": false,
		"im4gn.large": false, "is4gen.xlarge": false, "g5g.xlarge": false, "hpc7g.4xlarge": false, "i8g.large": false,
		"t4g.nano": false, "c7g.8xlarge": false, "r8g.48xlarge": false, "c7g.metal": false} {
		if err := CheckInstanceType(typ, DefaultMaxInstanceSize); (err == nil) != ok {
			t.Errorf("%s: %v", typ, err)
		}
	}
	if err := CheckInstanceType("c7g.8xlarge", "8xlarge"); err != nil {
		t.Errorf("a raised limit: %v", err)
	}
	if err := CheckInstanceType("c7g.8xlarge", "4xlarge"); err == nil || !strings.Contains(err.Error(), "setup --max-instance-size") {
		t.Errorf("over the limit: %v", err)
	}
	for _, tc := range []struct {
		def, max string
		bytes    int64
		want     string
	}{
		{"c7g.large", "4xlarge", 0, "c7g.large"}, {"c7g.large", "4xlarge", 100 << 30, "c7g.xlarge"}, {"m7g.2xlarge", "4xlarge", 10 << 30, "m7g.2xlarge"},
		{"c7g.large", "4xlarge", 3 << 40, "c7g.4xlarge"}, {"r7g.8xlarge", "8xlarge", 3 << 40, "r7g.8xlarge"},
		{"c7g.large", "xlarge", 3 << 40, "c7g.xlarge"}, // the stack's limit caps the sizing
	} {
		if got := InstanceTypeFor(tc.def, tc.max, tc.bytes); got != tc.want {
			t.Errorf("InstanceTypeFor(%s, %s, %d) = %s, want %s", tc.def, tc.max, tc.bytes, got, tc.want)
		}
	}
}

// Rule: IAM's ec2:InstanceType condition on RunInstances is the allowlist's
// backstop, so its StringLike patterns must allow exactly the instance types
// the API accepts, among every instance type EC2 sells (testdata: the
// InstanceType enum of the EC2 service model), at every size limit.
func TestAllowlistAndIAMPatternsAgree(t *testing.T) {
	b, err := os.ReadFile("testdata/instance-types.txt")
	if err != nil {
		t.Fatal(err)
	}
	var all []string
	for _, l := range strings.Split(string(b), "\n") {
		if l = strings.TrimSpace(l); l != "" && !strings.HasPrefix(l, "#") {
			all = append(all, l)
		}
	}
	if len(all) < 500 {
		t.Fatalf("only %d instance types", len(all))
	}
	for _, max := range Sizes {
		patterns := InstanceTypePatterns(max)
		allowed := 0
		for _, typ := range all {
			api := CheckInstanceType(typ, max) == nil
			if iam := MatchesPatterns(typ, patterns); api != iam {
				t.Errorf("max %s: %s: API allows %v, IAM allows %v", max, typ, api, iam)
			}
			if api {
				allowed++
			}
		}
		if allowed == 0 {
			t.Errorf("max %s allows nothing", max)
		}
	}
	if got := len(strings.Join(InstanceTypePatterns("48xlarge"), `","`)); got > 1500 {
		t.Errorf("the patterns take %d characters of the role's 10,240-character inline policy quota", got)
	}
}

// Issue 22, 9: a NUL byte in a predicate is refused at submission (a 400),
// not retried by the worker for minutes.
func TestPredicateWithNULIsRefused(t *testing.T) {
	r := Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"}
	r.Filters.TableFilters = []string{"app.public.t:id > 0\x00"}
	_, _, err := r.Validate(DefaultLimits())
	var fe FieldErrors
	if !errors.As(err, &fe) || !strings.Contains(err.Error(), "NUL byte") {
		t.Fatalf("%v", err)
	}
}
