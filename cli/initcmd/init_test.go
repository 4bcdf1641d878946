package initcmd_test

import (
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/initcmd"
)

// init --remote submits the job the flags describe and ends with the job's
// outcome; without a deployment, one line says so. No servers: the job API
// answers from memory (the end-to-end tests run the real one).
func TestInitRemoteSubmits(t *testing.T) {
	a := &cmdtest.API{}
	f, out, errOut := cmdtest.Factory(a)
	r := cmdtest.Run(t, f, out, errOut, initcmd.NewCmdInit(f, nil), "--source", "postgres://u:pw@127.0.0.1:1/postgres",
		"--target", "postgres://u:pw@127.0.0.1:2/postgres", "--remote", "--detach", "--include-databases", "shop",
		"--split-tables-larger-than", "0", "--no-resume", "--instance-type", "c7g.xlarge", "--time-limit", "90m")
	if r.Code != 0 || strings.TrimSpace(r.Out) != "j-aaaaaaaaaaaaaaaa" || len(a.Submitted) != 1 {
		t.Fatalf("%d %q %q", r.Code, r.Out, r.Err)
	}
	req := a.Submitted[0]
	o := req.Options
	if req.Command != "init" || req.Filters.IncludeDatabases[0] != "shop" || o.SplitLargerThan != -1 || !o.NoResume ||
		o.InstanceType != "c7g.xlarge" || o.TimeLimitMinutes != 90 {
		t.Errorf("request %+v", req)
	}
	if !strings.Contains(r.Err, "submitted job j-aaaaaaaaaaaaaaaa to https://api.test") {
		t.Errorf("stderr: %s", r.Err)
	}

	f, out, errOut = cmdtest.Factory(nil)
	cmdtest.Run(t, f, out, errOut, initcmd.NewCmdInit(f, nil), "--source", "postgres://h/a", "--target", "postgres://g/b", "--remote").
		OneLineError(t, 1, `no deployment "replicator" known here`)
	// --drop-existing with --remote asks before submitting; without a
	// terminal the answer is no.
	f, out, errOut = cmdtest.Factory(a)
	cmdtest.Run(t, f, out, errOut, initcmd.NewCmdInit(f, nil), "--source", "postgres://h/a", "--target", "postgres://g/b", "--remote", "--drop-existing").
		OneLineError(t, 1, "pass --yes to confirm")
	if len(a.Submitted) != 1 {
		t.Errorf("submitted without confirmation")
	}
}
