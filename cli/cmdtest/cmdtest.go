// Package cmdtest runs commands in tests without servers: a factory with
// buffered streams, a job API that answers from memory, and the exit code
// main would give. Command tests check flags, options, conflicts, exit codes
// and one-line errors with it; the end-to-end tests in cli/replicator run the
// real binary against real servers.
package cmdtest

import (
	"bytes"
	"context"
	"fmt"
	"strings"
	"sync"
	"testing"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/remote/cost"
	"github.com/replicatorhq/replicator/internal/remote/logs"
)

// Result of a command run.
type Result struct {
	Out, Err string
	Code     int
}

// Factory returns a factory with buffered streams (no terminal), no client
// tools and the given job API (nil: none, a clear error).
func Factory(api client.API) (*factory.Factory, *bytes.Buffer, *bytes.Buffer) {
	ios, _, out, errOut := iostreams.Test()
	f := &factory.Factory{IOStreams: ios, Build: buildinfo.Info{Version: "v0.0.0-test", GoVersion: "go1", Platform: "test/test"},
		FindTools: func(context.Context, string) (*pgtools.Tools, error) { return nil, pgtools.ErrNotFound },
		JobClient: func(context.Context, client.Target) (client.API, error) {
			if api == nil {
				return nil, fmt.Errorf("no deployment \"replicator\" known here: run replicator setup, or pass --api-url")
			}
			return api, nil
		},
	}
	return f, out, errOut
}

// Run executes cmd with args as main would: the error printed the one way,
// the exit code.
func Run(t *testing.T, f *factory.Factory, out, errOut *bytes.Buffer, cmd *cobra.Command, args ...string) Result {
	t.Helper()
	// As the root command does: errors are printed once, by cmdutil.Exit.
	cmd.SilenceErrors, cmd.SilenceUsage = true, true
	cmd.SetArgs(args)
	cmd.SetOut(out)
	cmd.SetErr(errOut)
	cmd.SetFlagErrorFunc(cmdutil.FlagErrorFunc)
	cmdutil.UsageArgs(cmd)
	err := cmd.ExecuteContext(context.Background())
	code := cmdutil.Exit(err, errOut)
	return Result{Out: out.String(), Err: errOut.String(), Code: code}
}

// OneLineError checks the failure contract: the exit code, one line
// "error: ..." saying want.
func (r Result) OneLineError(t *testing.T, code int, want string) {
	t.Helper()
	lines := strings.Split(strings.TrimSpace(r.Err), "\n")
	if r.Code != code || len(lines) != 1 || !strings.HasPrefix(lines[0], "error: ") || !strings.Contains(lines[0], want) {
		t.Errorf("want exit %d and one line with %q, got %d:\n%s", code, want, r.Code, r.Err)
	}
}

// API is a job API that answers from memory and records the requests.
type API struct {
	mu        sync.Mutex
	Jobs      map[string]*remote.Job
	Lines     map[string][]logs.Line
	Submitted []*remote.Request
	Cancelled []string
	// Err, when set, answers every call.
	Err error
	// PlatformVersion is what GET /version answers ("" like a platform
	// older than v0.5.0).
	PlatformVersion string
}

// Platform answers the fake platform's version.
func (a *API) Platform(context.Context) (*remote.PlatformInfo, error) {
	return &remote.PlatformInfo{Version: a.PlatformVersion}, a.Err
}

var _ client.API = (*API)(nil)

func (a *API) job(id string) (*remote.Job, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Err != nil {
		return nil, a.Err
	}
	j, ok := a.Jobs[id]
	if !ok {
		return nil, &client.Error{Status: 404, Msg: "no job " + id}
	}
	c := *j
	return &c, nil
}

func (a *API) Endpoint() string { return "https://api.test" }

// AWSRegion is the fake platform's region.
func (a *API) AWSRegion() string { return "eu-west-1" }
func (a *API) Identity(context.Context) (string, error) {
	return "arn:aws:iam::123456789012:user/test", a.Err
}

func (a *API) Submit(_ context.Context, r *remote.Request) (*remote.Job, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Err != nil {
		return nil, a.Err
	}
	a.Submitted = append(a.Submitted, r)
	j := &remote.Job{ID: "j-aaaaaaaaaaaaaaaa", Command: r.Command, Status: remote.Succeeded, Options: r.Options, InstanceType: "c7g.large"}
	if a.Jobs == nil {
		a.Jobs = map[string]*remote.Job{}
	}
	a.Jobs[j.ID] = j
	return j, nil
}

func (a *API) Get(_ context.Context, id string) (*remote.Job, error) { return a.job(id) }

// Quote estimates with the built-in table, as the API does.
func (a *API) Quote(_ context.Context, r *remote.Request) (*remote.Quote, error) {
	if a.Err != nil {
		return nil, a.Err
	}
	t := r.Options.InstanceType
	if t == "" {
		t = "c7g.large"
	}
	return &remote.Quote{InstanceType: t, Estimate: cost.Make(cost.Input{InstanceType: t, Region: "eu-west-1", Bytes: r.Options.SourceBytes})}, nil
}

// Price is the built-in table's: the fake has no Price List API.
func (a *API) Price(_ context.Context, instanceType string) (float64, string) {
	p, _ := cost.TablePrice(instanceType)
	return p, cost.TableSource
}

func (a *API) List(_ context.Context, limit int, cursor string) ([]*remote.Job, string, error) {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.Err != nil {
		return nil, "", a.Err
	}
	var out []*remote.Job
	for _, j := range a.Jobs {
		out = append(out, j)
	}
	return out, "", nil
}

func (a *API) Logs(_ context.Context, id, cursor string) (*logs.Page, error) {
	if _, err := a.job(id); err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if cursor != "" {
		return &logs.Page{Lines: []logs.Line{}, Next: cursor}, nil
	}
	return &logs.Page{Lines: a.Lines[id], Next: "end"}, nil
}

func (a *API) Cancel(_ context.Context, id string) (*remote.Job, error) {
	j, err := a.job(id)
	if err != nil {
		return nil, err
	}
	a.mu.Lock()
	defer a.mu.Unlock()
	if j.Status.Terminal() {
		return nil, &client.Error{Status: 409, Msg: fmt.Sprintf("job %s already %s", id, j.Status)}
	}
	a.Cancelled = append(a.Cancelled, id)
	a.Jobs[id].Status = remote.Cancelled
	j.Status = remote.Cancelled
	return j, nil
}
