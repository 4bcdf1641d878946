package root

import (
	"os"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"
)

// TestReferenceIsCurrent fails when docs/reference differs from what the
// command tree generates: run `go tool task docs` and commit the result.
func TestReferenceIsCurrent(t *testing.T) {
	fresh := t.TempDir()
	if err := WriteReference(fresh); err != nil {
		t.Fatal(err)
	}
	checkedIn := filepath.Join("..", "..", ReferenceDir)
	want, got := pages(t, fresh), pages(t, checkedIn)
	if !slices.Equal(want, got) {
		t.Fatalf("docs/reference has pages %v, the command tree makes %v: run `go tool task docs`", got, want)
	}
	for _, name := range want {
		a, _ := os.ReadFile(filepath.Join(fresh, name))
		b, _ := os.ReadFile(filepath.Join(checkedIn, name))
		if string(a) != string(b) {
			t.Errorf("docs/reference/%s is stale: run `go tool task docs`", name)
		}
	}
}

func pages(t *testing.T, dir string) []string {
	t.Helper()
	m, err := filepath.Glob(filepath.Join(dir, "replicator*.md"))
	if err != nil {
		t.Fatal(err)
	}
	for i := range m {
		m[i] = filepath.Base(m[i])
	}
	slices.Sort(m)
	return m
}

// The release puts a man page per command into its archives; each is dated
// by the caller (the commit), never by the clock, and says its command's flags.
func TestManPages(t *testing.T) {
	dir := t.TempDir()
	at := time.Date(2026, 12, 1, 0, 0, 0, 0, time.UTC)
	if err := WriteManPages(dir, at); err != nil {
		t.Fatal(err)
	}
	b, err := os.ReadFile(filepath.Join(dir, "replicator-cutover.1"))
	if err != nil {
		t.Fatal(err)
	}
	page := string(b)
	for _, want := range []string{`.TH "REPLICATOR" "1" "Dec 2026"`, `\fB--rollback\fP`, "replicator-cutover"} {
		if !strings.Contains(page, want) {
			t.Errorf("replicator-cutover.1 lacks %q:\n%s", want, page[:min(len(page), 600)])
		}
	}
	all, _ := filepath.Glob(filepath.Join(dir, "*.1"))
	md, _ := filepath.Glob(filepath.Join("..", "..", ReferenceDir, "replicator*.md"))
	if len(all) != len(md) {
		t.Errorf("%d man pages for %d reference pages", len(all), len(md))
	}
}
