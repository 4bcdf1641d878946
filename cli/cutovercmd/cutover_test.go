package cutovercmd_test

import (
	"context"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/cutovercmd"
)

// cutover's flags reach its options, and flags that would do nothing are
// refused as usage errors before anything connects.
func TestCutoverFlags(t *testing.T) {
	base := []string{"--source", "postgres://u@127.0.0.1:1/db", "--target", "postgres://u@127.0.0.1:2/db"}
	f, out, errOut := cmdtest.Factory(nil)
	var got *cutovercmd.Options
	r := cmdtest.Run(t, f, out, errOut, cutovercmd.NewCmdCutover(f, func(_ context.Context, o *cutovercmd.Options) error { got = o; return nil }),
		append(base, "--reverse", "--max-lag", "3s", "--drain-timeout", "0s", "--sequence-margin", "50", "--then", "true")...)
	if r.Code != 0 || got == nil || !got.Reverse || got.MaxLag != 3*time.Second || got.DrainTimeout != 0 || got.SwitchTime != time.Minute || got.Then != "true" {
		t.Fatalf("options %+v (%d %s)", got, r.Code, r.Err)
	}
	o := got.JobOptions()
	if !o.Reverse || *o.MaxLagSeconds != 3 || *o.DrainTimeoutSeconds != 0 || o.SequenceMargin != 50 || o.Fence != "" {
		t.Errorf("job options %+v", o.Cutover)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(base, "--fence", "soft"), `--fence must be read-only or none, not "soft"`},
		{append(base, "--fence", "none", "--drain-timeout", "1s"), "--drain-timeout has no effect with --fence=none"},
		{append(base, "--max-lag", "0s"), "--max-lag and --switch-timeout must be above 0"},
		{append(base, "--sequence-margin", "-1"), "--sequence-margin must be 0 or more"},
		{append(base, "--dry-run", "--then", "true"), "--then has no effect with --dry-run"},
		{append(base, "--source-from-target", "postgres://u@h/db"), "--source-from-target is used only by --rollback --reverse"},
		{append(base, "--rollback", "--target-from-source", "postgres://u@h/db"), "--target-from-source is used only by --reverse"},
		{append(base, "--remote", "--then", "true"), "--then cannot be used with --remote"},
		{append(base, "--detach"), "--detach needs --remote"},
		{append(base, "--pg-bin", "/usr/bin"), "--pg-bin has no effect on cutover"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, cutovercmd.NewCmdCutover(f, nil), tc.args...).OneLineError(t, 2, tc.want)
	}
}
