package buildinfo

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// The source's release is the CHANGELOG's top versioned entry: a release
// moves both, and a build off main names the release it is based on.
func TestReleaseIsTheChangelogs(t *testing.T) {
	b, err := os.ReadFile("../../CHANGELOG.md")
	if err != nil {
		t.Fatal(err)
	}
	top := regexp.MustCompile(`(?m)^## \[(\d+\.\d+\.\d+)\]`).FindSubmatch(b)
	if top == nil {
		t.Fatal("CHANGELOG.md has no versioned entry")
	}
	if want := "v" + string(top[1]); Release != want {
		t.Errorf("buildinfo.Release is %s, the CHANGELOG's top release %s: make them agree", Release, want)
	}
	if !Released(Release) {
		t.Errorf("Release %q is not a release version", Release)
	}
}

// A build without a release version says the release and its commit, and is
// not taken for a release by the skew checks.
func TestWorkingTreeVersion(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.Version, Release+"+") || Released(i.Version) {
		t.Errorf("a test binary's version is %q, want %s+...", i.Version, Release)
	}
	for _, c := range []struct {
		commit string
		dirty  bool
		want   string
	}{{"", false, "dev"}, {"c60ee50a1b2c", false, "c60ee50a1b2c"}, {"c60ee50a1b2c", true, "c60ee50a1b2c.dirty"}} {
		if got := buildMetadata(c.commit, c.dirty); got != c.want {
			t.Errorf("buildMetadata(%q, %v) = %q, want %q", c.commit, c.dirty, got, c.want)
		}
	}
}

// The Taskfile stamps the commit by hand (GOFLAGS=-buildvcs=false turns Go's
// own stamp off on CI machines), with ".dirty" for a modified tree.
func TestStampedCommit(t *testing.T) {
	defer func(c string) { commit = c }(commit)
	commit = "4922413c14d3f00d.dirty"
	i := Get()
	if want := Release + "+4922413c14d3.dirty"; i.Version != want || i.Commit != "4922413c14d3" {
		t.Fatalf("version %q commit %q, want %q and the short hash", i.Version, i.Commit, want)
	}
}
