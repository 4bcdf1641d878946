// Command release builds replicator's release archives into dist/: for linux
// and darwin on amd64 and arm64, each holding the binary (with the
// linux/arm64 Lambda and worker embedded for `replicator setup`), a man page
// per command (man/man1), the README and docs/, the CHANGELOG and the licence, and a
// SHA256SUMS file over them.
//
// Builds are reproducible: the same commit gives byte-identical archives.
// Everything that could vary is fixed: paths (-trimpath), cgo (off), the
// build date (the commit's), file times, owners and order in the tar, and
// the gzip header. `go tool task release` runs it; -verify checks a dist/
// against its SHA256SUMS.
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"os/exec"
	"path/filepath"
	"sort"
	"strings"
	"time"

	"github.com/replicatorhq/replicator/cli/root"
	"github.com/replicatorhq/replicator/internal/buildinfo"
)

// Platforms a release is built for.
var Platforms = []string{"linux/amd64", "linux/arm64", "darwin/amd64", "darwin/arm64"}

// Options of one release build.
type Options struct {
	// Root is the module's checkout; Out where the archives go.
	Root, Out string
	// Version is the release ("v1.2.3"): the tag on the commit, unless given.
	Version   string
	Platforms []string
	Log       *slog.Logger
}

func main() {
	var o Options
	var platforms string
	verify := flag.Bool("verify", false, "check the archives in -out against their SHA256SUMS, build nothing")
	flag.StringVar(&o.Out, "out", "dist", "where the archives and SHA256SUMS go")
	flag.StringVar(&o.Version, "version", "", "release version (default: the tag on HEAD, which must exist)")
	flag.StringVar(&platforms, "platforms", strings.Join(Platforms, ","), "comma-separated GOOS/GOARCH")
	flag.Parse()
	o.Root, o.Platforms = ".", strings.Split(platforms, ",")
	o.Log = slog.New(slog.NewTextHandler(os.Stderr, nil))
	var err error
	if *verify {
		err = Verify(o.Out)
	} else if err = clean(o.Root); err == nil {
		var files []string
		if files, err = Build(context.Background(), o); err == nil {
			err = Verify(o.Out)
			fmt.Println(strings.Join(files, "\n"))
		}
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "release:", err)
		os.Exit(1)
	}
}

// clean refuses a checkout with changes: the archives take the README and
// the rest from the working tree, and must be the commit's.
func clean(root string) error {
	out, err := exec.Command("git", "-C", root, "status", "--porcelain", "--untracked-files=no").Output()
	if err != nil {
		return fmt.Errorf("git status: %w", err)
	}
	if len(bytes.TrimSpace(out)) > 0 {
		return fmt.Errorf("the checkout has uncommitted changes: commit or stash them, so that the archives are the tag's")
	}
	return nil
}

// commit is the checkout's commit and its time (the build's date).
func commit(ctx context.Context, root string) (hash string, at time.Time, err error) {
	out, err := exec.CommandContext(ctx, "git", "-C", root, "show", "-s", "--format=%H %cI", "HEAD").Output()
	if err != nil {
		return "", at, fmt.Errorf("git show HEAD: %w", err)
	}
	f := strings.Fields(string(out))
	if len(f) != 2 {
		return "", at, fmt.Errorf("git show HEAD: %q", out)
	}
	at, err = time.Parse(time.RFC3339, f[1])
	return f[0], at.UTC(), err
}

// Build writes the archives and SHA256SUMS into o.Out and returns their
// paths.
func Build(ctx context.Context, o Options) ([]string, error) {
	hash, at, err := commit(ctx, o.Root)
	if err != nil {
		return nil, err
	}
	if o.Version == "" {
		out, err := exec.CommandContext(ctx, "git", "-C", o.Root, "describe", "--tags", "--exact-match", "HEAD").Output()
		if err != nil {
			return nil, fmt.Errorf("HEAD has no release tag: tag it (git tag v1.2.3) or pass -version")
		}
		o.Version = strings.TrimSpace(string(out))
	}
	if !buildinfo.Released(o.Version) {
		return nil, fmt.Errorf("version %q is not a release (vMAJOR.MINOR.PATCH)", o.Version)
	}
	if o.Version != buildinfo.Release {
		return nil, fmt.Errorf("version %s differs from the source's, %s: move the CHANGELOG's Unreleased entry to %s and set buildinfo.Release (internal/buildinfo/release.go) to it first, then tag that commit",
			o.Version, buildinfo.Release, o.Version)
	}
	if err := os.MkdirAll(o.Out, 0o755); err != nil {
		return nil, err
	}
	tmp, err := os.MkdirTemp("", "replicator-release-")
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	ld := func(extra string) string {
		p := buildinfo.ModulePath + "/internal/buildinfo"
		return fmt.Sprintf("-s -w -buildid= -X %s.version=%s -X %s.commit=%s -X %s.date=%s%s", p, o.Version, p, hash, p, at.Format(time.RFC3339), extra)
	}
	// The Lambda and the worker, linux/arm64, embedded through an overlay:
	// the checkout is never written to.
	boot, worker := filepath.Join(tmp, "bootstrap"), filepath.Join(tmp, "worker")
	for _, b := range []struct{ out, pkg, tags string }{{boot, "./lambda", "lambda.norpc"}, {worker, "./worker", ""}} {
		if err := goBuild(ctx, o, "linux/arm64", b.out, b.pkg, b.tags, ld(""), ""); err != nil {
			return nil, err
		}
	}
	overlay := filepath.Join(tmp, "overlay.json")
	art, err := filepath.Abs(filepath.Join(o.Root, "platform", "artifacts"))
	if err != nil {
		return nil, err
	}
	// Gzipped: a third of the size in every archive's binary.
	replace := map[string]string{}
	for _, f := range []string{boot, worker} {
		if err := gzipFile(f, f+".gz"); err != nil {
			return nil, err
		}
		replace[filepath.Join(art, filepath.Base(f)+".gz")] = f + ".gz"
	}
	ov, _ := json.Marshal(map[string]map[string]string{"Replace": replace})
	if err := os.WriteFile(overlay, ov, 0o644); err != nil {
		return nil, err
	}
	man, err := manPages(filepath.Join(tmp, "man"), at)
	if err != nil {
		return nil, err
	}
	docs, err := docPages(o.Root)
	if err != nil {
		return nil, err
	}
	man = append(man, docs...)
	var files []string
	for _, p := range o.Platforms {
		name := fmt.Sprintf("replicator_%s_%s", strings.TrimPrefix(o.Version, "v"), strings.ReplaceAll(p, "/", "_"))
		bin := filepath.Join(tmp, name, "replicator")
		if err := goBuild(ctx, o, p, bin, "./cli/replicator", "", ld(""), overlay); err != nil {
			return nil, err
		}
		archive := filepath.Join(o.Out, name+".tar.gz")
		if err := writeArchive(archive, name, at, append([]member{{bin, "replicator", 0o755},
			{filepath.Join(o.Root, "README.md"), "README.md", 0o644},
			{filepath.Join(o.Root, "CHANGELOG.md"), "CHANGELOG.md", 0o644},
			{filepath.Join(o.Root, "LICENSE"), "LICENSE", 0o644}}, man...)); err != nil {
			return nil, err
		}
		o.Log.Info("built", "archive", archive)
		files = append(files, archive)
	}
	sums, err := checksums(files)
	if err != nil {
		return nil, err
	}
	sumFile := filepath.Join(o.Out, "SHA256SUMS")
	return append(files, sumFile), os.WriteFile(sumFile, []byte(sums), 0o644)
}

// manPages writes a man page per command, dated at the commit, as archive
// members under man/man1.
func manPages(dir string, at time.Time) ([]member, error) {
	if err := root.WriteManPages(dir, at); err != nil {
		return nil, err
	}
	pages, err := filepath.Glob(filepath.Join(dir, "*.1"))
	if err != nil || len(pages) == 0 {
		return nil, fmt.Errorf("no man pages written into %s: %v", dir, err)
	}
	var m []member
	for _, p := range pages {
		m = append(m, member{p, "man/man1/" + filepath.Base(p), 0o644})
	}
	return m, nil
}

// docPages are the Markdown pages under docs/ (guides, reference), as the
// README links them.
func docPages(root string) ([]member, error) {
	var m []member
	err := filepath.WalkDir(filepath.Join(root, "docs"), func(p string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || !strings.HasSuffix(p, ".md") {
			return err
		}
		rel, err := filepath.Rel(root, p)
		m = append(m, member{p, filepath.ToSlash(rel), 0o644})
		return err
	})
	if err == nil && len(m) == 0 {
		err = fmt.Errorf("no pages under %s/docs", root)
	}
	return m, err
}

func goBuild(ctx context.Context, o Options, platform, out, pkg, tags, ldflags, overlay string) error {
	goos, goarch, _ := strings.Cut(platform, "/")
	args := []string{"build", "-trimpath", "-buildvcs=false", "-ldflags", ldflags, "-o", out}
	if tags != "" {
		args = append(args, "-tags", tags)
	}
	if overlay != "" {
		args = append(args, "-overlay", overlay)
	}
	cmd := exec.CommandContext(ctx, "go", append(args, pkg)...)
	cmd.Dir = o.Root
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS="+goos, "GOARCH="+goarch, "GOFLAGS=-mod=readonly")
	if b, err := cmd.CombinedOutput(); err != nil {
		return fmt.Errorf("go build %s for %s: %v\n%s", pkg, platform, err, b)
	}
	return nil
}

type member struct {
	path, name string
	mode       int64
}

// writeArchive writes a tar.gz whose bytes depend only on the members'
// contents: fixed times (the commit's), no owners, a fixed order, and a
// gzip header without name or time.
func writeArchive(path, dir string, at time.Time, members []member) error {
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.DefaultCompression)
	if err != nil {
		return err
	}
	tw := tar.NewWriter(gz)
	sort.Slice(members, func(i, j int) bool { return members[i].name < members[j].name })
	if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeDir, Name: dir + "/", Mode: 0o755, ModTime: at, Format: tar.FormatPAX}); err != nil {
		return err
	}
	for _, m := range members {
		data, err := os.ReadFile(m.path)
		if err != nil {
			return err
		}
		if err := tw.WriteHeader(&tar.Header{Typeflag: tar.TypeReg, Name: dir + "/" + m.name, Mode: m.mode, Size: int64(len(data)), ModTime: at, Format: tar.FormatPAX}); err != nil {
			return err
		}
		if _, err := tw.Write(data); err != nil {
			return err
		}
	}
	if err := tw.Close(); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(path, buf.Bytes(), 0o644)
}

// gzipFile compresses src into dst, the header without name or time.
func gzipFile(src, dst string) error {
	data, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	var buf bytes.Buffer
	gz, err := gzip.NewWriterLevel(&buf, gzip.BestCompression)
	if err != nil {
		return err
	}
	if _, err := gz.Write(data); err != nil {
		return err
	}
	if err := gz.Close(); err != nil {
		return err
	}
	return os.WriteFile(dst, buf.Bytes(), 0o644)
}

// checksums is SHA256SUMS for files, in sha256sum's format.
func checksums(files []string) (string, error) {
	sort.Strings(files)
	var b strings.Builder
	for _, f := range files {
		sum, err := fileSum(f)
		if err != nil {
			return "", err
		}
		fmt.Fprintf(&b, "%s  %s\n", sum, filepath.Base(f))
	}
	return b.String(), nil
}

func fileSum(path string) (string, error) {
	f, err := os.Open(path)
	if err != nil {
		return "", err
	}
	defer f.Close()
	h := sha256.New()
	if _, err := io.Copy(h, f); err != nil {
		return "", err
	}
	return hex.EncodeToString(h.Sum(nil)), nil
}

// Verify checks every archive SHA256SUMS in dir names.
func Verify(dir string) error {
	data, err := os.ReadFile(filepath.Join(dir, "SHA256SUMS"))
	if err != nil {
		return err
	}
	n := 0
	for _, line := range strings.Split(strings.TrimSpace(string(data)), "\n") {
		want, name, ok := strings.Cut(line, "  ")
		if !ok {
			return fmt.Errorf("SHA256SUMS: bad line %q", line)
		}
		got, err := fileSum(filepath.Join(dir, name))
		if err != nil {
			return err
		}
		if got != want {
			return fmt.Errorf("%s: sha256 %s, SHA256SUMS says %s", name, got, want)
		}
		n++
	}
	if n == 0 {
		return fmt.Errorf("SHA256SUMS lists no archive")
	}
	return nil
}
