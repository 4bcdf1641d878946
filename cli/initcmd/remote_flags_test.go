package initcmd_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"strings"
	"testing"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/cutovercmd"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/initcmd"
	"github.com/replicatorhq/replicator/cli/synccmd"
	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/engine"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/runner"
)

const (
	src = "postgres://copier:pw1@source.example:5432/postgres"
	dst = "postgres://admin:pw2@target.example:5432/postgres"
	via = "postgres://copier:pw1@10.0.0.5:5432/postgres"
)

// flagCase says what becomes of a flag under --remote.
type flagCase struct {
	args []string
	// carried: the worker's job (after the request's JSON round trip)
	// equals the local run's, and differs from the job without the flag.
	carried bool
	// refused: the error --remote with this flag gives, before submitting.
	refused string
	// why a flag neither travels nor is refused (it configures the
	// submission or the local display).
	other string
}

var initFlags = map[string]flagCase{
	"source":                   {other: "in the job's secret"},
	"target":                   {other: "in the job's secret"},
	"include-databases":        {args: []string{"--include-databases", "shop,Analytics Db"}, carried: true},
	"exclude-databases":        {args: []string{"--exclude-databases", "tmp_*"}, carried: true},
	"include-tables":           {args: []string{"--include-tables", `shop.public."Orders"`}, carried: true},
	"exclude-tables":           {args: []string{"--exclude-tables", "shop.public.audit_*"}, carried: true},
	"schema-only-tables":       {args: []string{"--schema-only-tables", "shop.public.log"}, carried: true},
	"table-filter":             {args: []string{"--table-filter", "shop.public.events:created_at > now() - interval '1 day'"}, carried: true},
	"include-schemas":          {args: []string{"--include-schemas", "shop.sales"}, carried: true},
	"exclude-schemas":          {args: []string{"--exclude-schemas", `"Audit"`}, carried: true},
	"exclude-indexes":          {args: []string{"--exclude-indexes", "shop.public.orders_note_idx"}, carried: true},
	"exclude-extensions":       {args: []string{"--exclude-extensions", "shop.postgis"}, carried: true},
	"jobs":                     {args: []string{"--jobs", "7"}, carried: true},
	"index-jobs":               {args: []string{"--index-jobs", "3"}, carried: true},
	"split-tables-larger-than": {args: []string{"--split-tables-larger-than", "0"}, carried: true},
	"maintenance-work-mem":     {args: []string{"--maintenance-work-mem", "2GB"}, carried: true},
	"stall-timeout":            {args: []string{"--stall-timeout", "45s"}, carried: true},
	"drop-existing":            {args: []string{"--drop-existing", "--yes"}, carried: true},
	"yes":                      {other: "answers --drop-existing's question before submitting"},
	"no-roles":                 {args: []string{"--no-roles"}, carried: true},
	"no-resume":                {args: []string{"--no-resume"}, carried: true},
	"skip-validate":            {args: []string{"--skip-validate"}, carried: true},
	"skip-analyze":             {args: []string{"--skip-analyze"}, carried: true},
	"verify":                   {args: []string{"--verify"}, carried: true},
	"sync":                     {args: []string{"--sync"}, carried: true},
	"source-from-target":       {args: []string{"--sync", "--source-from-target", via}, carried: true},
	"replica-identity-full":    {args: []string{"--sync", "--replica-identity-full"}, carried: true},
	"replicate-ddl":            {args: []string{"--sync", "--replicate-ddl=false"}, carried: true},
	"json":                     {other: "the display: remote output is JSON lines too"},
	"pg-bin":                   {args: []string{"--pg-bin", "/opt/pg/bin"}, refused: "--pg-bin cannot be used with --remote: the worker uses the client tools of its image"},
	"state-dir":                {args: []string{"--state-dir", "/tmp/x"}, refused: "--state-dir cannot be used with --remote: the worker keeps its checkpoints"},
	"remote":                   {other: "submits the job"},
	"detach":                   {other: "the submission"},
	"instance-type":            {other: "the worker's size"},
	"time-limit":               {other: "the job's time limit"},
	"notify":                   {other: "the job's notifications"},
	"no-notify":                {other: "the job's notifications"},
	"max-cost":                 {other: "the job's cost limit"},
	"monitor":                  {other: "the job's lag monitor"},
	"lag-alert":                {other: "the job's lag monitor"},
	"api-url":                  {other: "where to submit"},
	"region":                   {other: "where to submit"},
	"stack":                    {other: "where to submit"},
}

var syncFlags = map[string]flagCase{
	"source":                {other: "in the job's secret"},
	"target":                {other: "in the job's secret"},
	"include-databases":     {args: []string{"--include-databases", "shop"}, carried: true},
	"exclude-databases":     {args: []string{"--exclude-databases", "tmp_*"}, carried: true},
	"include-tables":        {args: []string{"--include-tables", "shop.public.orders"}, carried: true},
	"exclude-tables":        {args: []string{"--exclude-tables", "shop.public.audit"}, carried: true},
	"schema-only-tables":    {args: []string{"--schema-only-tables", "shop.public.log"}, carried: true},
	"table-filter":          {args: []string{"--table-filter", "shop.public.events:id > 10"}, carried: true},
	"include-schemas":       {args: []string{"--include-schemas", "shop.sales"}, carried: true},
	"exclude-schemas":       {args: []string{"--exclude-schemas", `"Audit"`}, carried: true},
	"source-from-target":    {args: []string{"--source-from-target", via}, carried: true},
	"replica-identity-full": {args: []string{"--replica-identity-full"}, carried: true},
	"replicate-ddl":         {args: []string{"--replicate-ddl"}, carried: true},
	"stop":                  {args: []string{"--stop"}, carried: true},
	"force":                 {args: []string{"--force"}, carried: true},
	"sequences":             {args: []string{"--sequences"}, carried: true},
	"accept-gap":            {args: []string{"--accept-gap"}, carried: true},
	"pg-bin":                {args: []string{"--pg-bin", "/opt/pg/bin"}, refused: "--pg-bin has no effect on sync"},
	"state-dir":             {args: []string{"--state-dir", "/tmp/s"}, refused: "--state-dir has no effect on sync"},
	"remote":                {other: "submits the job"},
	"detach":                {other: "the submission"},
	"instance-type":         {other: "the worker's size"},
	"time-limit":            {other: "the job's time limit"},
	"notify":                {other: "the job's notifications"},
	"no-notify":             {other: "the job's notifications"},
	"max-cost":              {other: "the job's cost limit"},
	"monitor":               {other: "the job's lag monitor"},
	"lag-alert":             {other: "the job's lag monitor"},
	"api-url":               {other: "where to submit"},
	"region":                {other: "where to submit"},
	"stack":                 {other: "where to submit"},
}

var cutoverFlags = map[string]flagCase{
	"source":             {other: "in the job's secret"},
	"target":             {other: "in the job's secret"},
	"include-databases":  {args: []string{"--include-databases", "shop"}, carried: true},
	"exclude-databases":  {args: []string{"--exclude-databases", "tmp_*"}, carried: true},
	"include-tables":     {args: []string{"--include-tables", "shop.public.orders"}, carried: true},
	"exclude-tables":     {args: []string{"--exclude-tables", "shop.public.audit"}, carried: true},
	"schema-only-tables": {args: []string{"--schema-only-tables", "shop.public.log"}, carried: true},
	"table-filter":       {args: []string{"--table-filter", "shop.public.events:id > 10"}, carried: true},
	"include-schemas":    {args: []string{"--include-schemas", "shop.sales"}, carried: true},
	"exclude-schemas":    {args: []string{"--exclude-schemas", `"Audit"`}, carried: true},
	"source-from-target": {args: []string{"--rollback", "--reverse", "--source-from-target", via}, carried: true},
	"target-from-source": {args: []string{"--reverse", "--target-from-source", via}, refused: "--target-from-source cannot be used with --remote"},
	"rollback":           {args: []string{"--rollback"}, carried: true},
	"reverse":            {args: []string{"--reverse"}, carried: true},
	"dry-run":            {args: []string{"--dry-run"}, carried: true},
	"max-lag":            {args: []string{"--max-lag", "3s"}, carried: true},
	"drain-timeout":      {args: []string{"--drain-timeout", "1s"}, carried: true},
	"switch-timeout":     {args: []string{"--switch-timeout", "2m"}, carried: true},
	"fence":              {args: []string{"--fence", "none"}, carried: true},
	"sequence-margin":    {args: []string{"--sequence-margin", "1000"}, carried: true},
	"verify":             {args: []string{"--verify"}, carried: true},
	"unfence-source":     {args: []string{"--unfence-source"}, carried: true},
	"then":               {args: []string{"--then", "true"}, refused: "--then cannot be used with --remote"},
	"state-dir":          {args: []string{"--state-dir", "/tmp/s"}, refused: "--state-dir cannot be used with --remote"},
	"json":               {other: "the display: remote output is JSON lines too"},
	"pg-bin":             {args: []string{"--pg-bin", "/opt/pg/bin"}, refused: "--pg-bin has no effect on cutover"},
	"remote":             {other: "submits the job"},
	"detach":             {other: "the submission"},
	"instance-type":      {other: "the worker's size"},
	"time-limit":         {other: "the job's time limit"},
	"notify":             {other: "the job's notifications"},
	"no-notify":          {other: "the job's notifications"},
	"max-cost":           {other: "the job's cost limit"},
	"monitor":            {args: []string{"--monitor"}, refused: "--monitor cannot be used with --remote: there is no replication left to watch"},
	"lag-alert":          {other: "the job's lag monitor, refused with --monitor"},
	"api-url":            {other: "where to submit"},
	"region":             {other: "where to submit"},
	"stack":              {other: "where to submit"},
}

func testFactory() *factory.Factory {
	f := factory.New(buildinfo.Info{Version: "test"})
	f.IOStreams = &iostreams.IOStreams{In: strings.NewReader(""), Out: &bytes.Buffer{}, ErrOut: &bytes.Buffer{}}
	return f
}

// parse runs the command's flag handling only and returns what run would get.
func parse[O any](t *testing.T, newCmd func(*factory.Factory, func(context.Context, *O) error) *cobra.Command, args []string) (*O, error) {
	t.Helper()
	var got *O
	cmd := newCmd(testFactory(), func(_ context.Context, o *O) error { got = o; return nil })
	cmd.SetArgs(args)
	cmd.SetOut(&bytes.Buffer{})
	cmd.SetErr(&bytes.Buffer{})
	err := cmd.Execute()
	return got, err
}

// jobs of a parse: the local run's and the worker's, the latter rebuilt from
// the request after its JSON round trip, as the API and the worker read it.
func localAndRemote(t *testing.T, local remote.Options, localSpec func() (runner.Job, error), req *remote.Request) (runner.Job, runner.Job) {
	t.Helper()
	lj, err := localSpec()
	if err != nil {
		t.Fatal(err)
	}
	lj.Options = local
	b, err := json.Marshal(req)
	if err != nil {
		t.Fatal(err)
	}
	var got remote.Request
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&got); err != nil {
		t.Fatal(err)
	}
	if _, _, err := got.Validate(remote.DefaultLimits()); err != nil {
		t.Fatalf("the API would refuse the request: %v", err)
	}
	rj, err := runner.Parse(got.Command, remote.Secret{Source: got.Source, Target: got.Target, SourceForTarget: got.SourceForTarget,
		SourceCerts: got.SourceCerts, TargetCerts: got.TargetCerts}, got.Filters, got.Options, t.TempDir())
	if err != nil {
		t.Fatal(err)
	}
	return lj, rj
}

// comparable renders a job's effect: the engine's, verify's and replication's
// options, endpoints by their URLs and filters by what they select.
func comparable(j runner.Job) string {
	eo := runner.EngineOptions(j)
	vo := runner.VerifyOptions(j)
	so := runner.SyncOptions(j, nil)
	str := func(e interface{ String() string }) string {
		if reflect.ValueOf(e).IsNil() {
			return ""
		}
		return e.String()
	}
	type view struct {
		Command, Source, Target, Via string
		Filters                      string
		Engine                       map[string]any
		VerifyJobs                   int
		Force, Stop, Sequences, Fix  bool
		AcceptGap                    bool
		DDL                          string
		SkipValidate, NoResume       bool
		Verify                       bool
		Cutover                      string
	}
	filters, _ := json.Marshal(j.Filters)
	v := view{Command: j.Command, Source: str(j.Source), Target: str(j.Target), Via: str(j.SourceForTarget),
		Filters: string(filters), VerifyJobs: vo.Jobs, Force: so.Force, AcceptGap: so.AcceptGap, Stop: j.Options.Stop, Sequences: so.Sequences,
		Fix: so.ReplicaIdentityFull, DDL: string(so.DDL), SkipValidate: j.Options.SkipValidate, NoResume: j.Options.NoResume, Verify: j.Options.Verify}
	co := runner.CutoverOptions(j, nil)
	v.Cutover = fmt.Sprint(co.Rollback, co.Reverse, co.DryRun, co.MaxLag, co.DrainTimeout, co.SwitchTimeout, co.FenceNone, co.SequenceMargin, co.Verify, co.UnfenceSource)
	eo.Source, eo.Target, eo.Filters = nil, nil, nil
	if eo.Sync != nil {
		v.Via = str(eo.Sync.SourceForTarget)
		eo.Sync = &engine.SyncOptions{ReplicaIdentityFull: eo.Sync.ReplicaIdentityFull, DDL: eo.Sync.DDL}
	}
	// Every field of the engine's options but the environment's (funcs,
	// interfaces: set by the runner's Env on each side alike).
	v.Engine = map[string]any{}
	rv := reflect.ValueOf(eo)
	for i := 0; i < rv.NumField(); i++ {
		switch rv.Field(i).Kind() {
		case reflect.Func, reflect.Interface, reflect.Chan:
			continue
		}
		v.Engine[rv.Type().Field(i).Name] = rv.Field(i).Interface()
	}
	b, err := json.Marshal(v)
	if err != nil {
		panic(err)
	}
	return string(b)
}

func checkEveryFlag(t *testing.T, cmd *cobra.Command, cases map[string]flagCase) {
	t.Helper()
	cmd.Flags().VisitAll(func(fl *pflag.Flag) {
		if _, ok := cases[fl.Name]; !ok {
			t.Errorf("--%s is neither carried by --remote nor refused with it: add it to this test's table", fl.Name)
		}
	})
	for name := range cases {
		if cmd.Flags().Lookup(name) == nil {
			t.Errorf("the table names --%s, which the command no longer has", name)
		}
	}
}

// walk checks every case: a carried flag gives the worker the local run's
// job, and changes it; a refused one fails with its message, as a usage error.
func walk(t *testing.T, cases map[string]flagCase, job func(args []string) (runner.Job, runner.Job), refuse func(args []string) error) {
	t.Helper()
	baseLocal, baseRemote := job(nil)
	if comparable(baseLocal) != comparable(baseRemote) {
		t.Fatalf("without flags the worker's job differs:\nlocal  %s\nremote %s", comparable(baseLocal), comparable(baseRemote))
	}
	for name, c := range cases {
		t.Run(name, func(t *testing.T) {
			switch {
			case c.carried:
				l, r := job(c.args)
				if comparable(l) != comparable(r) {
					t.Errorf("the worker's job differs from a local run's:\nlocal  %s\nremote %s", comparable(l), comparable(r))
				}
				if comparable(r) == comparable(baseRemote) {
					t.Errorf("%v changes nothing the worker runs", c.args)
				}
			case c.refused != "":
				err := refuse(c.args)
				var fe *cmdutil.FlagError
				if !errors.As(err, &fe) || !strings.Contains(err.Error(), c.refused) {
					t.Errorf("%v with --remote: %v, want the usage error %q", c.args, err, c.refused)
				}
			}
		})
	}
}

// localJob is the job a local run of the flags would run.
func localJob(command string, e *cmdutil.Endpoints, f *cmdutil.Filters, via string) func() (runner.Job, error) {
	return func() (runner.Job, error) {
		s, d, rules, err := cmdutil.ParseInputs(e, f)
		if err != nil {
			return runner.Job{}, err
		}
		v, err := cmdutil.ParseSourceFromTarget(via)
		return runner.Job{Command: command, Source: s, Target: d, SourceForTarget: v, Filters: rules}, err
	}
}

var remoteBase = []string{"--source", src, "--target", dst, "--remote"}

func withBase(args []string) []string { return append(append([]string{}, remoteBase...), args...) }

// Every flag of init either travels with --remote (the worker runs the job a
// local run would) or is refused with a clear error before anything is
// submitted.
func TestInitRemoteCarriesEveryFlag(t *testing.T) {
	checkEveryFlag(t, initcmd.NewCmdInit(testFactory(), nil), initFlags)
	walk(t, initFlags, func(args []string) (runner.Job, runner.Job) {
		o, err := parse(t, initcmd.NewCmdInit, withBase(args))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		jo, err := o.JobOptions()
		if err != nil {
			t.Fatal(err)
		}
		lj := localJob("init", &o.Endpoints, &o.Filters, o.SourceFromTarget)
		j, err := lj()
		if err != nil {
			t.Fatal(err)
		}
		req, err := o.Request(j.Source, j.Target, jo)
		if err != nil {
			t.Fatal(err)
		}
		return localAndRemote(t, jo, lj, req)
	}, func(args []string) error {
		_, err := parse(t, initcmd.NewCmdInit, withBase(args))
		return err
	})
}

// Every flag of sync likewise.
func TestSyncRemoteCarriesEveryFlag(t *testing.T) {
	checkEveryFlag(t, synccmd.NewCmdSync(testFactory(), nil), syncFlags)
	walk(t, syncFlags, func(args []string) (runner.Job, runner.Job) {
		o, err := parse(t, synccmd.NewCmdSync, withBase(args))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		lj := localJob("sync", &o.Endpoints, &o.Filters, o.SourceFromTarget)
		j, err := lj()
		if err != nil {
			t.Fatal(err)
		}
		req, err := o.Request(j.Source, j.Target)
		if err != nil {
			t.Fatal(err)
		}
		return localAndRemote(t, o.JobOptions(), lj, req)
	}, func(args []string) error {
		_, err := parse(t, synccmd.NewCmdSync, withBase(args))
		return err
	})
}

// Every flag of cutover likewise.
func TestCutoverRemoteCarriesEveryFlag(t *testing.T) {
	checkEveryFlag(t, cutovercmd.NewCmdCutover(testFactory(), nil), cutoverFlags)
	walk(t, cutoverFlags, func(args []string) (runner.Job, runner.Job) {
		o, err := parse(t, cutovercmd.NewCmdCutover, withBase(args))
		if err != nil {
			t.Fatalf("%v: %v", args, err)
		}
		lj := localJob("cutover", &o.Endpoints, &o.Filters, o.SourceFromTarget)
		j, err := lj()
		if err != nil {
			t.Fatal(err)
		}
		req, err := o.Request(j.Source, j.Target)
		if err != nil {
			t.Fatal(err)
		}
		return localAndRemote(t, o.JobOptions(), lj, req)
	}, func(args []string) error {
		_, err := parse(t, cutovercmd.NewCmdCutover, withBase(args))
		return err
	})
}

// Flags that only mean something with --remote (or --sync) are refused
// without it, instead of doing nothing.
func TestFlagsWithoutEffectAreRefused(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--detach"}, "--detach needs --remote"},
		{[]string{"--instance-type", "c7g.xlarge"}, "--instance-type needs --remote"},
		{[]string{"--time-limit", "2h"}, "--time-limit needs --remote"},
		{[]string{"--source-from-target", via}, "--source-from-target needs --sync"},
		{[]string{"--replica-identity-full"}, "--replica-identity-full needs --sync"},
		{[]string{"--replicate-ddl=false"}, "--replicate-ddl needs --sync"},
	} {
		_, err := parse(t, initcmd.NewCmdInit, append([]string{"--source", src, "--target", dst}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("init %v: %v, want %q", tc.args, err, tc.want)
		}
	}
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--detach"}, "--detach needs --remote"},
		{[]string{"--stop", "--accept-gap"}, "--accept-gap cannot be used with --stop"},
	} {
		_, err := parse(t, synccmd.NewCmdSync, append([]string{"--source", src, "--target", dst}, tc.args...))
		if err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("sync %v: %v, want %q", tc.args, err, tc.want)
		}
	}
}
