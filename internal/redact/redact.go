// Package redact takes secrets out of text meant for people: errors, logs,
// job records.
package redact

import (
	"encoding/json"
	"net/url"
	"sort"
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scrub replaces every secret in s where it stands as a whole value: not
// where it is part of a longer word (with password "p", "port" stays "port";
// "u:p@host" becomes "u:xxxxx@host").
func Scrub(s string, secrets []string) string {
	for _, secret := range variants(secrets) {
		if secret == "" {
			continue
		}
		var b strings.Builder
		rest := s
		for {
			i := strings.Index(rest, secret)
			if i < 0 {
				b.WriteString(rest)
				break
			}
			end := i + len(secret)
			before, _ := utf8.DecodeLastRuneInString(rest[:i])
			after, _ := utf8.DecodeRuneInString(rest[end:])
			first, _ := utf8.DecodeRuneInString(secret)
			last, _ := utf8.DecodeLastRuneInString(secret)
			// Inside a word only if the secret continues a word on either side.
			if i > 0 && isWord(before) && isWord(first) || end < len(rest) && isWord(after) && isWord(last) {
				b.WriteString(rest[:i+1])
				rest = rest[i+1:]
				continue
			}
			b.WriteString(rest[:i])
			b.WriteString("xxxxx")
			rest = rest[end:]
		}
		s = b.String()
	}
	return s
}

// variants are the forms a secret takes in text: as given, inside a JSON
// string (quotes and backslashes escaped), percent-encoded as in a URL, and
// with its whitespace collapsed (an error made one line). The longer forms
// come first, so that a form containing another is replaced whole.
func variants(secrets []string) []string {
	var out []string
	seen := map[string]bool{}
	for _, s := range secrets {
		if s == "" {
			continue
		}
		j, _ := json.Marshal(s)
		var plain strings.Builder
		enc := json.NewEncoder(&plain)
		enc.SetEscapeHTML(false)
		_ = enc.Encode(s)
		p := strings.TrimSpace(plain.String())
		for _, v := range []string{string(j[1 : len(j)-1]), p[1 : len(p)-1], url.PathEscape(s), url.QueryEscape(s), strings.Join(strings.Fields(s), " "), s} {
			if v != "" && !seen[v] {
				seen[v] = true
				out = append(out, v)
			}
		}
	}
	sort.SliceStable(out, func(a, b int) bool { return len(out[a]) > len(out[b]) })
	return out
}

func isWord(r rune) bool { return r == '_' || unicode.IsLetter(r) || unicode.IsDigit(r) }

// Truncate keeps the first n bytes of s (whole characters), marking a cut
// with "...": what an error echoes of a caller's input.
func Truncate(s string, n int) string {
	if len(s) <= n {
		return s
	}
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}
