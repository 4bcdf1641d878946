package main_test

import (
	"context"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

// A v0.5.0 CLI in front of a platform set up by v0.4.0: a job using an
// option the platform does not know (--replicate-ddl came with v0.5.0) is
// refused before it is submitted, with the setup that fixes it, instead of
// the API's bare "unknown field"; other jobs go on after a warning, and the
// job records which CLI, platform and worker ran it.
func TestPlatformVersionSkew(t *testing.T) {
	t.Parallel()
	base := platform(t)
	s, err := devstack.Start(context.Background(), devstack.Options{Stack: "oldplatform", Moto: base.Moto, WorkerBin: workerBin,
		Config: awsenv.Config{Version: "v0.4.0"}})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(s.Stop)
	newer := filepath.Join(t.TempDir(), "replicator")
	overlay, err := artifactsOverlay(t.TempDir(), "", "")
	if err != nil {
		t.Fatal(err)
	}
	if out, err := exec.Command("go", "build", "-overlay", overlay, "-ldflags", "-X github.com/replicatorhq/replicator/internal/buildinfo.version=v0.5.0",
		"-o", newer, ".").CombinedOutput(); err != nil {
		t.Fatalf("build a v0.5.0 CLI: %v\n%s", err, out)
	}
	if r := runBinary(t, newer, nil, "--version"); r.code != 0 || !strings.HasPrefix(r.stdout, "replicator v0.5.0 (") || !strings.Contains(r.stdout, "go1.") {
		t.Errorf("--version: %d %q", r.code, r.stdout)
	}
	const db = "skewdb"
	remoteDB(t, db, "CREATE TABLE t (id int PRIMARY KEY); INSERT INTO t VALUES (1)")
	conn := []string{"--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--include-databases", db}
	env := s.CallerEnv("alice")
	const skew = "the platform in " // ... is v0.4.0, this CLI is v0.5.0: run `replicator setup` to update it

	r := runBinary(t, newer, env, append([]string{"sync", "--remote", "--replicate-ddl"}, conn...)...)
	assertOneLineError(t, r, "is v0.4.0, this CLI is v0.5.0: run `replicator setup` to update it (this job uses replicate_ddl, which the platform does not know)")
	if !strings.Contains(r.stderr, skew+s.API.URL) {
		t.Errorf("the refusal does not name the platform: %s", r.stderr)
	}
	// A command newer than the platform (cutover came with v0.6.0) is
	// refused the same way, not answered "unknown command" by the API.
	r = runBinary(t, newer, env, append([]string{"cutover", "--remote"}, conn...)...)
	assertOneLineError(t, r, "is v0.4.0, this CLI is v0.5.0: run `replicator setup` to update it (this job uses the cutover command, which the platform does not know)")
	if jobs, err := s.Store().ListActive(context.Background()); err != nil || len(jobs) != 0 {
		t.Fatalf("a refused job reached the platform: %v %v", jobs, err)
	}

	r = runBinary(t, newer, env, append([]string{"init", "--remote", "--no-roles"}, conn...)...)
	if r.code != 0 || !strings.Contains(r.stderr, "warning: "+skew+s.API.URL+" is v0.4.0, this CLI is v0.5.0: run `replicator setup` to update it") {
		t.Fatalf("init --remote on an older platform (%d):\n%s", r.code, r.stderr)
	}
	id := jobIDFrom(t, r.stderr)
	j := waitJob(t, s, id, time.Minute, func(j *remote.Job) bool { return j.Status.Terminal() })
	if j.CLIVersion != "v0.5.0" || j.PlatformVersion != "v0.4.0" || !strings.HasPrefix(j.WorkerVersion, buildinfo.Release+"+") {
		t.Errorf("the job's versions: CLI %q, platform %q, worker %q", j.CLIVersion, j.PlatformVersion, j.WorkerVersion)
	}
	r = runBinary(t, newer, env, "jobs", "show", id)
	if r.code != 0 || !strings.Contains(r.stdout, "submitted by CLI v0.5.0 to platform v0.4.0; worker "+buildinfo.Release+"+") || !strings.Contains(r.stderr, "warning: "+skew) {
		t.Errorf("jobs show on an older platform (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	// The same platform version as the CLI: no warning.
	if r := replicator(t, base.CallerEnv("alice"), "jobs", "list"); r.code != 0 || strings.Contains(r.stderr, "warning") {
		t.Errorf("jobs list on a platform of the same version: %d %s", r.code, r.stderr)
	}
}
