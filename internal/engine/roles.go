package engine

import (
	"context"
	"errors"
	"fmt"
	"regexp"
	"strings"

	"github.com/jackc/pgx/v5"
	"github.com/jackc/pgx/v5/pgconn"

	"github.com/replicatorhq/replicator/internal/sqlscript"
)

// copyRoles creates the source's roles on the target from `pg_dumpall
// --roles-only`. Roles that already exist on the target are left exactly as they
// are (their attributes and passwords are the target's business). What a managed
// target refuses (SUPERUSER, REPLICATION, BYPASSRLS, memberships it cannot grant)
// becomes a warning, not a failure.
func (r *run) copyRoles(ctx context.Context, p *plan) error {
	o := r.opts
	src, err := o.Source.Connect(ctx)
	if err != nil {
		return err
	}
	var canReadPasswords bool
	err = src.QueryRow(ctx, `SELECT has_table_privilege('pg_catalog.pg_authid', 'SELECT')`).Scan(&canReadPasswords)
	src.Close(context.Background())
	if err != nil {
		return fmt.Errorf("source: %w", err)
	}
	args := []string{"--roles-only", "--dbname=" + o.Source.ToolConnString()}
	if !canReadPasswords {
		args = append(args, "--no-role-passwords")
		r.warn("", "role passwords were not copied: the source role cannot read pg_authid (managed services hide it); set passwords on the target with ALTER ROLE ... PASSWORD")
	}
	out, err := o.Tools.Run(ctx, "pg_dumpall", args, o.Source.ToolEnv(), r.secrets)
	if err != nil {
		return err
	}

	dst, err := o.Target.Connect(ctx)
	if err != nil {
		return err
	}
	defer dst.Close(context.Background())
	rows, err := dst.Query(ctx, `SELECT rolname FROM pg_catalog.pg_roles`)
	if err != nil {
		return fmt.Errorf("target: list roles: %w", err)
	}
	existing, err := pgx.CollectRows(rows, pgx.RowTo[string])
	if err != nil {
		return fmt.Errorf("target: list roles: %w", err)
	}
	keep := map[string]bool{}
	for _, name := range existing {
		keep[name] = true
	}

	created := 0
	var already []string
	for _, stmt := range sqlscript.Split(string(out)) {
		kind, role := classifyRoleStatement(stmt)
		if role != "" && keep[role] {
			if kind == "create" {
				already = append(already, role)
			}
			continue // an existing role: never altered
		}
		_, err := dst.Exec(ctx, stmt)
		if err == nil {
			if kind == "create" {
				created++
			}
			continue
		}
		switch {
		case kind == "alter" && isPrivilegeError(err):
			reduced, dropped := withoutPrivilegedAttributes(stmt)
			if _, err2 := dst.Exec(ctx, reduced); err2 == nil {
				if len(dropped) > 0 {
					r.warn("", "role %s created without %s: the target refused (%s)", role, strings.Join(dropped, ", "), pgMessage(err))
				}
				continue
			}
			r.warn("", "role %s: %s", role, pgMessage(err))
		case kind == "create":
			r.warn("", "role %s was not created: %s", role, pgMessage(err))
			keep[role] = true // skip its ALTER/COMMENT statements
		case grantedBy.MatchString(stmt):
			// Only a superuser may name another grantor: grant as ourselves.
			if _, err2 := dst.Exec(ctx, grantedBy.ReplaceAllString(stmt, "")); err2 != nil {
				r.warn("", "%s: %s", firstWords(stmt, 6), pgMessage(err2))
			}
		default:
			r.warn("", "%s: %s", firstWords(stmt, 6), pgMessage(err))
		}
	}
	msg := fmt.Sprintf("roles: %d created, %d of the source's already on the target and left as they are", created, len(already))
	if len(already) > 0 {
		list := already[:min(10, len(already))]
		msg += ": " + strings.Join(list, ", ")
		if len(already) > 10 {
			msg += fmt.Sprintf(" and %d more", len(already)-10)
		}
	}
	r.info("", "%s", msg)
	return nil
}

var grantedBy = regexp.MustCompile(`(?i)\s+GRANTED BY\s+("(?:[^"]|"")+"|\S+)\s*$`)

// classifyRoleStatement tells CREATE ROLE / ALTER ROLE / COMMENT ON ROLE apart and
// extracts the role name they are about.
func classifyRoleStatement(stmt string) (kind, role string) {
	upper := strings.ToUpper(stmt)
	for _, p := range []struct{ prefix, kind string }{
		{"CREATE ROLE ", "create"},
		{"ALTER ROLE ", "alter"},
		{"COMMENT ON ROLE ", "comment"},
	} {
		if strings.HasPrefix(upper, p.prefix) {
			return p.kind, readIdent(stmt[len(p.prefix):])
		}
	}
	if strings.HasPrefix(upper, "SECURITY LABEL") {
		if i := strings.Index(upper, " ON ROLE "); i >= 0 {
			return "label", readIdent(stmt[i+len(" ON ROLE "):])
		}
	}
	return "other", ""
}

// readIdent reads one SQL identifier, unquoting it.
func readIdent(s string) string {
	s = strings.TrimLeft(s, " ")
	if strings.HasPrefix(s, `"`) {
		var b strings.Builder
		for i := 1; i < len(s); i++ {
			if s[i] == '"' {
				if i+1 < len(s) && s[i+1] == '"' {
					b.WriteByte('"')
					i++
					continue
				}
				return b.String()
			}
			b.WriteByte(s[i])
		}
		return b.String()
	}
	end := strings.IndexAny(s, " ;\n")
	if end < 0 {
		return s
	}
	return s[:end]
}

// privileged are role attributes only a superuser may mention, even in their NO
// form: a managed target's CREATEROLE role refuses any of them.
var privileged = map[string]bool{
	"SUPERUSER": true, "NOSUPERUSER": true, "REPLICATION": true, "NOREPLICATION": true,
	"BYPASSRLS": true, "NOBYPASSRLS": true,
}

// withoutPrivilegedAttributes drops those attributes from an ALTER ROLE ... WITH
// statement (quoted parts untouched) and lists the granting ones it dropped.
func withoutPrivilegedAttributes(stmt string) (string, []string) {
	var b strings.Builder
	var dropped []string
	inQuote := byte(0)
	var word strings.Builder
	flush := func() {
		w := word.String()
		word.Reset()
		if up := strings.ToUpper(w); privileged[up] {
			if !strings.HasPrefix(up, "NO") {
				dropped = append(dropped, up)
			}
			return
		}
		b.WriteString(w)
	}
	for i := 0; i < len(stmt); i++ {
		c := stmt[i]
		if inQuote != 0 {
			b.WriteByte(c)
			if c == inQuote {
				inQuote = 0
			}
			continue
		}
		switch c {
		case '\'', '"':
			flush()
			inQuote = c
			b.WriteByte(c)
		case ' ', '\n', ';':
			flush()
			b.WriteByte(c)
		default:
			word.WriteByte(c)
		}
	}
	flush()
	return b.String(), dropped
}

func isPrivilegeError(err error) bool {
	var pgErr *pgconn.PgError
	return errors.As(err, &pgErr) && pgErr.Code == "42501"
}

func pgMessage(err error) string {
	var pgErr *pgconn.PgError
	if errors.As(err, &pgErr) {
		return pgErr.Message
	}
	return err.Error()
}

func firstWords(s string, n int) string {
	f := strings.Fields(s)
	if len(f) > n {
		f = append(f[:n], "...")
	}
	return strings.Join(f, " ")
}
