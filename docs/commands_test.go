// Package docs holds the tests that keep the documentation true to the code:
// the commands in its shell blocks (commands_test.go), the generated reference
// (cli/root's TestReferenceIsCurrent) and the troubleshooting page.
package docs

import (
	"bytes"
	"fmt"
	"io"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"mvdan.cc/sh/v3/expand"
	"mvdan.cc/sh/v3/syntax"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/root"
	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
)

// docPages are the hand-written pages: the README, ARCHITECTURE.md and
// everything under docs/ but the generated reference.
func docPages(t *testing.T) []string {
	t.Helper()
	pages := []string{"../README.md", "../ARCHITECTURE.md"}
	err := filepath.WalkDir(".", func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() && p == "reference" {
			return filepath.SkipDir
		}
		if !d.IsDir() && strings.HasSuffix(p, ".md") {
			pages = append(pages, p)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	return pages
}

// A shell block: ```sh, ```bash or ```shell up to the closing fence.
var shellBlock = regexp.MustCompile("(?ms)^[ \t]*```(?:sh|bash|shell)[ \t]*\n(.*?)^[ \t]*```")

// A `$ ` prompt is the reader's, not the shell's.
var prompt = regexp.MustCompile(`(?m)^(\s*)\$ `)

// docCommand is one `replicator ...` call found in a page.
type docCommand struct {
	where string // page:line
	args  []string
}

// commandsIn parses a page's shell blocks with a real shell parser (so
// quoting, continuations, pipes and `$(...)` are read as a shell reads them)
// and returns the replicator calls, with variables expanded to placeholders.
func commandsIn(page string, text []byte) ([]docCommand, error) {
	var out []docCommand
	for _, m := range shellBlock.FindAllSubmatchIndex(text, -1) {
		body := text[m[2]:m[3]]
		line0 := bytes.Count(text[:m[2]], []byte("\n")) + 1
		body = prompt.ReplaceAll(body, []byte("$1"))
		f, err := syntax.NewParser().Parse(bytes.NewReader(body), page)
		if err != nil {
			return nil, fmt.Errorf("%s:%d: a shell block that does not parse: %v", page, line0, err)
		}
		var werr error
		syntax.Walk(f, func(n syntax.Node) bool {
			call, ok := n.(*syntax.CallExpr)
			if !ok || len(call.Args) == 0 || call.Args[0].Lit() != "replicator" {
				return true
			}
			c := docCommand{where: fmt.Sprintf("%s:%d", page, line0+int(call.Pos().Line())-1)}
			for _, w := range call.Args[1:] {
				s, err := expand.Literal(placeholders, w)
				if err != nil {
					werr = fmt.Errorf("%s: %v", c.where, err)
					return false
				}
				c.args = append(c.args, s)
			}
			out = append(out, c)
			return true
		})
		if werr != nil {
			return nil, werr
		}
	}
	return out, nil
}

// placeholders stand in for the variables and command substitutions the
// examples use: a URL where the name says it holds one, a word otherwise.
var placeholders = &expand.Config{
	Env: expand.FuncEnviron(func(name string) string {
		n := strings.ToUpper(name)
		for _, k := range []string{"URL", "SRC", "DST", "SOURCE", "TARGET"} {
			if strings.Contains(n, k) {
				return "postgres://user@db.example.com:5432/postgres"
			}
		}
		return "value"
	}),
	CmdSubst: func(w io.Writer, _ *syntax.CmdSubst) error {
		_, err := io.WriteString(w, "value")
		return err
	},
}

// parse runs a command through the real tree, stopping once its flags and
// arguments are checked.
func parse(args []string) error {
	f := factory.New(buildinfo.Info{Version: buildinfo.Release})
	f.IOStreams, _, _, _ = iostreams.Test()
	cmd := root.NewCmdRootParseOnly(f)
	cmd.SetArgs(args)
	cmd.SetOut(io.Discard)
	cmd.SetErr(io.Discard)
	return cmd.Execute()
}

// TestDocCommandsParse: every replicator command in the docs' shell blocks
// is one the CLI accepts, flags and arguments included.
func TestDocCommandsParse(t *testing.T) {
	t.Setenv("REPLICATOR_SOURCE", "")
	t.Setenv("REPLICATOR_TARGET", "")
	n := 0
	for _, page := range docPages(t) {
		text, err := os.ReadFile(page)
		if err != nil {
			t.Fatal(err)
		}
		cmds, err := commandsIn(page, text)
		if err != nil {
			t.Error(err)
			continue
		}
		for _, c := range cmds {
			n++
			if err := parse(c.args); err != nil {
				t.Errorf("%s: replicator %s: %v", c.where, strings.Join(c.args, " "), err)
			}
		}
	}
	// The walk must find the docs' commands, or this test checks nothing.
	if n < 40 {
		t.Fatalf("found only %d replicator commands in the docs", n)
	}
	t.Logf("%d commands parsed", n)
}

// The check fails on what it is there to catch: an unknown flag, a bad
// value, a missing argument, an unknown command; and reads shell as a shell.
func TestDocCommandsCheckIsStrict(t *testing.T) {
	page := []byte("text\n```sh\n" +
		"replicator init --no-such-flag\n" +
		"PGPASSWORD=x replicator verify --jobs many\n" +
		"replicator jobs show\n" +
		"$ replicator frobnicate | jq .\n" +
		"replicator init --source \"$SOURCE_URL\" \\\n  --target $(cat t) --include-databases 'a b'\n" +
		"```\n")
	cmds, err := commandsIn("page.md", page)
	if err != nil {
		t.Fatal(err)
	}
	if len(cmds) != 5 {
		t.Fatalf("found %d commands, want 5: %+v", len(cmds), cmds)
	}
	for _, c := range cmds[:4] {
		if parse(c.args) == nil {
			t.Errorf("%s: replicator %s passed", c.where, strings.Join(c.args, " "))
		}
	}
	last := cmds[4]
	want := []string{"init", "--source", "postgres://user@db.example.com:5432/postgres", "--target", "value", "--include-databases", "a b"}
	if strings.Join(last.args, "|") != strings.Join(want, "|") || last.where != "page.md:7" {
		t.Errorf("continued command read as %s %q", last.where, last.args)
	}
	if err := parse(last.args); err != nil {
		t.Errorf("a valid command failed: %v", err)
	}
}
