package engine

import (
	"reflect"
	"testing"
)

func TestWithoutPrivilegedAttributes(t *testing.T) {
	stmt := `ALTER ROLE "SUPERUSER x" WITH SUPERUSER INHERIT NOCREATEROLE LOGIN NOREPLICATION BYPASSRLS PASSWORD 'md5 SUPERUSER; x'`
	got, dropped := withoutPrivilegedAttributes(stmt)
	want := `ALTER ROLE "SUPERUSER x" WITH  INHERIT NOCREATEROLE LOGIN   PASSWORD 'md5 SUPERUSER; x'`
	if got != want {
		t.Errorf("got  %s\nwant %s", got, want)
	}
	if !reflect.DeepEqual(dropped, []string{"SUPERUSER", "BYPASSRLS"}) {
		t.Errorf("dropped %v", dropped)
	}
}

func TestClassifyRoleStatement(t *testing.T) {
	for stmt, want := range map[string][2]string{
		`CREATE ROLE alice`:                              {"create", "alice"},
		`CREATE ROLE "We""ird Role"`:                     {"create", `We"ird Role`},
		`ALTER ROLE bob WITH LOGIN`:                      {"alter", "bob"},
		`ALTER ROLE bob SET search_path TO app`:          {"alter", "bob"},
		`COMMENT ON ROLE "x y" IS 'z'`:                   {"comment", "x y"},
		`SECURITY LABEL FOR selinux ON ROLE carl IS 'x'`: {"label", "carl"},
		`GRANT a TO b GRANTED BY postgres`:               {"other", ""},
	} {
		kind, role := classifyRoleStatement(stmt)
		if kind != want[0] || role != want[1] {
			t.Errorf("%s: got %s %q, want %s %q", stmt, kind, role, want[0], want[1])
		}
	}
}
