package docs

import (
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"testing"
)

// The troubleshooting page must name every problem the code can report to
// a user, so that whoever searches for the message finds it. These tests
// read the module's Go source (not the tests) and collect the messages of:
//
//   - every problem.Problem{Msg: ...} and problem.Errorf(...), and calls to
//     a function that only forwards its format to problem.Errorf (the
//     engine's userErrorf);
//   - validate's findings that fail or warn (c.add(check, Fail|Warn, msg, fix));
//   - the cut-over's failing guardrails (fail(db, format, ...));
//   - the connection failures conninfo.Explain words (msg = fmt.Sprintf(...)).
//
// Of each message they take the longest run of constant text between the
// format verbs and the values pasted in, and require it in
// troubleshooting.md (whitespace collapsed, backticks ignored). A run
// shorter than troubleshootingMinRun says too little to search for and is
// skipped; a message that is built entirely at run time has no run and is
// only logged.

const troubleshootingPage = "troubleshooting.md"

// troubleshootingMinRun is the shortest run of constant text that is
// required on the page.
const troubleshootingMinRun = 12

// troubleshootingExempt are runs that need not be on the page, keyed by the
// run exactly as a failure of this test quotes it, each with the reason:
//
//	"the run": "why no user needs it on the page",
//
// An entry that no message produces any more fails the test, so the list
// cannot go stale. None is needed today: every message found is one a user
// may read.
var troubleshootingExempt = map[string]string{}

// troubleshootingMessage is one message found in the source.
type troubleshootingMessage struct {
	pos  string // file:line, relative to the module root
	kind string // what produced it
	run  string // the longest constant run, trimmed ("" when none)
}

func TestTroubleshootingNamesEveryProblem(t *testing.T) {
	root := troubleshootingModuleRoot(t)
	msgs := troubleshootingMessages(t, root)
	if len(msgs) < 50 {
		// The walk found far fewer messages than the code has: the test
		// itself is broken (a renamed package, a changed root).
		t.Fatalf("found only %d messages in %s; expected many more", len(msgs), root)
	}
	b, err := os.ReadFile(troubleshootingPage)
	if err != nil {
		t.Fatal(err)
	}
	page := troubleshootingNormalize(string(b))
	used := map[string]bool{}
	checked := 0
	for _, m := range msgs {
		switch {
		case m.run == "":
			t.Logf("%s: %s built at run time: not checked", m.pos, m.kind)
		case troubleshootingExempt[m.run] != "":
			used[m.run] = true
		case len(m.run) < troubleshootingMinRun:
			t.Logf("%s: %s %q: too short to require", m.pos, m.kind, m.run)
		default:
			checked++
			if !strings.Contains(page, troubleshootingNormalize(m.run)) {
				t.Errorf("%s: %s: %s does not contain %q", m.pos, m.kind, troubleshootingPage, m.run)
			}
		}
	}
	for run, why := range troubleshootingExempt {
		if !used[run] {
			t.Errorf("exemption %q (%s) matches no message any more: remove it", run, why)
		}
	}
	t.Logf("%d messages found, %d required on %s", len(msgs), checked, troubleshootingPage)
}

// The extraction itself: format verbs split runs, %% does not, string
// concatenation joins constant parts.
func TestTroubleshootingRuns(t *testing.T) {
	for _, tc := range []struct {
		src  string
		want string
	}{
		{`fmt.Sprintf("source role %s lacks the REPLICATION privilege", u)`, "lacks the REPLICATION privilege"},
		{`fmt.Sprintf("%d table(s) differ between the sides: %s", n, s)`, "table(s) differ between the sides:"},
		{`fmt.Sprintf("percent-encode (%%2F, %%3F) %s x", a)`, "percent-encode (%2F, %3F)"},
		{`fmt.Sprintf("%[1]s and %-8.2f and some longer tail", a, b)`, "and some longer tail"},
		{`"--exclude-indexes names " + list + ": leaving it out"`, "--exclude-indexes names"},
		{`"no database selected"`, "no database selected"},
		{`"100% " + "sure"`, "100% sure"},
		{`x.Message`, ""},
	} {
		e, err := parser.ParseExpr(tc.src)
		if err != nil {
			t.Fatal(err)
		}
		if got := troubleshootingLongest(troubleshootingPieces(e, false, nil)); got != tc.want {
			t.Errorf("%s: got %q, want %q", tc.src, got, tc.want)
		}
	}
	if got := troubleshootingNormalize("a  `b`\n\tc"); got != "a b c" {
		t.Errorf("normalize: %q", got)
	}
}

// troubleshootingModuleRoot is the directory of the module's go.mod: go env
// GOMOD says where it is, else the parent of this directory.
func troubleshootingModuleRoot(t *testing.T) string {
	if out, err := exec.Command("go", "env", "GOMOD").Output(); err == nil {
		if mod := strings.TrimSpace(string(out)); mod != "" && mod != os.DevNull {
			return filepath.Dir(mod)
		}
	}
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("no go.mod above %s: %v", root, err)
	}
	return root
}

const troubleshootingProblemPath = "github.com/replicatorhq/replicator/internal/problem"

// troubleshootingFile is one parsed source file.
type troubleshootingFile struct {
	rel     string // path relative to the module root, with slashes
	f       *ast.File
	problem string // the local name of the problem package ("" when not imported)
}

func troubleshootingMessages(t *testing.T, root string) []troubleshootingMessage {
	fset := token.NewFileSet()
	var files []troubleshootingFile
	err := filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if path != root && (strings.HasPrefix(name, ".") || strings.HasPrefix(name, "_") || name == "testdata" || name == "vendor" || name == "node_modules") {
				return filepath.SkipDir
			}
			if path != root {
				// Another module's tree is not this one's code.
				if _, err := os.Stat(filepath.Join(path, "go.mod")); err == nil {
					return filepath.SkipDir
				}
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") {
			return nil
		}
		f, err := parser.ParseFile(fset, path, nil, parser.SkipObjectResolution)
		if err != nil {
			return err
		}
		rel, _ := filepath.Rel(root, path)
		tf := troubleshootingFile{rel: filepath.ToSlash(rel), f: f}
		for _, imp := range f.Imports {
			if p, _ := strconv.Unquote(imp.Path.Value); p == troubleshootingProblemPath {
				tf.problem = "problem"
				if imp.Name != nil {
					tf.problem = imp.Name.Name
				}
			}
		}
		files = append(files, tf)
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}

	// Functions that forward their format to problem.Errorf, by package
	// directory and name.
	wrappers := map[string]bool{}
	for _, tf := range files {
		if tf.problem == "" {
			continue
		}
		for _, decl := range tf.f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Recv != nil || fd.Body == nil || fd.Type.Params == nil || len(fd.Type.Params.List) == 0 || len(fd.Type.Params.List[0].Names) == 0 {
				continue
			}
			format := fd.Type.Params.List[0].Names[0].Name
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				if c, ok := n.(*ast.CallExpr); ok && troubleshootingIsSel(c.Fun, tf.problem, "Errorf") && len(c.Args) > 0 {
					if id, ok := c.Args[0].(*ast.Ident); ok && id.Name == format {
						wrappers[filepath.Dir(tf.rel)+"."+fd.Name.Name] = true
					}
				}
				return true
			})
		}
	}

	var out []troubleshootingMessage
	for _, tf := range files {
		dir := filepath.Dir(tf.rel)
		add := func(n ast.Node, kind string, pieces []troubleshootingPiece) {
			p := fset.Position(n.Pos())
			out = append(out, troubleshootingMessage{pos: tf.rel + ":" + strconv.Itoa(p.Line), kind: kind, run: troubleshootingLongest(pieces)})
		}
		for _, decl := range tf.f.Decls {
			fd, ok := decl.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				switch n := n.(type) {
				case *ast.CompositeLit:
					if tf.problem == "" || !troubleshootingIsSel(n.Type, tf.problem, "Problem") {
						return true
					}
					for i, el := range n.Elts {
						if kv, ok := el.(*ast.KeyValueExpr); ok {
							if k, ok := kv.Key.(*ast.Ident); ok && k.Name == "Msg" {
								add(n, "problem.Problem Msg", troubleshootingPieces(kv.Value, false, fd.Body))
							}
						} else if i == 0 {
							add(n, "problem.Problem Msg", troubleshootingPieces(el, false, fd.Body))
						}
					}
				case *ast.CallExpr:
					switch {
					case len(n.Args) == 0:
					case tf.problem != "" && troubleshootingIsSel(n.Fun, tf.problem, "Errorf"):
						if fd.Recv != nil || !wrappers[dir+"."+fd.Name.Name] {
							add(n, "problem.Errorf", troubleshootingPieces(n.Args[0], true, fd.Body))
						}
					case troubleshootingIsIdent(n.Fun) != "" && wrappers[dir+"."+troubleshootingIsIdent(n.Fun)]:
						add(n, troubleshootingIsIdent(n.Fun)+" (problem.Errorf)", troubleshootingPieces(n.Args[0], true, fd.Body))
					case dir == "internal/validate" && len(n.Args) >= 3 && troubleshootingIsMethod(n.Fun, "add"):
						if sev := troubleshootingIsIdent(n.Args[1]); sev == "Fail" || sev == "Warn" {
							add(n, "validate finding ("+strings.ToLower(sev)+")", troubleshootingPieces(n.Args[2], false, fd.Body))
						}
					case dir == "internal/cutover" && len(n.Args) >= 2 && troubleshootingIsIdent(n.Fun) == "fail":
						add(n, "cut-over guardrail", troubleshootingPieces(n.Args[1], true, fd.Body))
					}
				case *ast.AssignStmt:
					if dir != "internal/conninfo" || fd.Name.Name != "Explain" || len(n.Lhs) != 1 || len(n.Rhs) != 1 || troubleshootingIsIdent(n.Lhs[0]) != "msg" || n.Tok != token.ASSIGN {
						return true
					}
					if c, ok := n.Rhs[0].(*ast.CallExpr); ok && troubleshootingIsSel(c.Fun, "fmt", "Sprintf") {
						add(n, "connection failure", troubleshootingPieces(n.Rhs[0], false, fd.Body))
					}
				}
				return true
			})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].pos < out[j].pos })
	return out
}

// troubleshootingPiece is a part of a message: constant text, or a value
// only known at run time (konst false).
type troubleshootingPiece struct {
	text  string
	konst bool
}

// troubleshootingPieces splits the expression that makes a message into
// constant text and run-time values. format: e is a format string (its verbs
// are values). body, when not nil, is the enclosing function: a local
// variable assigned once there stands for what it was assigned.
func troubleshootingPieces(e ast.Expr, format bool, body *ast.BlockStmt) []troubleshootingPiece {
	value := []troubleshootingPiece{{}}
	switch e := e.(type) {
	case *ast.ParenExpr:
		return troubleshootingPieces(e.X, format, body)
	case *ast.BasicLit:
		if e.Kind != token.STRING {
			return value
		}
		s, err := strconv.Unquote(e.Value)
		if err != nil {
			return value
		}
		if format {
			return troubleshootingSplitFormat(s)
		}
		return []troubleshootingPiece{{text: s, konst: true}}
	case *ast.BinaryExpr:
		if e.Op != token.ADD {
			return value
		}
		return append(troubleshootingPieces(e.X, format, body), troubleshootingPieces(e.Y, format, body)...)
	case *ast.CallExpr:
		if troubleshootingIsSel(e.Fun, "fmt", "Sprintf") && len(e.Args) > 0 {
			return troubleshootingPieces(e.Args[0], true, body)
		}
		return value
	case *ast.Ident:
		if body == nil {
			return value
		}
		var defs []ast.Expr
		ast.Inspect(body, func(n ast.Node) bool {
			if as, ok := n.(*ast.AssignStmt); ok {
				for i, l := range as.Lhs {
					if troubleshootingIsIdent(l) == e.Name {
						if as.Tok == token.DEFINE && len(as.Rhs) == len(as.Lhs) {
							defs = append(defs, as.Rhs[i])
						} else {
							defs = append(defs, nil) // reassigned: unknown
						}
					}
				}
			}
			return true
		})
		if len(defs) == 1 && defs[0] != nil {
			return troubleshootingPieces(defs[0], false, nil)
		}
		return value
	default:
		return value
	}
}

// troubleshootingSplitFormat splits a fmt format string at its verbs.
func troubleshootingSplitFormat(s string) []troubleshootingPiece {
	var out []troubleshootingPiece
	var cur strings.Builder
	flush := func() {
		out = append(out, troubleshootingPiece{text: cur.String(), konst: true})
		cur.Reset()
	}
	for i := 0; i < len(s); i++ {
		if s[i] != '%' {
			cur.WriteByte(s[i])
			continue
		}
		if i+1 < len(s) && s[i+1] == '%' {
			cur.WriteByte('%')
			i++
			continue
		}
		// Flags, an argument index, width and precision, then the verb.
		j := i + 1
		for j < len(s) && strings.IndexByte("+-# 0123456789.*[]", s[j]) >= 0 {
			j++
		}
		flush()
		out = append(out, troubleshootingPiece{})
		i = j // the verb letter
	}
	flush()
	return out
}

// troubleshootingLongest is the longest run of adjacent constant pieces,
// trimmed.
func troubleshootingLongest(pieces []troubleshootingPiece) string {
	var best string
	var cur strings.Builder
	end := func() {
		if s := strings.TrimSpace(cur.String()); len(s) > len(best) {
			best = s
		}
		cur.Reset()
	}
	for _, p := range pieces {
		if !p.konst {
			end()
			continue
		}
		cur.WriteString(p.text)
	}
	end()
	return best
}

var troubleshootingSpace = regexp.MustCompile(`\s+`)

// troubleshootingNormalize drops backticks and collapses white space, so
// that a message may be wrapped or set in code on the page.
func troubleshootingNormalize(s string) string {
	s = strings.ReplaceAll(s, "`", "")
	return strings.TrimSpace(troubleshootingSpace.ReplaceAllString(s, " "))
}

func troubleshootingIsSel(e ast.Expr, pkg, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok || s.Sel.Name != name {
		return false
	}
	x, ok := s.X.(*ast.Ident)
	return ok && x.Name == pkg
}

// troubleshootingIsMethod: e is x.name for any x.
func troubleshootingIsMethod(e ast.Expr, name string) bool {
	s, ok := e.(*ast.SelectorExpr)
	return ok && s.Sel.Name == name
}

func troubleshootingIsIdent(e ast.Expr) string {
	if id, ok := e.(*ast.Ident); ok {
		return id.Name
	}
	return ""
}
