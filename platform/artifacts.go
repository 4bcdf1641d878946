package platform

import (
	"archive/zip"
	"bytes"
	"compress/gzip"
	"context"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"

	"github.com/replicatorhq/replicator/internal/buildinfo"
)

// The linux/arm64 builds of the Lambda and the worker, embedded at build
// time, gzipped (NAME.gz: a third of their size, 20 MB less binary) or not.
//
//go:embed artifacts
var artifacts embed.FS

// ErrNoArtifacts means this replicator binary was built without them, from a
// working tree, so there is no released source to build them from.
var ErrNoArtifacts = errors.New("this replicator was built without the linux/arm64 Lambda and worker it deploys: build it with `go tool task build` (it cross-compiles them and embeds them), install it with `go install github.com/replicatorhq/replicator/cli/replicator@VERSION`, or use a release archive")

// WriteArtifacts writes the Lambda's zip and the worker binary into dir and
// returns their paths. A binary without them (go install) builds them from
// its own module's source, at its exact version; say reports that it does.
func WriteArtifacts(ctx context.Context, dir string, say func(string)) (lambdaZip, worker string, err error) {
	boot, err1 := embedded("bootstrap")
	work, err2 := embedded("worker")
	if err1 != nil || err2 != nil || len(boot) == 0 || len(work) == 0 {
		if boot, work, err = buildArtifacts(ctx, dir, say); err != nil {
			return "", "", err
		}
	}
	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	h := &zip.FileHeader{Name: "bootstrap", Method: zip.Deflate}
	h.SetMode(0o755)
	w, err := zw.CreateHeader(h)
	if err != nil {
		return "", "", err
	}
	if _, err := w.Write(boot); err != nil {
		return "", "", err
	}
	if err := zw.Close(); err != nil {
		return "", "", err
	}
	lambdaZip, worker = filepath.Join(dir, "lambda.zip"), filepath.Join(dir, "worker")
	if err := os.WriteFile(lambdaZip, buf.Bytes(), 0o644); err != nil {
		return "", "", err
	}
	return lambdaZip, worker, os.WriteFile(worker, work, 0o755)
}

// buildArtifacts cross-compiles the Lambda and the worker from the module's
// source in the module cache, at this binary's version (go install put it
// there; go mod download fetches it otherwise). It needs a Go toolchain.
func buildArtifacts(ctx context.Context, dir string, say func(string)) (boot, work []byte, err error) {
	info := buildinfo.Get()
	if !info.FromModule {
		return nil, nil, ErrNoArtifacts
	}
	goBin, err := exec.LookPath("go")
	if err != nil {
		return nil, nil, fmt.Errorf("this replicator (%s, from go install) does not embed the linux/arm64 Lambda and worker, and building them from its source needs a Go toolchain on PATH: install Go (https://go.dev/dl), or use a release archive, which embeds them", info.Version)
	}
	mod := buildinfo.ModulePath + "@" + info.Version
	out, err := exec.CommandContext(ctx, goBin, "mod", "download", "-json", mod).Output()
	var dl struct{ Dir, Error string }
	_ = json.Unmarshal(out, &dl)
	if err != nil || dl.Dir == "" {
		return nil, nil, fmt.Errorf("find the source of %s: %v %s", mod, err, dl.Error)
	}
	say(fmt.Sprintf("this replicator does not embed the Lambda and worker: building them for linux/arm64 from %s (a minute or two)", mod))
	ld := "-s -w -X " + buildinfo.ModulePath + "/internal/buildinfo.version=" + info.Version
	for _, b := range []struct {
		pkg, tags string
		out       *[]byte
	}{{"./lambda", "lambda.norpc", &boot}, {"./worker", "", &work}} {
		target := filepath.Join(dir, filepath.Base(b.pkg)+".bin")
		args := []string{"build", "-trimpath", "-ldflags", ld, "-o", target}
		if b.tags != "" {
			args = append(args, "-tags", b.tags)
		}
		cmd := exec.CommandContext(ctx, goBin, append(args, b.pkg)...)
		cmd.Dir = dl.Dir
		cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=arm64", "GOFLAGS=-mod=readonly")
		if msg, err := cmd.CombinedOutput(); err != nil {
			return nil, nil, fmt.Errorf("build %s from %s: %v\n%s", b.pkg, mod, err, msg)
		}
		if *b.out, err = os.ReadFile(target); err != nil {
			return nil, nil, err
		}
	}
	return boot, work, nil
}

// embedded reads an embedded artifact, NAME.gz (decompressed) or NAME.
func embedded(name string) ([]byte, error) {
	if gz, err := artifacts.ReadFile("artifacts/" + name + ".gz"); err == nil {
		r, err := gzip.NewReader(bytes.NewReader(gz))
		if err != nil {
			return nil, fmt.Errorf("embedded %s: %w", name, err)
		}
		return io.ReadAll(r)
	}
	return artifacts.ReadFile("artifacts/" + name)
}
