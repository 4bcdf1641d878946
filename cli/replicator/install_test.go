package main_test

import (
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"golang.org/x/mod/module"
	modzip "golang.org/x/mod/zip"
)

// `go install github.com/replicatorhq/replicator/cli/replicator@VERSION`
// gives a binary without the embedded Lambda and worker; its setup builds
// them from the module's own source at that version, and deploys (against
// the stand-in provider). The module is served from a file:// GOPROXY made
// from this checkout's HEAD, at a version used once; the module cache keeps
// nothing of it afterwards.
func TestGoInstallCanSetUp(t *testing.T) {
	t.Parallel()
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	version := fmt.Sprintf("v0.0.0-%s-000000000000", time.Now().UTC().Format("20060102150405"))
	const path = "github.com/replicatorhq/replicator"
	proxy := t.TempDir()
	at := filepath.Join(proxy, path, "@v")
	os.MkdirAll(at, 0o755)
	f, err := os.Create(filepath.Join(at, version+".zip"))
	if err != nil {
		t.Fatal(err)
	}
	if err := modzip.CreateFromVCS(f, module.Version{Path: path, Version: version}, root, "HEAD", ""); err != nil {
		t.Fatalf("module zip of HEAD: %v", err)
	}
	f.Close()
	gomod, _ := os.ReadFile(filepath.Join(root, "go.mod"))
	os.WriteFile(filepath.Join(at, version+".mod"), gomod, 0o644)
	os.WriteFile(filepath.Join(at, version+".info"), []byte(fmt.Sprintf(`{"Version":%q,"Time":%q}`, version, time.Now().UTC().Format(time.RFC3339))), 0o644)
	os.WriteFile(filepath.Join(at, "list"), []byte(version+"\n"), 0o644)

	goEnv := func(k string) string {
		out, _ := exec.Command("go", "env", k).Output()
		return strings.TrimSpace(string(out))
	}
	modCache := goEnv("GOMODCACHE")
	t.Cleanup(func() {
		// Module cache entries are read-only.
		for _, p := range []string{filepath.Join(modCache, path+"@"+version), filepath.Join(modCache, "cache", "download", path, "@v")} {
			exec.Command("chmod", "-R", "u+w", p).Run()
		}
		os.RemoveAll(filepath.Join(modCache, path+"@"+version))
		matches, _ := filepath.Glob(filepath.Join(modCache, "cache", "download", path, "@v", version+".*"))
		for _, m := range matches {
			os.Remove(m)
		}
	})
	env := append(os.Environ(), "GOPROXY=file://"+proxy+","+goEnv("GOPROXY"), "GONOSUMDB="+path, "GOFLAGS=", "GOBIN="+t.TempDir())
	gobin := env[len(env)-1][len("GOBIN="):]
	install := exec.Command("go", "install", path+"/cli/replicator@"+version)
	install.Env, install.Dir = env, t.TempDir()
	if out, err := install.CombinedOutput(); err != nil {
		t.Fatalf("go install: %v\n%s", err, out)
	}
	installed := filepath.Join(gobin, "replicator")
	if r := runBinary(t, installed, nil, "--version"); !strings.HasPrefix(r.stdout, "replicator "+version+" (") {
		t.Errorf("--version of the installed binary: %q", r.stdout)
	}

	h := newSetupHarness(t, platform(t))
	h.bin = installed
	h.env = append(h.env, "GOPROXY=file://"+proxy+","+goEnv("GOPROXY"), "GONOSUMDB="+path, "GOFLAGS=")
	state := filepath.Join(h.dir, "state")
	os.MkdirAll(state, 0o755)
	r := h.run(t, nil, "setup", "--backend", "file://"+state, "--stack", "installed")
	if r.code != 0 {
		t.Fatalf("setup from a go install binary (%d):\n%s\n%s", r.code, r.stdout, r.stderr)
	}
	if !strings.Contains(r.stderr, "building them for linux/arm64 from "+path+"@"+version) {
		t.Errorf("setup did not say it built the Lambda and worker:\n%s", r.stderr)
	}
	if !strings.Contains(r.stdout, "API URL:") {
		t.Errorf("setup printed no outputs:\n%s", r.stdout)
	}
}
