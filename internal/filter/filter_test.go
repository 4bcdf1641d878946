package filter

import "testing"

func TestPatterns(t *testing.T) {
	cases := []struct {
		pattern          string
		db, schema, name string
		want             bool
	}{
		{"orders", "app", "public", "orders", true},
		{"ORDERS", "app", "public", "orders", true},
		{`"ORDERS"`, "app", "public", "orders", false},
		{`"ORDERS"`, "app", "public", "ORDERS", true},
		{"public.orders", "app", "sales", "orders", false},
		{"app.*.orders", "app", "sales", "orders", true},
		{"app.*.orders", "other", "sales", "orders", false},
		{"*.logs_*", "x", "public", "logs_2024", true},
		{"log?", "x", "public", "logs", true},
		{"log?", "x", "public", "log", false},
		{`"Odd Schema.with ""dots"""."Mixed Case"`, "x", `Odd Schema.with "dots"`, "Mixed Case", true},
		{`"a*b"`, "x", "public", "a*b", true},
		{`"a*b"`, "x", "public", "aXb", false},
		{`"my.db".public.t`, "my.db", "public", "t", true},
		// pg_dump's regular-expression characters, outside quotes (psql's
		// Patterns: all but . * ? and $ keep their meaning).
		{"t[0-9]", "x", "public", "t7", true},
		{"t[0-9]", "x", "public", "ta", false},
		{"T[A-C]", "x", "public", "tb", true},
		{"(orders|items)", "x", "public", "items", true},
		{"(orders|items)", "x", "public", "orders_old", false},
		{"a+", "x", "public", "aaa", true},
		{`"t[0-9]"`, "x", "public", "t7", false},
		{`"t[0-9]"`, "x", "public", "t[0-9]", true},
		{"price$", "x", "public", "price$", true},
		{"price$", "x", "public", "price", false},
	}
	for _, c := range cases {
		p, err := ParsePattern(c.pattern)
		if err != nil {
			t.Fatalf("%s: %v", c.pattern, err)
		}
		if got := p.Match(c.db, c.schema, c.name); got != c.want {
			t.Errorf("%s matches %s.%s.%s = %v, want %v", c.pattern, c.db, c.schema, c.name, got, c.want)
		}
	}
	for _, bad := range []string{`"unterminated`, "a..b", "a.b.c.d", "", "t[0-9", "(a"} {
		if _, err := ParsePattern(bad); err == nil {
			t.Errorf("%q: no error", bad)
		}
	}
}

func TestRules(t *testing.T) {
	r, err := Spec{
		ExcludeTables:    []string{"app.public.secret"},
		SchemaOnlyTables: []string{"audit_*"},
		TableFilters:     []string{"app.public.events:created_at > '2024-01-01'", `"Weird:Name":x = 1`},
	}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	if !r.Database("app") || r.Database("postgres") {
		t.Error("default databases: all but postgres")
	}
	if d := r.Table("app", "public", "secret"); d.Copy {
		t.Error("secret copied")
	}
	if d := r.Table("app", "public", "audit_log"); !d.Copy || !d.SchemaOnly {
		t.Errorf("audit_log: %+v", d)
	}
	if d := r.Table("app", "public", "events"); d.Predicate != "(created_at > '2024-01-01')" {
		t.Errorf("events predicate %q", d.Predicate)
	}
	if d := r.Table("app", "public", "Weird:Name"); d.Predicate != "(x = 1)" {
		t.Errorf("quoted colon: %q", d.Predicate)
	}

	r, _ = Spec{IncludeDatabases: []string{"*"}}.Compile()
	if r.Database("postgres") {
		t.Error("a glob must not pull in postgres")
	}
	r, _ = Spec{IncludeDatabases: []string{"postgres", "app*"}, ExcludeDatabases: []string{"app_old"}}.Compile()
	if !r.Database("postgres") || !r.Database("app1") || r.Database("app_old") || r.Database("other") {
		t.Error("include/exclude databases")
	}
	r, _ = Spec{IncludeTables: []string{"shop.public.orders"}}.Compile()
	if !r.Database("shop") || r.Database("crm") {
		t.Error("--include-tables narrows the databases")
	}
	if r.Table("shop", "public", "customers").Copy || !r.Table("shop", "public", "orders").Copy {
		t.Error("--include-tables narrows the tables")
	}
}

// A partition follows its table, but --schema-only-tables and --table-filter
// may name it.
func TestRelationOfAPartition(t *testing.T) {
	r, err := Spec{SchemaOnlyTables: []string{"payment_p2022_01"}, TableFilters: []string{"payment_p2022_02:amount > 0", "payment:id > 5"}}.Compile()
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []struct {
		name string
		want Decision
	}{
		{"payment", Decision{Copy: true, Predicate: "(id > 5)"}},
		{"payment_p2022_01", Decision{Copy: true, SchemaOnly: true, Predicate: "(id > 5)"}},
		{"payment_p2022_02", Decision{Copy: true, Predicate: "(id > 5) AND (amount > 0)"}},
	} {
		if got := r.Relation("pagila", "public", c.name, "public", "payment"); got != c.want {
			t.Errorf("%s: %+v, want %+v", c.name, got, c.want)
		}
	}
	r, _ = Spec{ExcludeTables: []string{"payment"}, SchemaOnlyTables: []string{"payment_p2022_01"}}.Compile()
	if got := r.Relation("pagila", "public", "payment_p2022_01", "public", "payment"); got.Copy {
		t.Errorf("a partition of an excluded table: %+v", got)
	}
}
