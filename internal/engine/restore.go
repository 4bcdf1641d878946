package engine

import (
	"context"
	"fmt"
	"os"
	"regexp"
	"slices"
	"sort"
	"strings"

	"github.com/jackc/pgx/v5"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/sqlscript"
)

// restoreIssue is one statement pg_restore could not run.
type restoreIssue struct {
	Message string // the server's error, e.g. `must be owner of table t`
	Command string
}

var restoreErrorStart = regexp.MustCompile(`^pg_restore: error: could not execute query: (?:ERROR|FATAL):\s+(.*)$`)

// parseRestoreErrors reads pg_restore's stderr: the failed statements, and any
// other error lines (a lost connection, say).
func parseRestoreErrors(stderr string) (issues []restoreIssue, other []string) {
	var cur *restoreIssue
	inCommand := false
	flush := func() {
		if cur != nil {
			cur.Command = strings.TrimSpace(cur.Command)
			issues = append(issues, *cur)
			cur = nil
		}
	}
	for _, line := range strings.Split(stderr, "\n") {
		if m := restoreErrorStart.FindStringSubmatch(line); m != nil {
			flush()
			cur, inCommand = &restoreIssue{Message: m[1]}, false
			continue
		}
		if strings.HasPrefix(line, "pg_restore: ") {
			flush()
			inCommand = false
			if strings.HasPrefix(line, "pg_restore: error: ") && !strings.Contains(line, "errors ignored on restore") {
				other = append(other, strings.TrimPrefix(line, "pg_restore: error: "))
			}
			continue
		}
		if cur == nil {
			continue
		}
		if c, ok := strings.CutPrefix(line, "Command was: "); ok {
			cur.Command, inCommand = c, true
		} else if inCommand {
			cur.Command += "\n" + line
		}
	}
	flush()
	return issues, other
}

// missingRole is the error of a statement naming a role the target lacks.
var missingRole = regexp.MustCompile(`^role ".*" does not exist$`)

// refusal names what the target refused without it being a failure of the copy:
// statements about roles it does not have (--no-roles, or roles it could not
// create), and what a managed target (a role without SUPERUSER) may not do. ""
// when the failure is none of those.
func refusal(is restoreIssue, superuser bool) string {
	msg, cmd := is.Message, strings.ToUpper(strings.TrimSpace(is.Command))
	if missingRole.MatchString(msg) {
		return "about roles missing on the target (copy roles, or create them and re-apply)"
	}
	if superuser {
		return ""
	}
	switch {
	case strings.Contains(cmd, " OWNER TO ") &&
		(strings.Contains(msg, "must be able to SET ROLE") || strings.Contains(msg, "must be member of role") ||
			strings.Contains(msg, "must be owner of") || strings.Contains(msg, "does not exist")):
		return "ownership changes (the objects stay owned by the connecting role)"
	case strings.HasPrefix(cmd, "GRANT ") || strings.HasPrefix(cmd, "REVOKE ") || strings.HasPrefix(cmd, "ALTER DEFAULT PRIVILEGES"):
		return "privileges not granted"
	case strings.Contains(msg, "permission denied to set parameter"):
		return "settings that need a superuser"
	case strings.Contains(msg, "must be superuser") || strings.Contains(msg, "permission denied for language") ||
		strings.Contains(msg, "permission denied to create") || strings.Contains(msg, "only superuser") ||
		strings.Contains(msg, "must be owner of extension"):
		return "objects only a superuser may create"
	}
	return ""
}

// alreadyDone: what a statement run a second time says when its first run
// succeeded.
func alreadyDone(msg string) bool {
	// A primary key the earlier pass added makes ADD PRIMARY KEY fail with
	// "multiple primary keys", not "already exists".
	return strings.Contains(msg, "already exists") || strings.Contains(msg, "is already member of publication") ||
		strings.Contains(msg, "multiple primary keys for table")
}

// garbled: every line pg_restore's parser could not read is a server's
// ERROR cut up by another worker's output; a lost connection (FATAL, or no
// server message at all) is not, and goes to the step's retries.
func garbled(other []string) bool {
	for _, o := range other {
		if !strings.Contains(o, "ERROR:") {
			return false
		}
	}
	return len(other) > 0
}

// withOneJob is args with --jobs=1, when they asked for more.
func withOneJob(args []string) ([]string, bool) {
	out := slices.Clone(args)
	for i, a := range out {
		if n, ok := strings.CutPrefix(a, "--jobs="); ok && n != "1" {
			out[i] = "--jobs=1"
			return out, true
		}
	}
	return nil, false
}

// pgRestore runs pg_restore against target to the end, then judges its errors:
// what the target refuses (see refusal) becomes grouped warnings, "already
// exists" on a resumed step is expected, anything else fails the step.
//
// pg_restore runs each archive entry as one multi-statement query, so one refused
// statement (a superuser-only setting) takes its neighbours (ordinary settings)
// down with it: such entries are run again statement by statement on the
// database (dbTarget), keeping what the target accepts.
//
// pg_restore commits each entry on its own: thousands of tables are tens of
// thousands of commits, each waiting for the target's disk. It runs with
// synchronous_commit off, and one synchronous commit after it makes all of
// them durable before the step is recorded as done (a commit waits for the
// WAL up to itself, which holds every commit before it).
func (r *run) pgRestore(ctx context.Context, db string, target, dbTarget *conninfo.Endpoint, args []string, resuming bool) error {
	env := append(target.ToolEnv(), "PGOPTIONS="+strings.TrimSpace(os.Getenv("PGOPTIONS")+" -c synchronous_commit=off"))
	_, stderr, err := r.opts.Tools.Exec(ctx, "pg_restore", args, env)
	if err == nil {
		return flushWAL(ctx, dbTarget)
	}
	if ctx.Err() != nil {
		return ctx.Err()
	}
	text := redact.Scrub(strings.TrimSpace(string(stderr)), r.secrets)
	issues, other := parseRestoreErrors(text)
	if len(other) > 0 {
		if serial, ok := withOneJob(args); ok && garbled(other) {
			// Parallel workers' messages share stderr and can interleave
			// mid-line: run the section again alone, as a resumed step
			// (what the first run did is tolerated), for readable errors.
			r.warn(db, "pg_restore's parallel error output was garbled; restoring the section again with one job to read its errors")
			return r.pgRestore(ctx, db, target, dbTarget, serial, true)
		}
		return &pgtools.ToolError{Tool: "pg_restore", Stderr: text, Err: err}
	}
	issues, err = r.splitIssues(ctx, dbTarget, issues)
	if err != nil {
		return err
	}
	groups := map[string][]restoreIssue{}
	var fatal []restoreIssue
	for _, is := range issues {
		if resuming && alreadyDone(is.Message) || newerToolSetting(is, r.dstVersion) {
			continue
		}
		if cat := refusal(is, r.targetSuper); cat != "" {
			groups[cat] = append(groups[cat], is)
			continue
		}
		fatal = append(fatal, is)
	}
	cats := make([]string, 0, len(groups))
	for c := range groups {
		cats = append(cats, c)
	}
	sort.Strings(cats)
	for _, c := range cats {
		list := groups[c]
		examples := make([]string, 0, 3)
		for i, is := range list {
			if i == 3 {
				examples = append(examples, fmt.Sprintf("+%d more", len(list)-3))
				break
			}
			examples = append(examples, fmt.Sprintf("%s (%s)", firstWords(is.Command, 10), is.Message))
		}
		r.warn(db, "target refused %d statement(s), %s: %s", len(list), c, strings.Join(examples, "; "))
		r.refused(db, list)
	}
	if len(fatal) > 0 {
		return fmt.Errorf("pg_restore: %d statement(s) failed; first: %s: %s", len(fatal), firstWords(fatal[0].Command, 12), fatal[0].Message)
	}
	return flushWAL(ctx, dbTarget)
}

// flushWAL makes every commit so far on the target durable: a transaction
// that has an id commits with synchronous_commit on, and so waits for the WAL
// up to its commit record.
func flushWAL(ctx context.Context, target *conninfo.Endpoint) error {
	conn, err := target.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if _, err := conn.Exec(ctx, "SET synchronous_commit = on; BEGIN; SELECT pg_catalog.txid_current(); COMMIT"); err != nil {
		return fmt.Errorf("target: flush: %w", err)
	}
	return nil
}

// newerToolSetting is a setting that pg_restore of a newer major sets on every
// connection and an older target does not know: pg_restore 17 and newer send
// SET transaction_timeout = 0, which a server older than 17 refuses and which
// changes nothing there (it has no such timeout to turn off).
func newerToolSetting(is restoreIssue, target pgtools.Version) bool {
	return target.Major < 17 && target.Major > 0 &&
		strings.HasPrefix(strings.TrimSpace(is.Command), "SET transaction_timeout") &&
		strings.Contains(is.Message, `unrecognized configuration parameter "transaction_timeout"`)
}

// splitIssues re-runs failed multi-statement entries one statement at a time and
// returns the statements that still fail.
func (r *run) splitIssues(ctx context.Context, dbTarget *conninfo.Endpoint, issues []restoreIssue) ([]restoreIssue, error) {
	var conn *pgx.Conn
	defer func() {
		if conn != nil {
			conn.Close(context.Background())
		}
	}()
	var out []restoreIssue
	for _, is := range issues {
		stmts := sqlscript.Split(is.Command)
		if len(stmts) < 2 {
			out = append(out, is)
			continue
		}
		if conn == nil {
			var err error
			if conn, err = dbTarget.Connect(ctx); err != nil {
				return nil, err
			}
			if _, err := conn.Exec(ctx, "SELECT pg_catalog.set_config('search_path', '', false)"); err != nil {
				return nil, err
			}
		}
		for _, st := range stmts {
			if _, err := conn.Exec(ctx, st); err != nil {
				out = append(out, restoreIssue{Message: pgMessage(err), Command: st})
			}
		}
	}
	return out, nil
}
