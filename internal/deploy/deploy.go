// Package deploy runs the platform's Pulumi program (platform/) through the
// Automation API: it picks the state backend (an S3 bucket and KMS key it
// bootstraps in the account, or any backend URL given), selects or creates the
// stack, deploys or destroys it while printing each step, recovers from an
// interrupted run (stale lock, pending operations), and caches the outputs so
// that remote commands need no flags.
package deploy

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/pulumi/pulumi/sdk/v3/go/auto"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/events"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optdestroy"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optrefresh"
	"github.com/pulumi/pulumi/sdk/v3/go/auto/optup"
	"github.com/pulumi/pulumi/sdk/v3/go/common/apitype"
	"github.com/pulumi/pulumi/sdk/v3/go/common/resource"
	"github.com/pulumi/pulumi/sdk/v3/go/common/workspace"

	"github.com/replicatorhq/replicator/internal/stackcache"
	"github.com/replicatorhq/replicator/platform"
)

// Options of a deployment.
type Options struct {
	Config platform.Config
	Region string
	// Backend is the Pulumi state backend URL (s3://, file://, ...);
	// SecretsProvider encrypts the stack's secrets ("" means a passphrase, from
	// $PULUMI_CONFIG_PASSPHRASE, empty by default).
	Backend, SecretsProvider string
	Pulumi                   auto.PulumiCommand
	// Env are extra variables for the pulumi CLI.
	Env map[string]string
	Out io.Writer
	// Unlock decides about a lock whose holder may be alive (nil: never).
	// Provably stale locks are removed without asking.
	Unlock func(Lock) (bool, error)
	// AWS finds what an interrupted run created but did not record.
	AWS aws.Config
	// Replace lists resources (URNs) to replace even if unchanged.
	Replace []string
}

// Outputs of a deployed stack.
type Outputs = stackcache.Outputs

func (o *Options) stack(ctx context.Context) (auto.Stack, error) {
	// The region goes to the pulumi CLI too: its S3 backend and KMS secrets
	// provider must not fall back on the profile's region, or on none.
	env := map[string]string{"PULUMI_BACKEND_URL": o.Backend, "PULUMI_SKIP_UPDATE_CHECK": "true",
		"AWS_REGION": o.Region, "AWS_DEFAULT_REGION": o.Region}
	if o.SecretsProvider == "" {
		if _, ok := os.LookupEnv("PULUMI_CONFIG_PASSPHRASE"); !ok {
			env["PULUMI_CONFIG_PASSPHRASE"] = ""
		}
	}
	for k, v := range o.Env {
		env[k] = v
	}
	wsOpts := []auto.LocalWorkspaceOption{
		auto.Project(workspace.Project{Name: "replicator", Runtime: workspace.NewProjectRuntimeInfo("go", nil),
			Description: stringPtr("replicator's job platform")}),
		auto.Pulumi(o.Pulumi), auto.EnvVars(env),
	}
	if o.SecretsProvider != "" {
		wsOpts = append(wsOpts, auto.SecretsProvider(o.SecretsProvider))
	}
	s, err := auto.UpsertStackInlineSource(ctx, o.Config.Stack, "replicator", platform.Program(o.Config), wsOpts...)
	if err != nil {
		return s, fmt.Errorf("select stack %s in %s: %w", o.Config.Stack, o.Backend, err)
	}
	if err := s.SetConfig(ctx, "aws:region", auto.ConfigValue{Value: o.Region}); err != nil {
		return s, err
	}
	return s, nil
}

// Up deploys (or updates) the stack and returns its outputs.
func Up(ctx context.Context, o Options) (*Outputs, error) {
	s, err := o.stack(ctx)
	if err != nil {
		return nil, err
	}
	if err := o.recoverInterrupted(ctx, &s); err != nil {
		return nil, err
	}
	replace, err := o.inState(ctx, &s, o.Replace)
	if err != nil {
		return nil, err
	}
	fmt.Fprintf(o.Out, "Deploying stack %s to %s (state in %s)\n", o.Config.Stack, o.Region, o.Backend)
	start := time.Now()
	var res auto.UpResult
	err = o.locked(ctx, &s, func() error {
		ch := make(chan events.EngineEvent)
		done := make(chan struct{})
		go func() { printEvents(o.Out, ch); close(done) }()
		var err error
		opts := []optup.Option{optup.EventStreams(ch)}
		if len(replace) > 0 {
			opts = append(opts, optup.Replace(replace))
		}
		res, err = s.Up(ctx, opts...)
		drain(done)
		return err
	})
	if err != nil {
		var le *ErrLocked
		if errors.As(err, &le) {
			return nil, err
		}
		return nil, fmt.Errorf("deploy: %s", lastLines(err.Error(), 6))
	}
	changes := map[string]int{}
	if res.Summary.ResourceChanges != nil {
		changes = *res.Summary.ResourceChanges
	}
	changed := 0
	for op, n := range changes {
		if op != "same" {
			changed += n
		}
	}
	if changed == 0 {
		fmt.Fprintln(o.Out, "No changes: the platform is up to date.")
	} else {
		fmt.Fprintf(o.Out, "Done in %s: %s\n", time.Since(start).Round(time.Second), summarize(changes))
	}
	return outputs(o, res.Outputs), nil
}

// StackOutputs reads the outputs of a deployed stack without changing it.
func StackOutputs(ctx context.Context, o Options) (*Outputs, error) {
	s, err := o.stack(ctx)
	if err != nil {
		return nil, err
	}
	out, err := s.Outputs(ctx)
	if err != nil {
		return nil, err
	}
	return outputs(o, out), nil
}

// Destroy removes every resource of the stack, then the stack itself.
func Destroy(ctx context.Context, o Options) error {
	s, err := o.stack(ctx)
	if err != nil {
		return err
	}
	if err := o.recoverInterrupted(ctx, &s); err != nil {
		return err
	}
	fmt.Fprintf(o.Out, "Destroying stack %s in %s\n", o.Config.Stack, o.Region)
	err = o.locked(ctx, &s, func() error {
		ch := make(chan events.EngineEvent)
		done := make(chan struct{})
		go func() { printEvents(o.Out, ch); close(done) }()
		_, err := s.Destroy(ctx, optdestroy.EventStreams(ch))
		drain(done)
		return err
	})
	if err != nil {
		var le *ErrLocked
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("destroy: %s", lastLines(err.Error(), 6))
	}
	return s.Workspace().RemoveStack(ctx, o.Config.Stack)
}

// locked runs op; when the stack is locked, it removes the lock only if every
// holder is provably gone, or if the user says so (--unlock), and runs op
// again. A live teammate's lock on a shared backend is never taken away
// silently: the error names who holds it.
func (o *Options) locked(ctx context.Context, s *auto.Stack, op func() error) error {
	err := op()
	locks := locksOf(err)
	if locks == nil {
		return err
	}
	if err := o.unlock(ctx, s, locks); err != nil {
		return err
	}
	return op()
}

func (o *Options) unlock(ctx context.Context, s *auto.Stack, locks []Lock) error {
	now, host := time.Now(), hostname()
	var live []Lock
	var why []string
	for _, l := range locks {
		if stale, reason := l.Stale(now, host); stale {
			why = append(why, l.String()+": "+reason)
		} else {
			live = append(live, l)
		}
	}
	if len(live) > 0 {
		ok := false
		if o.Unlock != nil {
			var err error
			if ok, err = o.Unlock(live[0]); err != nil {
				return err
			}
		}
		if !ok {
			return &ErrLocked{Stack: o.Config.Stack, Locks: live}
		}
		for _, l := range live {
			why = append(why, l.String()+": removed on request (--unlock)")
		}
	}
	if err := s.Cancel(ctx); err != nil {
		return fmt.Errorf("remove the lock: %w", err)
	}
	for _, w := range why {
		fmt.Fprintf(o.Out, "Removed the stack's lock held by %s\n", w)
	}
	return nil
}

// recoverInterrupted repairs what a killed run leaves in the state (the
// engine refuses to go on otherwise): a resource it was creating may exist in
// AWS without being recorded, and creating it again would fail with "already
// exists". Such pending creates are imported (their AWS id found by name, or
// the AMI build waited for); the others are cleared, and the state refreshed.
func (o *Options) recoverInterrupted(ctx context.Context, s *auto.Stack) error {
	var state apitype.UntypedDeployment
	err := o.locked(ctx, s, func() error {
		var err error
		state, err = s.Export(ctx)
		return err
	})
	if err != nil {
		var le *ErrLocked
		if errors.As(err, &le) {
			return err
		}
		return fmt.Errorf("read state: %w", err)
	}
	var d apitype.DeploymentV3
	if len(state.Deployment) == 0 || json.Unmarshal(state.Deployment, &d) != nil || len(d.PendingOperations) == 0 {
		return nil
	}
	fmt.Fprintf(o.Out, "Recovering from an interrupted run: %d pending operation(s).\n", len(d.PendingOperations))
	if err := recoverPending(&d, func(r apitype.ResourceV3) (string, string, error) { return o.findCreated(ctx, r, &d) }, o.Out); err != nil {
		return err
	}
	raw, err := json.Marshal(d)
	if err != nil {
		return err
	}
	state.Deployment = raw
	if err := s.Import(ctx, state); err != nil {
		return fmt.Errorf("record the recovered state: %w", err)
	}
	if _, err := s.Refresh(ctx, optrefresh.ProgressStreams(io.Discard)); err != nil {
		return fmt.Errorf("refresh after an interrupted run: %s", lastLines(err.Error(), 6))
	}
	return nil
}

// inState keeps the URNs the stack's state has: Pulumi refuses a replace
// target it cannot find (a first setup, or one after a teardown), and
// what is not there is created anyway.
func (o *Options) inState(ctx context.Context, s *auto.Stack, urns []string) ([]string, error) {
	if len(urns) == 0 {
		return nil, nil
	}
	var state apitype.UntypedDeployment
	if err := o.locked(ctx, s, func() error {
		var err error
		state, err = s.Export(ctx)
		return err
	}); err != nil {
		return nil, fmt.Errorf("read state: %w", err)
	}
	var d apitype.DeploymentV3
	if len(state.Deployment) > 0 {
		if err := json.Unmarshal(state.Deployment, &d); err != nil {
			return nil, fmt.Errorf("read state: %w", err)
		}
	}
	var out []string
	for _, urn := range urns {
		for _, r := range d.Resources {
			if string(r.URN) == urn && !r.Delete {
				out = append(out, urn)
				break
			}
		}
	}
	return out, nil
}

// recoverPending settles the pending operations of an interrupted run: a
// create found in AWS (find gives its id) becomes a resource of the state
// (the refresh then reads it whole); the rest are dropped and created
// again. A create that was a replacement's (create before delete) has the
// old resource under the same URN: that one is marked for deletion, as
// Pulumi itself leaves it, since a state with two live resources of one
// URN fails Pulumi's integrity check.
func recoverPending(d *apitype.DeploymentV3, find func(apitype.ResourceV3) (id, why string, err error), out io.Writer) error {
	for _, op := range d.PendingOperations {
		if op.Type != apitype.OperationTypeCreating {
			continue // updates and deletes left pending: the refresh settles them
		}
		id, why, err := find(op.Resource)
		if err != nil {
			return fmt.Errorf("recover %s: %w", name(string(op.Resource.URN)), err)
		}
		if id == "" {
			fmt.Fprintf(out, "  %-50s %s: %s, created again\n", op.Resource.Type, name(string(op.Resource.URN)), why)
			continue
		}
		fmt.Fprintf(out, "  %-50s %s: %s, imported\n", op.Resource.Type, name(string(op.Resource.URN)), why)
		for i := range d.Resources {
			if d.Resources[i].URN == op.Resource.URN && !d.Resources[i].Delete {
				d.Resources[i].Delete = true
			}
		}
		r := op.Resource
		r.ID = resource.ID(id)
		r.Outputs = r.Inputs
		r.Delete = false
		// Its dependencies were created before it: appending keeps the
		// resources in dependency order.
		d.Resources = append(d.Resources, r)
	}
	d.PendingOperations = nil
	return nil
}

func outputs(o Options, m auto.OutputMap) *Outputs {
	get := func(k string) string {
		if v, ok := m[k]; ok {
			if s, ok := v.Value.(string); ok {
				return s
			}
		}
		return ""
	}
	return &Outputs{
		Stack: o.Config.Stack, Backend: o.Backend, APIURL: strings.TrimRight(get(platform.OutAPIURL), "/"), Region: get(platform.OutRegion),
		Table: get(platform.OutTable), LogGroup: get(platform.OutLogGroup), Bucket: get(platform.OutBucket), AMI: get(platform.OutAMI),
		Version: get(platform.OutVersion), LaunchTemplate: get(platform.OutLaunchTemplate), SecretsKey: get(platform.OutSecretsKey),
	}
}

// printEvents writes one line per resource step: what is being created,
// updated or deleted, and when it is done. The worker image build is named as
// the slow step it is.
func printEvents(w io.Writer, ch <-chan events.EngineEvent) {
	started := map[string]time.Time{}
	for ev := range ch {
		switch {
		case ev.ResourcePreEvent != nil:
			m := ev.ResourcePreEvent.Metadata
			if m.Op == apitype.OpSame || m.Op == apitype.OpRead || m.Type == "pulumi:pulumi:Stack" || strings.HasPrefix(m.Type, "pulumi:providers:") {
				continue
			}
			started[m.URN] = time.Now()
			note := ""
			if m.Type == platform.ImageResourceType && (m.Op == apitype.OpCreate || m.Op == apitype.OpReplace || m.Op == apitype.OpCreateReplacement) {
				note = "  <- the worker AMI build: the slow step, usually 20 to 40 minutes"
			}
			fmt.Fprintf(w, "  %-9s %-50s %s%s\n", verb(m.Op, false), m.Type, name(m.URN), note)
		case ev.ResOutputsEvent != nil:
			m := ev.ResOutputsEvent.Metadata
			t, ok := started[m.URN]
			if !ok {
				continue
			}
			fmt.Fprintf(w, "  %-9s %-50s %s (%s)\n", verb(m.Op, true), m.Type, name(m.URN), time.Since(t).Round(100*time.Millisecond))
		case ev.ResOpFailedEvent != nil:
			m := ev.ResOpFailedEvent.Metadata
			fmt.Fprintf(w, "  failed    %-50s %s\n", m.Type, name(m.URN))
		case ev.DiagnosticEvent != nil && (ev.DiagnosticEvent.Severity == "error" || ev.DiagnosticEvent.Severity == "warning"):
			if msg := strings.TrimSpace(ev.DiagnosticEvent.Message); msg != "" {
				fmt.Fprintf(w, "  %s: %s\n", ev.DiagnosticEvent.Severity, lastLines(msg, 3))
			}
		}
	}
}

// drain waits for the event printer to see the end of the stream. When the
// engine fails before streaming, the Automation API never closes the channel:
// do not wait for ever.
func drain(done <-chan struct{}) {
	select {
	case <-done:
	case <-time.After(5 * time.Second):
	}
}

func verb(op apitype.OpType, done bool) string {
	v := map[apitype.OpType][2]string{
		apitype.OpCreate: {"creating", "created"}, apitype.OpUpdate: {"updating", "updated"}, apitype.OpDelete: {"deleting", "deleted"},
		apitype.OpReplace: {"replacing", "replaced"}, apitype.OpCreateReplacement: {"creating", "created"}, apitype.OpDeleteReplaced: {"deleting", "deleted"},
	}[op]
	if v[0] == "" {
		return string(op)
	}
	if done {
		return v[1]
	}
	return v[0]
}

func name(urn string) string { return urn[strings.LastIndex(urn, "::")+2:] }

func summarize(changes map[string]int) string {
	var parts []string
	for _, op := range []string{"create", "update", "replace", "delete", "same"} {
		if n := changes[op]; n > 0 {
			parts = append(parts, fmt.Sprintf("%d %s", n, map[string]string{"create": "created", "update": "updated", "replace": "replaced", "delete": "deleted", "same": "unchanged"}[op]))
		}
	}
	return strings.Join(parts, ", ")
}

func lastLines(s string, n int) string {
	lines := strings.Split(strings.TrimSpace(s), "\n")
	if len(lines) > n {
		lines = lines[len(lines)-n:]
	}
	return strings.Join(lines, " | ")
}

func stringPtr(s string) *string { return &s }
