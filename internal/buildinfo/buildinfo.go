// Package buildinfo says what this binary is: its release version, commit,
// build date and Go version. Release builds set them with -ldflags -X (go
// tool task release); a binary from `go install ...@vX.Y.Z` gets the
// module's version and the commit from Go's own build information.
package buildinfo

import (
	"fmt"
	"runtime"
	"runtime/debug"
	"strings"

	"golang.org/x/mod/semver"
)

// Set with -ldflags "-X github.com/replicatorhq/replicator/internal/buildinfo.version=v1.2.3" (and commit, date).
var version, commit, date string

// ModulePath is the module replicator is built from.
const ModulePath = "github.com/replicatorhq/replicator"

// Info is what a binary is.
type Info struct {
	// Version is a semantic version: a release ("v1.2.3"), or for a build
	// from a working tree the release it is based on with its commit
	// ("v1.2.3+c60ee50a1b2c", "+dev" when the commit is unknown).
	Version   string `json:"version"`
	Commit    string `json:"commit,omitempty"`
	Date      string `json:"date,omitempty"`
	GoVersion string `json:"go"`
	Platform  string `json:"platform"`
	// FromModule: built by `go install` at a version: its source is in the
	// module cache at exactly that version.
	FromModule bool `json:"-"`
}

// Get reads this binary's information.
func Get() Info {
	i := Info{Version: version, Commit: commit, Date: date, GoVersion: runtime.Version(), Platform: runtime.GOOS + "/" + runtime.GOARCH}
	if bi, ok := debug.ReadBuildInfo(); ok {
		if i.Version == "" && semver.IsValid(bi.Main.Version) && bi.Main.Path == ModulePath {
			i.Version, i.FromModule = bi.Main.Version, true
		}
		for _, s := range bi.Settings {
			switch {
			case s.Key == "vcs.revision" && i.Commit == "":
				i.Commit = s.Value
			case s.Key == "vcs.time" && i.Date == "":
				i.Date = s.Value
			}
		}
	}
	// A commit stamped by the Taskfile may say ".dirty" itself.
	hash, dirty := strings.CutSuffix(i.Commit, ".dirty")
	if len(hash) > 12 {
		hash = hash[:12]
	}
	i.Commit = hash
	if i.Version == "" {
		i.Version = Release + "+" + buildMetadata(i.Commit, dirty || modified())
	}
	return i
}

// buildMetadata names a working tree's build: its commit, ".dirty" when it
// had changes.
func buildMetadata(commit string, dirty bool) string {
	if commit == "" {
		return "dev"
	}
	if dirty {
		return commit + ".dirty"
	}
	return commit
}

func modified() bool {
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.modified" {
				return s.Value == "true"
			}
		}
	}
	return false
}

// String is the --version line.
func (i Info) String() string {
	var parts []string
	if i.Commit != "" {
		parts = append(parts, "commit "+i.Commit)
	}
	if i.Date != "" {
		parts = append(parts, "built "+i.Date)
	}
	parts = append(parts, i.GoVersion, i.Platform)
	return fmt.Sprintf("replicator %s (%s)", i.Version, strings.Join(parts, ", "))
}

// Released reports whether v is a release version (vX.Y.Z, no
// pre-release), the only kind whose order means something.
func Released(v string) bool {
	return semver.IsValid(v) && semver.Prerelease(v) == "" && semver.Build(v) == ""
}

// Older reports whether release a is older than release b; false when
// either is not a release (a build from a working tree is not compared).
func Older(a, b string) bool {
	return Released(a) && Released(b) && semver.Compare(a, b) < 0
}
