// Package redact takes secrets out of text meant for people: errors, logs,
// job records.
package redact

import (
	"strings"
	"unicode"
	"unicode/utf8"
)

// Scrub replaces every secret in s where it stands as a whole value: not
// where it is part of a longer word (with password "p", "port" stays "port";
// "u:p@host" becomes "u:xxxxx@host").
func Scrub(s string, secrets []string) string {
	for _, secret := range secrets {
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
