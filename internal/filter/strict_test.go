package filter

import (
	"strings"
	"testing"
)

func TestStrictNames(t *testing.T) {
	dbs := []string{"postgres", "shop", "Analytics Db", "billing"}
	for _, tc := range []struct {
		spec     Spec
		err      string
		warnings string
	}{
		{Spec{IncludeDatabases: []string{"shop", "Analytics Db"}},
			`--include-databases "Analytics Db" matches no database: unquoted names are folded to lower case; to match "Analytics Db", quote it: --include-databases '"Analytics Db"'`, ""},
		{Spec{IncludeDatabases: []string{"shop", `"Analytics Db"`}}, "", ""},
		{Spec{IncludeDatabases: []string{"shp"}}, `--include-databases "shp" matches no database: did you mean "shop"?`, ""},
		{Spec{IncludeDatabases: []string{"analytic db"}}, `did you mean "Analytics Db"? (quote mixed-case names: --include-databases '"Analytics Db"')`, ""},
		{Spec{IncludeDatabases: []string{"bill*", "nothing_like_it"}}, `--include-databases "nothing_like_it" matches no database`, ""},
		// postgres is included only when named literally: a glob that matches
		// only it matches nothing.
		{Spec{IncludeDatabases: []string{"postg*"}}, `--include-databases "postg*" matches no database`, ""},
		{Spec{ExcludeDatabases: []string{"tmp_*"}}, "", `--exclude-databases "tmp_*" matches no database: nothing is excluded by it`},
	} {
		r, err := tc.spec.Compile()
		if err != nil {
			t.Fatal(err)
		}
		warnings, err := r.CheckDatabases(dbs)
		switch {
		case tc.err == "" && err != nil:
			t.Errorf("%v: %v", tc.spec, err)
		case tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)):
			t.Errorf("%v: got %v, want %s", tc.spec, err, tc.err)
		}
		if got := strings.Join(warnings, "\n"); !strings.Contains(got, tc.warnings) || tc.warnings == "" && got != "" {
			t.Errorf("%v: warnings %q, want %q", tc.spec, got, tc.warnings)
		}
	}

	tables := []Table{{DB: "shop", Schema: "public", Name: "orders"}, {DB: "shop", Schema: "Sales", Name: "Leads"}, {DB: "billing", Schema: "public", Name: "invoices"},
		{DB: "pagila", Schema: "public", Name: "payment", RootSchema: "public", RootName: "payment"},
		{DB: "pagila", Schema: "public", Name: "payment_p2022_01", RootSchema: "public", RootName: "payment"},
		{DB: "pagila", Schema: "public", Name: "payment_p2022_02", RootSchema: "public", RootName: "payment"},
		{DB: "pagila", Schema: "public", Name: "rental_by_category", Matview: true}}
	for _, tc := range []struct {
		spec Spec
		err  string
	}{
		{Spec{IncludeTables: []string{"shop.public.orders", "invoices"}}, ""},
		{Spec{IncludeTables: []string{"Sales.Leads"}}, `--include-tables "Sales.Leads" matches no table: unquoted names are folded to lower case; to match "Sales.Leads", quote it: --include-tables '"Sales"."Leads"'`},
		{Spec{IncludeTables: []string{"shop.public.order"}}, `did you mean "public.orders"?`},
		{Spec{SchemaOnlyTables: []string{"logs"}}, `--schema-only-tables "logs" matches no table`},
		// pgcopydb's filtering test: partitions named without their table.
		{Spec{ExcludeTables: []string{"pagila.public.payment_p*"}}, `--exclude-tables "pagila.public.payment_p*" names partitions of public.payment (public.payment_p2022_01, public.payment_p2022_02) but not the table, which they follow: to leave their rows out, name them in --schema-only-tables`},
		{Spec{IncludeTables: []string{"payment_p2022_01"}}, `--include-tables "payment_p2022_01" names partitions of public.payment (public.payment_p2022_01) but not the table`},
		{Spec{ExcludeTables: []string{"payment*"}}, ""},
		{Spec{SchemaOnlyTables: []string{"payment_p2022_01", "rental_by_category"}}, ""},
		{Spec{TableFilters: []string{"rental_by_category:total > 0"}}, `--table-filter "rental_by_category" names materialized view public.rental_by_category, whose rows come from its query`},
		{Spec{TableFilters: []string{"shop.public.ordrs:id > 1"}}, `--table-filter "shop.public.ordrs" matches no table`},
	} {
		r, err := tc.spec.Compile()
		if err != nil {
			t.Fatal(err)
		}
		_, err = r.CheckTables(tables)
		if tc.err == "" && err != nil || tc.err != "" && (err == nil || !strings.Contains(err.Error(), tc.err)) {
			t.Errorf("%v: got %v, want %q", tc.spec, err, tc.err)
		}
	}
}
