package engine

import (
	"bufio"
	"bytes"
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/catalog"
	"github.com/replicatorhq/replicator/internal/checkpoint"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/replication"
	"github.com/replicatorhq/replicator/internal/sqlscript"
)

// dumpSchema runs pg_dump for the pre-data and post-data sections in the
// database's snapshot, into a custom-format archive. Tables left out by the
// filters, and views over them, are excluded by exact name.
//
// --schema-only: what pg_dump counts as data the copy does itself (rows,
// large objects with their metadata, sequence positions, materialized view
// refreshes). Left to pg_dump, each sequence's position costs a query per
// sequence, a round trip each: with 2000 tables and a source 50 ms away,
// almost two minutes.
func (r *run) dumpSchema(ctx context.Context, w *dbWork, archive string) error {
	args := []string{
		"--format=custom", "--file=" + archive, "--schema-only",
		"--section=pre-data", "--section=post-data",
		"--snapshot=" + w.snapshot, "--no-sync", "--no-subscriptions",
		// replicator's own schema change capture (sync) is not the user's.
		"--exclude-schema=" + replication.DDLSchema,
	}
	for _, n := range w.excluded {
		// Quoted, a pattern is matched literally (no wildcards, case kept).
		args = append(args, "--exclude-table="+n.Quoted())
	}
	for _, s := range w.schemasOut {
		args = append(args, "--exclude-schema="+pgx.Identifier{s}.Sanitize())
	}
	args = append(args, "--dbname="+w.src.ToolConnString())
	_, err := r.opts.Tools.Run(ctx, "pg_dump", args, w.src.ToolEnv(), r.secrets)
	return err
}

// restorePreData creates the database (owner, encoding, locale, settings) and
// everything that must exist before data: types, functions, tables, ...
func (r *run) restorePreData(ctx context.Context, w *dbWork, db *dbPlan, archive string) error {
	key := keyDB(w.name, "pre-data")
	// Durable: a rerun knows this database was restored into.
	if err := r.cp.mark(ctx, checkpoint.Record{Key: key, Status: checkpoint.Running}, true); err != nil {
		return err
	}
	if db.drop || db.redoPreData && db.ours {
		if err := r.dropTargetDatabase(ctx, w.name); err != nil {
			return err
		}
	}
	if !db.intoExisting {
		if err := r.createDatabase(ctx, w, archive); err != nil {
			return err
		}
	}
	if err := r.createExtensions(ctx, w, db, archive); err != nil {
		return err
	}
	args := []string{"--section=pre-data"}
	if len(db.skipPre) > 0 {
		list, err := r.tocList(ctx, archive, filepath.Join(filepath.Dir(archive), "pre-data.list"), func(k tocKey, line string) bool {
			return db.skipPre[k] || skipsExtensionComment(line, db.skipExtensions)
		})
		if err != nil {
			return err
		}
		args = append(args, "--use-list="+list)
	}
	args = append(args, "--dbname="+w.dst.ToolConnString(), archive)
	if err := r.pgRestore(ctx, w.name, w.dst, w.dst, args, db.intoExisting && db.redoPreData); err != nil {
		return err
	}
	return r.cp.set(ctx, key, checkpoint.Done)
}

// tocList writes the archive's table of contents to file, the entries skip
// says to commented out, for pg_restore --use-list.
func (r *run) tocList(ctx context.Context, archive, file string, skip func(tocKey, string) bool) (string, error) {
	out, err := r.opts.Tools.Run(ctx, "pg_restore", []string{"--list", archive}, nil, r.secrets)
	if err != nil {
		return "", err
	}
	list, err := filterTOC(out, skip)
	if err != nil {
		return "", err
	}
	return file, os.WriteFile(file, list, 0o600)
}

func (r *run) dropTargetDatabase(ctx context.Context, name string) error {
	conn, err := r.maintenance.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	stmt := "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize() + " WITH (FORCE)"
	if r.dstVersion.Major < 13 {
		// WITH (FORCE) is PostgreSQL 13's: before it, end the sessions first
		// (as dropdb users do by hand). One that connects in between makes
		// the drop fail, which is said and leaves the database as it was.
		if _, err := conn.Exec(ctx, `SELECT pg_catalog.pg_terminate_backend(pid) FROM pg_catalog.pg_stat_activity
			WHERE datname = $1 AND pid <> pg_catalog.pg_backend_pid()`, name); err != nil {
			return fmt.Errorf("drop target database %s: end its sessions: %w", name, err)
		}
		stmt = "DROP DATABASE IF EXISTS " + pgx.Identifier{name}.Sanitize()
	}
	if _, err := conn.Exec(ctx, stmt); err != nil {
		return fmt.Errorf("drop target database %s: %w", name, err)
	}
	r.info(name, "dropped the existing target database %s", name)
	return nil
}

// databaseEntry is an archive entry about the database itself: its creation
// (with its owner), comment, grants and security labels.
var databaseEntry = regexp.MustCompile(`^\d+; \d+ \d+ (DATABASE -|COMMENT - DATABASE|ACL - DATABASE|SECURITY LABEL - DATABASE) `)

// databaseProperties is the archive entry of the database's settings:
// ALTER DATABASE ... SET, ALTER ROLE ... IN DATABASE ... SET and its
// CONNECTION LIMIT.
var databaseProperties = regexp.MustCompile(`^\d+; \d+ \d+ DATABASE PROPERTIES `)

// databaseSetting is a statement of the database's properties: ALTER
// DATABASE ... SET, RESET, CONNECTION LIMIT, IS_TEMPLATE, ALLOW_CONNECTIONS
// (not OWNER TO), and ALTER ROLE ... IN DATABASE ... SET. pg_restore prints
// them with the database's creation whatever its list says; the copy applies
// them at its end.
var databaseSetting = regexp.MustCompile(`^ALTER (DATABASE (?:"(?:[^"]|"")*"|[^ "]+) (?:SET|RESET|CONNECTION LIMIT|IS_TEMPLATE|ALLOW_CONNECTIONS)\b|ROLE .* IN DATABASE )`)

// localeProvider is the option pg_dump 15 and newer write into every CREATE
// DATABASE; a server older than 15 has only the libc provider and does not
// know the option.
var localeProvider = regexp.MustCompile(` LOCALE_PROVIDER = libc\b`)

// localeBoth is LOCALE = '...', which pg_dump writes when collation and
// character classification agree; CREATE DATABASE knows it from 13 on, and
// LC_COLLATE with LC_CTYPE say the same to every version.
var localeBoth = regexp.MustCompile(` LOCALE = ('(?:[^']|'')*')`)

// createDatabase creates the database from the archive's own entries
// (CREATE DATABASE, its owner, comment and grants; its settings come at the
// end, see applyDatabaseSettings), and records it as this run series' own,
// with its OID, before anything else happens in it: only a database so
// recorded may be dropped by a rerun. For a target older than PostgreSQL 15
// and pg_dump 15 or newer, LOCALE_PROVIDER = libc is dropped from CREATE
// DATABASE (the only provider such a server has) and LOCALE spelt out for 12.
// The rest of pre-data then restores into the new database.
func (r *run) createDatabase(ctx context.Context, w *dbWork, archive string) error {
	return r.runDatabaseEntries(ctx, w, archive, databaseEntry, func(conn *pgx.Conn, stmt string) (string, error) {
		if databaseSetting.MatchString(stmt) {
			return "", nil // at the end
		}
		if !strings.HasPrefix(stmt, "CREATE DATABASE ") {
			return stmt, nil
		}
		if r.dstVersion.Major < 15 {
			stmt = localeProvider.ReplaceAllString(stmt, "")
			stmt = localeBoth.ReplaceAllString(stmt, " LC_COLLATE = $1 LC_CTYPE = $1")
		}
		// Durable, before: an interruption between the two records leaves a
		// database that a rerun cannot prove its own.
		if err := r.cp.mark(ctx, checkpoint.Record{Key: keyDB(w.name, "created"), Status: checkpoint.Running}, true); err != nil {
			return "", err
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			return "", fmt.Errorf("database %s: %s: %w", w.name, firstWords(stmt, 8), err)
		}
		var oid string
		if err := conn.QueryRow(ctx, "SELECT oid::text FROM pg_catalog.pg_database WHERE datname = $1", w.name).Scan(&oid); err != nil {
			return "", fmt.Errorf("database %s: read its OID: %w", w.name, err)
		}
		return "", r.cp.mark(ctx, checkpoint.Record{Key: keyDB(w.name, "created"), Status: checkpoint.Done, Data: oid}, true)
	})
}

// applyDatabaseSettings applies the database's settings (ALTER DATABASE ...
// SET, ALTER ROLE ... IN DATABASE ... SET) and connection limit, once its
// copy is done, to a database created by the copy or one that was there:
// applied earlier, a connection limit smaller than the copy's jobs, or a
// setting such as default_transaction_read_only, would stop the copy itself.
func (r *run) applyDatabaseSettings(ctx context.Context, w *dbWork, archive string) error {
	return r.runDatabaseEntries(ctx, w, archive, databaseProperties, func(_ *pgx.Conn, stmt string) (string, error) {
		if databaseSetting.MatchString(stmt) {
			return stmt, nil
		}
		return "", nil
	})
}

// runDatabaseEntries prints the archive's entries that match (listed only
// with --create) as SQL and runs them on the maintenance database, one
// statement at a time; exec, when set, may run a statement itself (it
// returns "" then) or rewrite it. What the target refuses for want of
// privileges or roles is a warning, as in pg_restore.
func (r *run) runDatabaseEntries(ctx context.Context, w *dbWork, archive string, entry *regexp.Regexp, exec func(*pgx.Conn, string) (string, error)) error {
	out, err := r.opts.Tools.Run(ctx, "pg_restore", []string{"--create", "--list", archive}, nil, r.secrets)
	if err != nil {
		return err
	}
	var list bytes.Buffer
	for _, line := range strings.Split(string(out), "\n") {
		if entry.MatchString(line) {
			list.WriteString(line + "\n")
		}
	}
	if list.Len() == 0 {
		return nil
	}
	listFile := archive + ".database.list"
	if err := os.WriteFile(listFile, list.Bytes(), 0o600); err != nil {
		return err
	}
	script, err := r.opts.Tools.Run(ctx, "pg_restore", []string{"--create", "--use-list=" + listFile, "--file=-", archive}, nil, r.secrets)
	if err != nil {
		return err
	}
	conn, err := r.maintenance.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	var refused []restoreIssue
	for _, stmt := range sqlscript.Split(string(script)) {
		if strings.HasPrefix(stmt, "SET ") || strings.HasPrefix(stmt, "SELECT pg_catalog.set_config(") {
			continue // the script's session preamble, for psql
		}
		if exec != nil {
			if stmt, err = exec(conn, stmt); err != nil {
				return err
			}
			if stmt == "" {
				continue
			}
		}
		if _, err := conn.Exec(ctx, stmt); err != nil {
			is := restoreIssue{Message: pgMessage(err), Command: stmt}
			if refusal(is, r.targetSuper) == "" {
				return fmt.Errorf("database %s: %s: %w", w.name, firstWords(stmt, 8), err)
			}
			refused = append(refused, is)
		}
	}
	for _, is := range refused {
		r.warn(w.name, "target refused %s: %s (%s)", refusal(is, r.targetSuper), firstWords(is.Command, 10), is.Message)
		r.refused(w.name, []restoreIssue{is})
	}
	return nil
}

// restorePostData restores what is left of post-data once every table is in:
// foreign keys, triggers, rules, policies, indexes the copy did not build itself,
// partition index attachments, materialized view refreshes. pg_restore runs it
// with several connections.
func (r *run) restorePostData(ctx context.Context, w *dbWork, archive, dir string, resuming bool) error {
	listFile, err := r.tocList(ctx, archive, filepath.Join(dir, "post-data.list"), skipKeys(w.skipPost))
	if err != nil {
		return err
	}
	if w.postJobs == 0 {
		w.postJobs = r.opts.IndexJobs
	}
	args := []string{
		"--section=post-data", "--use-list=" + listFile,
		"--jobs=" + strconv.Itoa(w.postJobs), "--dbname=" + w.dst.ToolConnString(), archive,
	}
	if err := r.pgRestore(ctx, w.name, w.dst, w.dst, args, resuming); err != nil {
		// A target out of sessions: the step's retry runs pg_restore again
		// with half the jobs at once, rather than as many for minutes.
		var te *pgtools.ToolError
		if errors.As(err, &te) && te.TooManyConnections() && w.postJobs > 1 {
			w.postJobs /= 2
			r.warn(w.name, "post-data: the target has no session to spare: restoring with %d connection(s) from now on", w.postJobs)
		}
		return err
	}
	if err := r.refreshMatviews(ctx, w); err != nil {
		return err
	}
	if len(w.afterPost) == 0 {
		return nil
	}
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	for _, stmt := range w.afterPost {
		if _, err := conn.Exec(ctx, stmt); err != nil && !(resuming && alreadyExists(err)) {
			return fmt.Errorf("%s: %w", firstWords(stmt, 8), err)
		}
	}
	return nil
}

// tocLine is "dumpId; catalogOid objectOid DESC ..." as pg_restore --list prints.
var tocLine = regexp.MustCompile(`^(\d+); (\d+) (\d+) `)

// filterTOC comments out the archive entries skip says to.
func filterTOC(list []byte, skip func(key tocKey, line string) bool) ([]byte, error) {
	var out bytes.Buffer
	sc := bufio.NewScanner(bytes.NewReader(list))
	sc.Buffer(make([]byte, 1<<20), 1<<24)
	for sc.Scan() {
		line := sc.Text()
		if strings.HasPrefix(line, ";") || strings.TrimSpace(line) == "" {
			out.WriteString(line + "\n")
			continue
		}
		m := tocLine.FindStringSubmatch(line)
		if m == nil {
			return nil, fmt.Errorf("unexpected pg_restore --list line %q", line)
		}
		cat, _ := strconv.ParseUint(m[2], 10, 32)
		oid, _ := strconv.ParseUint(m[3], 10, 32)
		if skip(tocKey{uint32(cat), uint32(oid)}, line) {
			out.WriteString(";" + line + "\n")
			continue
		}
		out.WriteString(line + "\n")
	}
	return out.Bytes(), sc.Err()
}

// skipKeys skips the entries of keys.
func skipKeys(keys map[tocKey]bool) func(tocKey, string) bool {
	return func(k tocKey, _ string) bool { return keys[k] }
}

// alreadyExists is the SQLSTATE of an object created again (a resumed step).
func alreadyExists(err error) bool {
	var pe *pgconn.PgError
	if !errors.As(err, &pe) {
		return false
	}
	switch pe.Code {
	case "42710", "42P07", "42723", "42P06": // duplicate object, table, function, schema
		return true
	}
	return false
}

// refreshMatviews populates the materialized views that are populated on the
// source (pg_restore created them empty), as pg_dump's data would have. A
// view over another is refused until that one is populated: such refusals
// are tried again after the others, until a round makes no progress.
func (r *run) refreshMatviews(ctx context.Context, w *dbWork) error {
	if len(w.matviews) == 0 {
		return nil
	}
	conn, err := w.dst.Connect(ctx)
	if err != nil {
		return err
	}
	defer conn.Close(context.Background())
	if err := targetSession(ctx, conn, ""); err != nil {
		return err
	}
	left := w.matviews
	for len(left) > 0 {
		var again []catalog.Name
		var firstErr error
		for _, mv := range left {
			if _, err := conn.Exec(ctx, "REFRESH MATERIALIZED VIEW "+mv.Quoted()); err != nil {
				var pe *pgconn.PgError
				if !errors.As(err, &pe) || pe.Code != "55000" { // object_not_in_prerequisite_state: over an unpopulated view
					return fmt.Errorf("refresh materialized view %s: %w", mv, err)
				}
				again = append(again, mv)
				if firstErr == nil {
					firstErr = fmt.Errorf("refresh materialized view %s: %w", mv, err)
				}
			}
		}
		if len(again) == len(left) {
			return firstErr
		}
		left = again
	}
	return nil
}
