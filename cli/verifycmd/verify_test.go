package verifycmd_test

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/verifycmd"
)

func TestVerifyFlags(t *testing.T) {
	base := []string{"--source", "postgres://u@127.0.0.1:1/db", "--target", "postgres://u@127.0.0.1:2/db"}
	f, out, errOut := cmdtest.Factory(nil)
	var got *verifycmd.Options
	r := cmdtest.Run(t, f, out, errOut, verifycmd.NewCmdVerify(f, func(_ context.Context, o *verifycmd.Options) error { got = o; return nil }),
		append(base, "-j", "6", "--exclude-tables", "shop.public.log", "--json")...)
	if r.Code != 0 || got == nil || got.Jobs != 6 || !got.JSON || got.Filters.Spec().ExcludeTables[0] != "shop.public.log" {
		t.Errorf("options %+v (%d %s)", got, r.Code, r.Err)
	}
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{append(base, "--jobs", "0"), 2, "--jobs must be at least 1"},
		{[]string{"--source", "postgres://u@h/db"}, 2, "--target is required"},
		{append(base, "--include-tables", `a."b`), 2, "unterminated"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, verifycmd.NewCmdVerify(f, nil), tc.args...).OneLineError(t, tc.code, tc.want)
	}
}
