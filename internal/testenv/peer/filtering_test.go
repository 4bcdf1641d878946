package peer_test

import (
	"testing"
)

func TestPeerFilteringExplore(t *testing.T) {
	const db = "filtering"
	cleanup(t, []string{db})
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	loadPagila(t, pair.Source.URL(db), false)
	psql(t, pair.Source.URL(db), testdata(t, "filtering-extra.sql"), true, nil)

	r := replicator(t, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--no-roles",
		"--include-databases", db,
		"--exclude-schemas", "filtering.public,filtering.bar,filtering.schema_name_20_chars",
		"--exclude-tables", "filtering.foo.test_tbl_2,filtering.app.foo,filtering.foo.matview_1_exclude_as_table,filtering.foo.tbl*",
		"--schema-only-tables", "filtering.foo.matview_1_exclude_data,filtering.partitioned_tables.sellers_archive")
	t.Logf("%s", r)
	if r.code == 0 {
		t.Logf("schemas %v", schemas(t, pair.Target, db))
		t.Logf("tables %v", tables(t, pair.Target, db))
		t.Logf("seqs %v", query(t, pair.Target, db, "SELECT schemaname||'.'||sequencename||' '||coalesce(last_value::text,'null') FROM pg_sequences ORDER BY 1"))
		t.Logf("copy.foo %v", query(t, pair.Target, db, "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'copy.foo'::regclass"))
		t.Logf("app %v", query(t, pair.Target, db, "SELECT relname, relkind FROM pg_class WHERE relnamespace = 'app'::regnamespace"))
		t.Logf("mv %v", query(t, pair.Target, db, "select schemaname, matviewname, ispopulated from pg_matviews order by 1, 2"))
	}
	r = replicator(t, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--no-roles",
		"--include-databases", db, "--drop-existing", "--yes",
		"--include-schemas", "filtering.public,filtering.schema_name_20_chars,filtering.seq",
		"--include-tables", "filtering.public.actor,filtering.public.category,filtering.public.film,filtering.public.film_actor,filtering.public.film_category,filtering.public.language,filtering.public.rental,filtering.schema_name_20_chars.very______long______table______name_______50_chars",
		"--schema-only-tables", "filtering.public.rental,filtering.public.customer")
	t.Logf("%s", r)
	r = replicator(t, "init", "--source", pair.Source.URL("postgres"), "--target", pair.Target.URL("postgres"), "--no-roles",
		"--include-databases", db, "--drop-existing", "--yes",
		"--include-schemas", "filtering.public,filtering.schema_name_20_chars,filtering.seq",
		"--include-tables", "filtering.public.customer,filtering.public.actor,filtering.public.category,filtering.public.film,filtering.public.film_actor,filtering.public.film_category,filtering.public.language,filtering.public.rental,filtering.schema_name_20_chars.very______long______table______name_______50_chars",
		"--schema-only-tables", "filtering.public.rental,filtering.public.customer")
	t.Logf("%s", r)
	if r.code == 0 {
		t.Logf("schemas %v", schemas(t, pair.Target, db))
		t.Logf("tables %v", tables(t, pair.Target, db))
		t.Logf("seqs %v", query(t, pair.Target, db, "SELECT schemaname||'.'||sequencename||' '||coalesce(last_value::text,'null') FROM pg_sequences ORDER BY 1"))
	}
}
