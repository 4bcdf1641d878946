package root_test

import (
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/root"
)

// Every command's usage errors print one way: one "error: ..." line with the
// hint, exit 2; failures exit 1; never cobra's own "Error:".
func TestErrorsPrintOneWay(t *testing.T) {
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"frobnicate"}, 2, `unknown command "frobnicate" for "replicator"`},
		{[]string{"init", "--bogus"}, 2, "unknown flag: --bogus"},
		{[]string{"init", "--jobs", "many"}, 2, `invalid argument "many" for "-j, --jobs"`},
		{[]string{"sync", "--source"}, 2, "flag needs an argument: --source"},
		{[]string{"verify", "extra"}, 2, `unknown command "extra"`},
		{[]string{"help", "initt"}, 2, `unknown help topic "initt"`},
		{[]string{"help", "jobs", "shw"}, 2, `unknown help topic "jobs shw"`},
		{[]string{"validate", "--source", "postgres://h/db"}, 2, "--target is required"},
		{[]string{"status", "--watch", "--interval", "1ms", "--source", "postgres://h/a", "--target", "postgres://g/b"}, 2, "--interval must be at least 100ms"},
		{[]string{"jobs", "show", "x"}, 2, `"x" is not a job id`},
		{[]string{"jobs", "list"}, 1, `no deployment "replicator" known here`},
		{[]string{"setup", "--instance-type", "m5.large"}, 2, "is not arm64"},
		{[]string{"teardown", "--purge", "--backend", "file:///x"}, 2, "--purge cannot be used with --backend"},
		{[]string{"init", "--detach", "--source", "postgres://h/a", "--target", "postgres://g/b"}, 2, "--detach needs --remote"},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			f, out, errOut := cmdtest.Factory(nil)
			r := cmdtest.Run(t, f, out, errOut, root.NewCmdRoot(f), tc.args...)
			r.OneLineError(t, tc.code, tc.want)
			if strings.Contains(r.Err, "Error:") {
				t.Errorf("cobra printed its own error:\n%s", r.Err)
			}
			if tc.code == 2 && !strings.HasSuffix(strings.TrimSpace(r.Err), "(see replicator --help)") {
				t.Errorf("a usage error without the hint: %s", r.Err)
			}
		})
	}
}

func TestVersionAndHelp(t *testing.T) {
	f, out, errOut := cmdtest.Factory(nil)
	r := cmdtest.Run(t, f, out, errOut, root.NewCmdRoot(f), "--version")
	if r.Code != 0 || !strings.Contains(r.Out, "v0.0.0-test") {
		t.Errorf("--version: %d %q %q", r.Code, r.Out, r.Err)
	}
	f, out, errOut = cmdtest.Factory(nil)
	r = cmdtest.Run(t, f, out, errOut, root.NewCmdRoot(f))
	if r.Code != 0 || !strings.Contains(r.Out, "Available Commands") {
		t.Errorf("no arguments: %d %q", r.Code, r.Out)
	}
	f, out, errOut = cmdtest.Factory(nil)
	r = cmdtest.Run(t, f, out, errOut, root.NewCmdRoot(f), "help", "jobs", "show")
	if r.Code != 0 || !strings.Contains(r.Out, "replicator jobs show") || r.Err != "" {
		t.Errorf("help jobs show: %d %q %q", r.Code, r.Out, r.Err)
	}
}
