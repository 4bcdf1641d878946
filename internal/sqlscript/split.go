// Package sqlscript splits SQL scripts (such as pg_dumpall's output) into
// statements, so that each can be run and judged on its own.
package sqlscript

import "strings"

// Split returns the statements of script without their trailing semicolons,
// skipping comments and psql meta-commands (lines starting with a backslash, such
// as \connect or \restrict). It understands quoted identifiers, string literals
// (standard, E” escapes) and dollar quoting.
func Split(script string) []string {
	var out []string
	var cur strings.Builder
	s := script
	atLineStart := true
	for i := 0; i < len(s); {
		c := s[i]
		switch {
		case atLineStart && cur.Len() == 0 && c == '\\':
			// psql meta-command: skip the line.
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				return out
			}
			i += j + 1
			continue
		case c == '-' && i+1 < len(s) && s[i+1] == '-':
			j := strings.IndexByte(s[i:], '\n')
			if j < 0 {
				i = len(s)
			} else {
				i += j
			}
			continue
		case c == '/' && i+1 < len(s) && s[i+1] == '*':
			i = blockCommentEnd(s, i)
			continue
		case c == '\'' || c == '"':
			j := quotedEnd(s, i)
			cur.WriteString(s[i : j+1])
			i = j + 1
			atLineStart = false
			continue
		case c == '$':
			if tag, ok := dollarTag(s[i:]); ok && (i == 0 || !isIdent(s[i-1])) {
				end := strings.Index(s[i+len(tag):], tag)
				if end < 0 {
					cur.WriteString(s[i:])
					i = len(s)
					continue
				}
				stop := i + len(tag) + end + len(tag)
				cur.WriteString(s[i:stop])
				i = stop
				atLineStart = false
				continue
			}
		case c == ';':
			if st := strings.TrimSpace(cur.String()); st != "" {
				out = append(out, st)
			}
			cur.Reset()
			i++
			continue
		}
		if c == '\n' {
			atLineStart = true
		} else if c != ' ' && c != '\t' && c != '\r' {
			atLineStart = false
		}
		if cur.Len() > 0 || !isSpaceByte(c) {
			cur.WriteByte(c)
		}
		i++
	}
	if st := strings.TrimSpace(cur.String()); st != "" {
		out = append(out, st)
	}
	return out
}

// dollarTag returns "$tag$" if s starts with a dollar-quote opener.
func dollarTag(s string) (string, bool) {
	for j := 1; j < len(s); j++ {
		c := s[j]
		if c == '$' {
			return s[:j+1], true
		}
		if !(isIdent(c) && !(j == 1 && c >= '0' && c <= '9')) {
			return "", false
		}
	}
	return "", false
}

func isIdent(c byte) bool {
	return c == '_' || c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c >= 0x80
}

func isSpaceByte(c byte) bool { return c == ' ' || c == '\t' || c == '\n' || c == '\r' }

// blockCommentEnd is where the (nested) block comment at s[i] ends.
func blockCommentEnd(s string, i int) int {
	depth, j := 0, i
	for j < len(s) {
		switch {
		case strings.HasPrefix(s[j:], "/*"):
			depth++
			j += 2
		case strings.HasPrefix(s[j:], "*/"):
			depth--
			j += 2
			if depth == 0 {
				return j
			}
		default:
			j++
		}
	}
	return j
}

// quotedEnd is the index of the quote that closes the string or quoted
// identifier opening at s[i] (doubled quotes, and backslashes in E'...'
// strings, escape); the last index when it is not closed.
func quotedEnd(s string, i int) int {
	c := s[i]
	escapes := c == '\'' && i > 0 && (s[i-1] == 'E' || s[i-1] == 'e') && (i < 2 || !isIdent(s[i-2]))
	j := i + 1
	for j < len(s) {
		if escapes && s[j] == '\\' {
			j += 2
			continue
		}
		if s[j] == c {
			if j+1 < len(s) && s[j+1] == c {
				j += 2
				continue
			}
			return j
		}
		j++
	}
	return len(s) - 1
}
