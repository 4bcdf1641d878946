package root

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"github.com/spf13/cobra/doc"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
)

// ReferenceDir is where the generated command reference lives in the
// repository (`go tool task docs` writes it; a test keeps it current).
const ReferenceDir = "docs/reference"

// docTree is the command tree as the manual shows it: the same commands and
// flags as the binary's, with nothing that depends on the machine or the build
// (no date stamp, no version), so that the output is the same everywhere.
func docTree() *cobra.Command {
	f := factory.New(buildinfo.Info{Version: buildinfo.Release})
	f.IOStreams, _, _, _ = iostreams.Test()
	cmd := NewCmdRoot(f)
	// Execute adds `completion` on the fly; the manual lists it too.
	cmd.InitDefaultCompletionCmd()
	var off func(*cobra.Command)
	off = func(c *cobra.Command) {
		c.DisableAutoGenTag = true
		for _, s := range c.Commands() {
			off(s)
		}
	}
	off(cmd)
	return cmd
}

// WriteReference writes one Markdown page per command into dir, replacing
// the pages there (a removed command's page goes too).
func WriteReference(dir string) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	old, err := filepath.Glob(filepath.Join(dir, "replicator*.md"))
	if err != nil {
		return err
	}
	for _, p := range old {
		if err := os.Remove(p); err != nil {
			return err
		}
	}
	header := func(string) string {
		return "<!-- Generated from the command tree by `go tool task docs`: do not edit. -->\n\n"
	}
	if err := doc.GenMarkdownTreeCustom(docTree(), dir, header, func(s string) string { return s }); err != nil {
		return fmt.Errorf("write the command reference: %w", err)
	}
	return nil
}

// WriteManPages writes section-1 man pages for every command into dir, dated
// at (the release's commit, so that archives are reproducible).
func WriteManPages(dir string, at time.Time) error {
	if err := os.MkdirAll(dir, 0o755); err != nil {
		return err
	}
	h := &doc.GenManHeader{
		Title:   "REPLICATOR",
		Section: "1",
		Date:    &at,
		Source:  "replicator " + strings.TrimPrefix(buildinfo.Release, "v"),
		Manual:  "replicator manual",
	}
	if err := doc.GenManTree(docTree(), h, dir); err != nil {
		return fmt.Errorf("write the man pages: %w", err)
	}
	return nil
}
