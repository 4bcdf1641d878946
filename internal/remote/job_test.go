package remote

import (
	"errors"
	"strings"
	"testing"
)

// Every invalid field of a submission is reported, each once, its problems
// joined rather than overwritten, in a stable order.
func TestEveryInvalidFieldIsReported(t *testing.T) {
	r := Request{Command: "sync", Source: "not a url", Target: "postgres://h/db", SourceForTarget: "::bad",
		Options: Options{Jobs: -1, DropExisting: true, Verify: true, SplitLargerThan: -7, InstanceType: "c7i.large", MaintenanceWorkMem: "lots"}}
	_, _, err := r.Validate()
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
		_, _, again := r.Validate()
		if again.Error() != first {
			t.Fatalf("unstable order:\n%s\n%s", first, again.Error())
		}
	}
	if !strings.HasPrefix(first, "invalid job: options.drop_existing: ") {
		t.Errorf("not sorted by field: %s", first)
	}
	r = Request{Command: "init", Source: "postgres://h/a", Target: "postgres://h/b", SourceForTarget: "::bad"}
	_, _, err = r.Validate()
	if got := err.(FieldErrors)["source_from_target"]; !strings.Contains(got, "; applies to sync and init with sync") {
		t.Errorf("a field's second problem overwrote or lost the first: %q", got)
	}
}

func TestInstanceTypes(t *testing.T) {
	for typ, ok := range map[string]bool{"c7g.large": true, "m7gd.2xlarge": true, "r8g.xlarge": true, "c6gn.4xlarge": true, "t4g.small": true,
		"x2gd.large": true, "im4gn.large": true, "c7i.large": false, "m5.large": false, "g4dn.xlarge": false, "p5.48xlarge": false, "large": false} {
		if err := CheckInstanceType(typ); (err == nil) != ok {
			t.Errorf("%s: %v", typ, err)
		}
	}
	for _, tc := range []struct {
		def   string
		bytes int64
		want  string
	}{
		{"c7g.large", 0, "c7g.large"}, {"c7g.large", 100 << 30, "c7g.xlarge"}, {"m7g.2xlarge", 10 << 30, "m7g.2xlarge"},
		{"c7g.large", 3 << 40, "c7g.4xlarge"}, {"r7g.8xlarge", 3 << 40, "r7g.8xlarge"},
	} {
		if got := InstanceTypeFor(tc.def, tc.bytes); got != tc.want {
			t.Errorf("InstanceTypeFor(%s, %d) = %s, want %s", tc.def, tc.bytes, got, tc.want)
		}
	}
}
