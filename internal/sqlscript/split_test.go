package sqlscript

import (
	"reflect"
	"testing"
)

func TestSplit(t *testing.T) {
	script := `--
-- Roles
--
\restrict abc123

CREATE ROLE "we;ird";
ALTER ROLE "we;ird" WITH NOSUPERUSER PASSWORD 'SCRAM-SHA-256$4096:a;b';
COMMENT ON ROLE alice IS 'it''s; here';
/* block ; comment /* nested; */ */
CREATE FUNCTION f() RETURNS int AS $body$ select 1; $body$ LANGUAGE sql;
SELECT E'\'; still';
SELECT $1;
\unrestrict abc123
`
	got := Split(script)
	want := []string{
		`CREATE ROLE "we;ird"`,
		`ALTER ROLE "we;ird" WITH NOSUPERUSER PASSWORD 'SCRAM-SHA-256$4096:a;b'`,
		`COMMENT ON ROLE alice IS 'it''s; here'`,
		`CREATE FUNCTION f() RETURNS int AS $body$ select 1; $body$ LANGUAGE sql`,
		`SELECT E'\'; still'`,
		`SELECT $1`,
	}
	if !reflect.DeepEqual(got, want) {
		t.Fatalf("Split:\n got %q\nwant %q", got, want)
	}
}
