package replication

import (
	"strings"
	"testing"
)

// The queue's problem text holds one problem per line, each with the fix
// the side that found it knew; status shows the problems on one line and
// the fixes as the fix, ending with how to clear the row.
func TestSchemaChangeFix(t *testing.T) {
	c := SchemaChange{ID: 7, Side: "target", Role: "alice"}
	c.Problem, c.Remedy = splitRemedy("column a of t was added with default now(); fix: on the target, UPDATE t SET a = 1\nmaterialized view m differs; fix: REFRESH MATERIALIZED VIEW m")
	if c.Problem != "column a of t was added with default now(); materialized view m differs" {
		t.Errorf("problem: %q", c.Problem)
	}
	if want := "on the target, UPDATE t SET a = 1; REFRESH MATERIALIZED VIEW m, then DELETE FROM replicator_ddl.queue WHERE id = 7 on the source to clear it here"; c.Fix() != want {
		t.Errorf("fix: %q\nwant %q", c.Fix(), want)
	}
	c.Problem, c.Remedy = splitRemedy(`role "x" does not exist (SQLSTATE 42704)`)
	if c.Remedy != "" || !strings.HasPrefix(c.Fix(), `remove the cause, run the statement on the target as "alice"`) {
		t.Errorf("a refusal without a known fix: %q / %q", c.Remedy, c.Fix())
	}
	c.Statements = []string{"ALTER TABLE t\n  ADD COLUMN a int", strings.Repeat("x", 300)}
	if s := c.Statement(); !strings.HasPrefix(s, "ALTER TABLE t ADD COLUMN a int; xxx") || len([]rune(s)) != 200 {
		t.Errorf("statement: %q (%d)", s, len([]rune(s)))
	}
}
