package synccmd_test

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/synccmd"
)

// sync's flags reach its options, and flags that would do nothing are
// refused as usage errors before anything connects.
func TestSyncFlags(t *testing.T) {
	base := []string{"--source", "postgres://u@127.0.0.1:1/db", "--target", "postgres://u@127.0.0.1:2/db"}
	f, out, errOut := cmdtest.Factory(nil)
	var got *synccmd.Options
	r := cmdtest.Run(t, f, out, errOut, synccmd.NewCmdSync(f, func(_ context.Context, o *synccmd.Options) error { got = o; return nil }),
		append(base, "--replicate-ddl=false", "--replica-identity-full", "--sequences", "--include-databases", "shop")...)
	if r.Code != 0 || got == nil || got.ReplicateDDL != "off" || !got.ReplicaIdentityFull || !got.Sequences || got.Filters.Spec().IncludeDatabases[0] != "shop" {
		t.Fatalf("options %+v (%d %s)", got, r.Code, r.Err)
	}
	if o := got.JobOptions(); o.ReplicateDDL != "off" || !o.Sequences || o.Stop {
		t.Errorf("job options %+v", o)
	}
	f, out, errOut = cmdtest.Factory(nil)
	r = cmdtest.Run(t, f, out, errOut, synccmd.NewCmdSync(f, func(_ context.Context, o *synccmd.Options) error { got = o; return nil }),
		append(base, "--stop", "--force")...)
	if r.Code != 0 || !got.Stop || !got.Force {
		t.Errorf("--stop --force (stop without the drain): %+v (%d %s)", got, r.Code, r.Err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(base, "--stop", "--accept-gap"), "--accept-gap cannot be used with --stop"},
		{append(base, "--stop", "--replicate-ddl"), "--replicate-ddl cannot be used with --stop"},
		{append(base, "--state-dir", "/tmp/s"), "--state-dir has no effect on sync"},
		{append(base, "--pg-bin", "/usr/bin"), "--pg-bin has no effect on sync"},
		{append(base, "--detach"), "--detach needs --remote"},
		{append(base, "--replicate-ddl=maybe"), "want true or false"},
		{[]string{"--source", "postgres://u@h/db"}, "--target is required"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, synccmd.NewCmdSync(f, nil), tc.args...).OneLineError(t, 2, tc.want)
	}
}
