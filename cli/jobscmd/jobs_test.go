package jobscmd_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/cli/cmdtest"
	"github.com/replicatorhq/replicator/cli/jobscmd"
	"github.com/replicatorhq/replicator/internal/progress"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/remote/logs"
)

const id = "j-abcdefghijklmnop"

func api() *cmdtest.API {
	now := time.Date(2026, 11, 26, 10, 0, 0, 0, time.UTC)
	ev, _ := json.Marshal(progress.Event{Time: now, Kind: progress.TableDone, Database: "shop", Table: "public.orders", Rows: 10, Bytes: 1000, Seconds: 1})
	return &cmdtest.API{
		Jobs: map[string]*remote.Job{
			id:                   {ID: id, Command: "init", Status: remote.Running, Source: "postgres://u@a/db", Target: "postgres://u@b/db", CreatedAt: now},
			"j-bbbbbbbbbbbbbbbb": {ID: "j-bbbbbbbbbbbbbbbb", Command: "sync", Status: remote.Succeeded, CreatedAt: now},
		},
		Lines: map[string][]logs.Line{id: {{Time: now, Message: string(ev)}, {Time: now, Message: "plain line"}}},
	}
}

func TestJobsCommands(t *testing.T) {
	for _, tc := range []struct {
		name    string
		args    []string
		api     *cmdtest.API
		code    int
		out     string // in stdout
		errLine string // the one error line
	}{
		{"list", []string{"list"}, api(), 0, "j-bbbbbbbbbbbbbbbb  succeeded", ""},
		{"list json", []string{"list", "--json"}, api(), 0, `"jobs":[`, ""},
		{"list limit", []string{"list", "--limit", "0"}, api(), 2, "", "--limit must be between 1 and 100"},
		{"show", []string{"show", id}, api(), 0, "status:     running", ""},
		{"show", []string{"show", id}, api(), 0, "dashboard:  https://eu-west-1.console.aws.amazon.com/cloudwatch/home?region=eu-west-1#dashboards/dashboard/replicator-replicator", ""},
		{"show unknown", []string{"show", "j-cccccccccccccccc"}, api(), 1, "", "no job j-cccccccccccccccc"},
		{"show bad id", []string{"show", "42"}, api(), 2, "", `"42" is not a job id`},
		{"show no id", []string{"show"}, api(), 2, "", "accepts 1 arg(s), received 0"},
		{"logs", []string{"logs", id}, api(), 0, "[shop] copied public.orders: 10 rows", ""},
		{"logs json", []string{"logs", id, "--json"}, api(), 0, `"event":"table_done"`, ""},
		{"cancel", []string{"cancel", id}, api(), 0, "job " + id + " cancelled", ""},
		{"cancel finished", []string{"cancel", "j-bbbbbbbbbbbbbbbb"}, api(), 1, "", "already succeeded"},
		{"refused credentials", []string{"list"}, &cmdtest.API{Err: &client.Error{Status: 403, Msg: "the job API refused these AWS credentials: expired"}}, 1, "", "refused these AWS credentials"},
		{"no deployment", []string{"list"}, nil, 1, "", `no deployment "replicator" known here`},
		{"unknown subcommand", []string{"frobnicate"}, api(), 2, "", `unknown command "frobnicate" for "jobs"`},
		{"unknown flag", []string{"list", "--bogus"}, api(), 2, "", "unknown flag: --bogus"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			f, out, errOut := cmdtest.Factory(nil)
			if tc.api != nil {
				f, out, errOut = cmdtest.Factory(tc.api)
			}
			r := cmdtest.Run(t, f, out, errOut, jobscmd.NewCmdJobs(f, false), tc.args...)
			if tc.errLine != "" {
				r.OneLineError(t, tc.code, tc.errLine)
				return
			}
			if r.Code != tc.code || !strings.Contains(r.Out, tc.out) {
				t.Errorf("exit %d, want %d; stdout lacks %q:\n%s\n%s", r.Code, tc.code, tc.out, r.Out, r.Err)
			}
		})
	}
}

// watch renders a finished job as a local run would end: its events, the
// summary, and the exit code of its outcome.
func TestWatch(t *testing.T) {
	now := time.Now()
	summary, _ := json.Marshal(map[string]any{"steps": []map[string]any{{"step": "preflight", "seconds": 0.1}}, "tables": []any{}, "seconds": 1.5, "rows": 5, "bytes": 10})
	ev, _ := json.Marshal(progress.Event{Time: now, Kind: progress.Summary, Data: summary})
	a := &cmdtest.API{Jobs: map[string]*remote.Job{
		id:                   {ID: id, Status: remote.Succeeded},
		"j-ffffffffffffffff": {ID: "j-ffffffffffffffff", Status: remote.Failed, Error: "validate: pg_dump 13 is older than the source server 15"},
	}, Lines: map[string][]logs.Line{id: {{Time: now, Message: string(ev)}}}}
	f, out, errOut := cmdtest.Factory(a)
	r := cmdtest.Run(t, f, out, errOut, jobscmd.NewCmdJobs(f, false), "watch", id)
	if r.Code != 0 || !strings.Contains(r.Out, "Copied 0 tables, 5 rows") {
		t.Errorf("watch of a succeeded job (%d):\n%s\n%s", r.Code, r.Out, r.Err)
	}
	f, out, errOut = cmdtest.Factory(a)
	r = cmdtest.Run(t, f, out, errOut, jobscmd.NewCmdJobs(f, false), "watch", "j-ffffffffffffffff")
	r.OneLineError(t, 1, "job j-ffffffffffffffff failed: validate: pg_dump 13 is older than the source server 15")
}

// Flags become options: the deployment's target, --json, the id.
func TestJobsFlagsToOptions(t *testing.T) {
	f, out, errOut := cmdtest.Factory(api())
	var got *jobscmd.ShowOptions
	cmd := jobscmd.NewCmdShow(f, func(_ context.Context, o *jobscmd.ShowOptions) error { got = o; return nil })
	r := cmdtest.Run(t, f, out, errOut, cmd, id, "--stack", "prod", "--region", "eu-west-1", "--api-url", "https://x", "--json")
	if r.Code != 0 || got == nil || got.ID != id || !got.JSON || got.Target.Target() != (client.Target{APIURL: "https://x", Region: "eu-west-1", Stack: "prod"}) {
		t.Errorf("options %+v (%d %s)", got, r.Code, r.Err)
	}
}
