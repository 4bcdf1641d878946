package setupcmd_test

import (
	"context"
	"reflect"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/setupcmd"
)

func TestSetupFlags(t *testing.T) {
	f, out, errOut := cmdtest.Factory(nil)
	var got *setupcmd.Options
	r := cmdtest.Run(t, f, out, errOut, setupcmd.NewCmdSetup(f, func(_ context.Context, o *setupcmd.Options) error { got = o; return nil }),
		"--stack", "prod", "--region", "eu-west-1", "--subnet-ids", "subnet-a,subnet-b", "--security-group-ids", "sg-1",
		"--build-subnet-id", "subnet-build", "--instance-type", "m7g.large", "--max-jobs", "9", "--time-limit", "6h", "--unlock", "--yes",
		"--backend", "file:///tmp/state", "--notify-email", "dba@example.com", "--notify-email", "oncall@example.com",
		"--notify-webhook", "https://hooks.slack.com/services/T/B/X", "--api-rate-limit", "5")
	if r.Code != 0 || got == nil {
		t.Fatalf("%d %s", r.Code, r.Err)
	}
	want := setupcmd.Options{IO: got.IO, Version: "v0.0.0-test", Region: "eu-west-1", Stack: "prod", Backend: "file:///tmp/state",
		SubnetIDs: []string{"subnet-a", "subnet-b"}, SecurityGroupIDs: []string{"sg-1"}, BuildSubnetID: "subnet-build",
		InstanceType: "m7g.large", MaxJobs: 9, MaxJobsPerOwner: 2, TimeLimit: 6 * time.Hour, MaxTimeLimit: 7 * 24 * time.Hour,
		MaxInstanceSize: "4xlarge", EgressPorts: "5432,6432,6543", Unlock: true, Yes: true,
		NotifyEmails: []string{"dba@example.com", "oncall@example.com"}, NotifyHooks: []string{"https://hooks.slack.com/services/T/B/X"},
		APIRate: 5, APIBurst: 20, SyncLagAlarm: 15 * time.Minute}
	if !reflect.DeepEqual(*got, want) {
		t.Errorf("options\n%+v\nwant\n%+v", *got, want)
	}
	// Refused before anything reaches AWS.
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--instance-type", "c7i.large"}, `"c7i.large" is not arm64`},
		{[]string{"--stack", "Prod"}, "use lowercase letters, digits and dashes"},
		{[]string{"--stack", "state"}, "is reserved"},
		{[]string{"--max-jobs", "0"}, "--max-jobs must be at least 1"},
		{[]string{"--time-limit", "30s"}, "--time-limit must be at least 1m"},
		{[]string{"--max-instance-size", "huge"}, `--max-instance-size: "huge" is not a worker size`},
		{[]string{"--instance-type", "c7g.8xlarge"}, `"c7g.8xlarge" is larger than this platform allows (4xlarge at most)`},
		{[]string{"--instance-type", "p5.48xlarge"}, `"p5.48xlarge" is not arm64`},
		{[]string{"--instance-type", "g5g.xlarge"}, `"g5g.xlarge" is not offered`},
		{[]string{"--time-limit", "48h", "--max-time-limit", "24h"}, "--time-limit (48h0m0s) is over --max-time-limit (24h0m0s)"},
		{[]string{"--max-time-limit", "200h"}, "--max-time-limit is at most 168h0m0s"},
		{[]string{"--max-jobs", "3", "--max-jobs-per-owner", "4"}, "--max-jobs-per-owner 4 is over --max-jobs 3: it would have no effect"},
		{[]string{"--max-jobs-per-owner", "0"}, "--max-jobs-per-owner must be at least 1"},
		{[]string{"--egress-ports", "5432,http"}, `--egress-ports: "http" is not a TCP port`},
		{[]string{"--egress-ports", "5432,443"}, "443 is open to the workers for AWS's APIs"},
		{[]string{"--egress-ports", "5432", "--security-group-ids", "sg-1"}, "with --security-group-ids your groups decide"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, setupcmd.NewCmdSetup(f, nil), tc.args...).OneLineError(t, 2, tc.want)
	}
}
