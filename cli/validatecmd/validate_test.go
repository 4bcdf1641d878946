package validatecmd_test

import (
	"context"
	"testing"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/validatecmd"
)

func TestValidateFlags(t *testing.T) {
	base := []string{"--source", "postgres://u@127.0.0.1:1/db", "--target", "postgres://u@127.0.0.1:2/db"}
	for _, tc := range []struct {
		name string
		args []string
		code int
		want string                          // the error line
		opts func(*validatecmd.Options) bool // checks the options run gets
	}{
		{"flags to options", append(base, "--sync", "--jobs", "8", "--index-jobs", "3", "--include-databases", "shop", "--json", "--pg-bin", "/opt/pg"), 0, "",
			func(o *validatecmd.Options) bool {
				return o.Sync && o.Jobs == 8 && o.IndexJobs == 3 && o.JSON && o.Endpoints.PGBin == "/opt/pg" && o.Filters.Spec().IncludeDatabases[0] == "shop"
			}},
		{"jobs", append(base, "--jobs", "-1"), 2, "--jobs and --index-jobs must be positive", nil},
		{"index jobs", append(base, "--index-jobs", "-2"), 2, "--jobs and --index-jobs must be positive", nil},
		{"extra argument", append(base, "now"), 2, `unknown command "now"`, nil},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, out, errOut := cmdtest.Factory(nil)
			var got *validatecmd.Options
			r := cmdtest.Run(t, f, out, errOut, validatecmd.NewCmdValidate(f, func(_ context.Context, o *validatecmd.Options) error { got = o; return nil }), tc.args...)
			if tc.want != "" {
				r.OneLineError(t, tc.code, tc.want)
				return
			}
			if r.Code != 0 || got == nil || !tc.opts(got) {
				t.Errorf("options %+v (%d %s)", got, r.Code, r.Err)
			}
		})
	}
	// Without the run hook: input errors are one line, before any connection.
	for _, tc := range []struct {
		args []string
		code int
		want string
	}{
		{[]string{"--target", "postgres://u@h/db"}, 2, "--source is required"},
		{[]string{"--source", "nope", "--target", "postgres://u@h/db"}, 1, "source: malformed connection URL"},
		{append(base, "--table-filter", "shop.public.t"), 2, "expected 'db.schema.table:SQL predicate'"},
	} {
		f, out, errOut := cmdtest.Factory(nil)
		cmdtest.Run(t, f, out, errOut, validatecmd.NewCmdValidate(f, nil), tc.args...).OneLineError(t, tc.code, tc.want)
	}
}
