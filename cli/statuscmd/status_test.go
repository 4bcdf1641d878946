package statuscmd_test

import (
	"context"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/statuscmd"
)

func TestStatusFlags(t *testing.T) {
	base := []string{"--source", "postgres://u@127.0.0.1:1/db", "--target", "postgres://u@127.0.0.1:2/db"}
	f, out, errOut := cmdtest.Factory(nil)
	var got *statuscmd.Options
	r := cmdtest.Run(t, f, out, errOut, statuscmd.NewCmdStatus(f, func(_ context.Context, o *statuscmd.Options) error { got = o; return nil }),
		append(base, "--watch", "--interval", "5s", "--json")...)
	if r.Code != 0 || got == nil || !got.Watch || got.Interval != 5*time.Second || !got.JSON {
		t.Errorf("options %+v (%d %s)", got, r.Code, r.Err)
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{append(base, "--interval", "5s"), "--interval needs --watch"},
		{append(base, "--watch", "--interval", "1ms"), "--interval must be at least 100ms"},
		// status reads whole databases: a table filter would do nothing.
		{append(base, "--include-tables", "orders"), "unknown flag: --include-tables"},
		{append(base, "--table-filter", "a.b.c:true"), "unknown flag: --table-filter"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, statuscmd.NewCmdStatus(f, nil), tc.args...).OneLineError(t, 2, tc.want)
	}
}
