package redact

import "testing"

// Whole values only: a short password must not mangle the words it happens
// to be part of ("port" once became "xxxxxort"), and every standalone
// occurrence goes, however it is delimited.
func TestScrub(t *testing.T) {
	for _, tc := range []struct {
		in      string
		secrets []string
		want    string
	}{
		{"connection to port 5432 failed for p", []string{"p"}, "connection to port 5432 failed for xxxxx"},
		{"postgres://u:p@host:5432/db", []string{"p"}, "postgres://u:xxxxx@host:5432/db"},
		{"password=s3cr3t dbname=x", []string{"s3cr3t"}, "password=xxxxx dbname=x"},
		{`password "s3cr3t" and s3cr3tive`, []string{"s3cr3t"}, `password "xxxxx" and s3cr3tive`},
		{"s3cr3t", []string{"s3cr3t"}, "xxxxx"},
		{"a=p@ss!,b=p@ss!", []string{"p@ss!"}, "a=xxxxx,b=xxxxx"},
		{"key=!p@ss!word", []string{"!p@ss!"}, "key=xxxxxword"}, // the secret ends in a non-word character: a boundary itself
		{"пароль=секрет.", []string{"секрет"}, "пароль=xxxxx."},
		{"nothing here", []string{""}, "nothing here"},
		// Issue 22, 8: the forms a secret takes once text is transformed.
		{`{"error":"password \"a\"b\\c\" refused"}`, []string{`"a"b\c"`}, `{"error":"password xxxxx refused"}`}, // JSON-escaped
		{`{"e":"pw \u003cx\u003e\u0026y"}`, []string{"<x>&y"}, `{"e":"pw xxxxx"}`},                              // json.Marshal's HTML escaping
		{"postgres://u:abc%2Fdef%40x@h/db", []string{"abc/def@x"}, "postgres://u:xxxxx@h/db"},                   // percent-encoded
		{"failed: pass word with tab", []string{"pass  word\nwith\ttab"}, "failed: xxxxx"},                      // whitespace collapsed
	} {
		if got := Scrub(tc.in, tc.secrets); got != tc.want {
			t.Errorf("Scrub(%q, %q) = %q, want %q", tc.in, tc.secrets, got, tc.want)
		}
	}
}
