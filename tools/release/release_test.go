package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"io"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"slices"
	"strings"
	"testing"
)

// The same commit built twice gives byte-identical archives and
// SHA256SUMS, which -verify accepts; the archive holds the binary, the
// README, the CHANGELOG and the licence, and the binary knows its version
// and commit. (One platform: the others differ only in GOOS/GOARCH.)
func TestReleaseIsReproducible(t *testing.T) {
	if _, err := exec.LookPath("git"); err != nil {
		t.Fatal("git is needed to read the commit: install it (apt-get install git)")
	}
	root, _ := filepath.Abs(filepath.Join("..", ".."))
	build := func() string {
		out := t.TempDir()
		if _, err := Build(context.Background(), Options{Root: root, Out: out, Version: "v0.5.0", Platforms: []string{"linux/amd64"},
			Log: slog.New(slog.DiscardHandler)}); err != nil {
			t.Fatal(err)
		}
		return out
	}
	// A tag that is not the source's release is refused before anything is built.
	if _, err := Build(context.Background(), Options{Root: root, Out: t.TempDir(), Version: "v9.9.9", Platforms: []string{"linux/amd64"},
		Log: slog.New(slog.DiscardHandler)}); err == nil || !strings.Contains(err.Error(), "differs from the source's, v0.5.0") {
		t.Errorf("a tag that is not the source's release: %v", err)
	}
	a, b := build(), build()
	const name = "replicator_0.5.0_linux_amd64.tar.gz"
	for _, f := range []string{name, "SHA256SUMS"} {
		x, err1 := os.ReadFile(filepath.Join(a, f))
		y, err2 := os.ReadFile(filepath.Join(b, f))
		if err1 != nil || err2 != nil || !bytes.Equal(x, y) {
			t.Errorf("%s differs between two builds of the same commit (%v %v)", f, err1, err2)
		}
	}
	if err := Verify(a); err != nil {
		t.Fatal(err)
	}
	// A changed archive fails the check.
	f, _ := os.OpenFile(filepath.Join(b, name), os.O_APPEND|os.O_WRONLY, 0)
	f.Write([]byte{0})
	f.Close()
	if err := Verify(b); err == nil || !strings.Contains(err.Error(), name) {
		t.Errorf("a changed archive passed: %v", err)
	}

	members, bin := unpack(t, filepath.Join(a, name))
	want := "replicator_0.5.0_linux_amd64/ replicator_0.5.0_linux_amd64/CHANGELOG.md replicator_0.5.0_linux_amd64/LICENSE replicator_0.5.0_linux_amd64/README.md replicator_0.5.0_linux_amd64/replicator"
	var files, man, docs []string
	for _, m := range members {
		if strings.Contains(m, "/man/man1/") {
			man = append(man, m)
		} else if strings.Contains(m, "/docs/") {
			docs = append(docs, m)
		} else {
			files = append(files, m)
		}
	}
	if strings.Join(files, " ") != want {
		t.Errorf("archive holds %v", members)
	}
	// A man page per command, the same set as the checked-in reference.
	ref, _ := filepath.Glob(filepath.Join(root, "docs", "reference", "replicator*.md"))
	if len(man) != len(ref) || !slices.Contains(man, "replicator_0.5.0_linux_amd64/man/man1/replicator-init.1") {
		t.Errorf("archive's man pages %v, want one per page of docs/reference (%d)", man, len(ref))
	}
	if !slices.Contains(docs, "replicator_0.5.0_linux_amd64/docs/guides/copy.md") || !slices.Contains(docs, "replicator_0.5.0_linux_amd64/docs/reference/replicator_init.md") {
		t.Errorf("archive's docs: %v", docs)
	}
	hash, _, _ := commit(context.Background(), root)
	out, err := exec.Command(bin, "--version").Output()
	if err != nil || !strings.HasPrefix(string(out), "replicator v0.5.0 (commit "+hash[:12]+", built ") {
		t.Errorf("--version of the release: %v %q", err, out)
	}
	// The embedded Lambda and worker: setup gets past its artifacts (and
	// stops later, without AWS credentials or a pulumi CLI).
	r, _ := exec.Command(bin, "setup", "--backend", "file://"+t.TempDir()).CombinedOutput()
	if strings.Contains(string(r), "without the linux/arm64 Lambda and worker") {
		t.Errorf("the release binary does not embed the Lambda and worker: %s", r)
	}
}

// unpack lists an archive's members and writes its binary out.
func unpack(t *testing.T, path string) ([]string, string) {
	t.Helper()
	f, err := os.Open(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	gz, err := gzip.NewReader(f)
	if err != nil {
		t.Fatal(err)
	}
	tr := tar.NewReader(gz)
	var names []string
	bin := filepath.Join(t.TempDir(), "replicator")
	for {
		h, err := tr.Next()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		names = append(names, h.Name)
		if strings.HasSuffix(h.Name, "/replicator") {
			data, _ := io.ReadAll(tr)
			os.WriteFile(bin, data, 0o755)
		}
	}
	return names, bin
}
