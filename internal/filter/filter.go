// Package filter decides which databases and tables a run covers, from
// command-line patterns written the way psql and pg_dump read them: unquoted
// letters fold to lower case, "double quotes" keep a name literal, * and ? are
// wildcards and other regular-expression characters keep their meaning
// outside quotes ($ is literal).
package filter

import (
	"fmt"
	"regexp"
	"strings"
)

// Pattern matches db.schema.table. Missing leading parts match anything:
// "orders" is *.*.orders, "public.orders" is *.public.orders.
type Pattern struct {
	Text              string
	db, schema, table *regexp.Regexp
	// literalDB is the database name when the db part has no wildcard.
	literalDB string
}

// ParsePattern reads one table pattern.
func ParsePattern(s string) (*Pattern, error) {
	parts, err := splitDots(s)
	if err != nil {
		return nil, fmt.Errorf("table pattern %q: %w", s, err)
	}
	if len(parts) > 3 {
		return nil, fmt.Errorf("table pattern %q: expected db.schema.table (quote names that contain dots)", s)
	}
	for len(parts) < 3 {
		parts = append([]string{"*"}, parts...)
	}
	p := &Pattern{Text: s}
	res := make([]*regexp.Regexp, 3)
	for i, part := range parts {
		re, literal, err := compile(part)
		if err != nil {
			return nil, fmt.Errorf("table pattern %q: %w", s, err)
		}
		res[i] = re
		if i == 0 && literal != nil {
			p.literalDB = *literal
		}
	}
	p.db, p.schema, p.table = res[0], res[1], res[2]
	return p, nil
}

// MatchDB reports whether the pattern can match tables of database db.
func (p *Pattern) MatchDB(db string) bool { return p.db.MatchString(db) }

// MatchSchema reports whether the pattern's database and schema parts match.
func (p *Pattern) MatchSchema(db, schema string) bool {
	return p.db.MatchString(db) && p.schema.MatchString(schema)
}

// Match reports whether the pattern matches the table.
func (p *Pattern) Match(db, schema, table string) bool {
	return p.db.MatchString(db) && p.schema.MatchString(schema) && p.table.MatchString(table)
}

// splitDots splits on dots outside double quotes, keeping the quotes.
func splitDots(s string) ([]string, error) {
	var parts []string
	var cur strings.Builder
	inQuote := false
	for i := 0; i < len(s); i++ {
		c := s[i]
		switch {
		case c == '"':
			inQuote = !inQuote
			cur.WriteByte(c)
		case c == '.' && !inQuote:
			parts = append(parts, cur.String())
			cur.Reset()
		default:
			cur.WriteByte(c)
		}
	}
	if inQuote {
		return nil, fmt.Errorf("unterminated double quote")
	}
	parts = append(parts, cur.String())
	for _, p := range parts {
		if p == "" {
			return nil, fmt.Errorf("empty name part")
		}
	}
	return parts, nil
}

// regexMeta are the characters a pattern passes to the regular expression
// as they are, outside double quotes.
const regexMeta = `[](){}|+^\`

// compile turns one name part into an anchored regexp. literal is the exact name
// when the part has no wildcard.
func compile(part string) (*regexp.Regexp, *string, error) {
	var re, lit strings.Builder
	re.WriteString("^")
	inQuote := false
	wild := false
	for i := 0; i < len(part); i++ {
		c := part[i]
		if c == '"' {
			if inQuote && i+1 < len(part) && part[i+1] == '"' {
				re.WriteString(regexp.QuoteMeta(`"`))
				lit.WriteByte('"')
				i++
				continue
			}
			inQuote = !inQuote
			continue
		}
		if !inQuote {
			switch c {
			case '*':
				re.WriteString(".*")
				wild = true
				continue
			case '?':
				re.WriteString(".")
				wild = true
				continue
			}
			// As in psql and pg_dump, the other regular-expression
			// characters keep their meaning outside quotes ([0-9], (a|b),
			// x+); $ alone is literal (the pattern matches whole names).
			if strings.IndexByte(regexMeta, c) >= 0 {
				re.WriteByte(c)
				wild = true
				continue
			}
			if c >= 'A' && c <= 'Z' {
				c += 'a' - 'A'
			}
		}
		re.WriteString(regexp.QuoteMeta(string(c)))
		lit.WriteByte(c)
	}
	re.WriteString("$")
	r, err := regexp.Compile(re.String())
	if err != nil {
		return nil, nil, err
	}
	if wild {
		return r, nil, nil
	}
	l := lit.String()
	return r, &l, nil
}

// RowFilter copies only the rows of matching tables for which Predicate holds.
type RowFilter struct {
	Pattern   *Pattern
	Predicate string
}

// ParseRowFilter reads 'db.schema.table:SQL predicate'.
func ParseRowFilter(s string) (RowFilter, error) {
	if strings.ContainsRune(s, 0) {
		// PostgreSQL refuses NUL in a query; the copy would retry it.
		return RowFilter{}, fmt.Errorf("--table-filter %q: contains a NUL byte", s)
	}
	inQuote := false
	for i := 0; i < len(s); i++ {
		switch s[i] {
		case '"':
			inQuote = !inQuote
		case ':':
			if inQuote {
				continue
			}
			p, err := ParsePattern(strings.TrimSpace(s[:i]))
			if err != nil {
				return RowFilter{}, fmt.Errorf("--table-filter %q: %w", s, err)
			}
			pred := strings.TrimSpace(s[i+1:])
			if pred == "" {
				return RowFilter{}, fmt.Errorf("--table-filter %q: empty predicate after ':'", s)
			}
			return RowFilter{Pattern: p, Predicate: pred}, nil
		}
	}
	return RowFilter{}, fmt.Errorf("--table-filter %q: expected 'db.schema.table:SQL predicate'", s)
}
