package teardowncmd_test

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/teardowncmd"
)

func TestTeardownFlags(t *testing.T) {
	f, out, errOut := cmdtest.Factory(nil)
	var got *teardowncmd.Options
	r := cmdtest.Run(t, f, out, errOut, teardowncmd.NewCmdTeardown(f, func(_ context.Context, o *teardowncmd.Options) error { got = o; return nil }),
		"--stack", "prod", "--region", "eu-west-1", "--force", "--purge", "-y", "--unlock")
	if r.Code != 0 || got == nil || got.Stack != "prod" || got.Region != "eu-west-1" || !got.Force || !got.Purge || !got.Yes || !got.Unlock {
		t.Errorf("options %+v (%d %s)", got, r.Code, r.Err)
	}
	f, out, errOut = cmdtest.Factory(nil)
	cmdtest.Run(t, f, out, errOut, teardowncmd.NewCmdTeardown(f, nil), "--purge", "--backend", "file:///tmp/x").
		OneLineError(t, 2, "--purge cannot be used with --backend")
}
