package peer_test

import (
	"regexp"
	"testing"
)

// pgcopydb tests/unit: its setup (testdata/unit/setup.sql and the files it
// includes: exclusion constraints, inheritance, ICU collations, names that
// need quoting (a newline, double quotes), a table without columns,
// identity and generated columns, an index whose predicate needs the
// database's search_path, a NOT VALID check, sequences, function ACLs,
// pg_stat_statements' ACL, a tsvector), copied with tables split in
// ranges, then each of its expected/*.out checked on the target, and the
// whole database compared.
func TestPeerUnit(t *testing.T) {
	const db = "unit"
	cleanup(t, []string{db})
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+db)
	// copydb.sh sets this on the database it loads into.
	sql(t, pair.Source, "postgres", `ALTER DATABASE unit SET search_path TO public, """abc"""`)
	psql(t, pair.Source.URL(db), testdata(t, "unit/setup.sql"), true, nil)

	// pgcopydb splits tables larger than 2MB; these are smaller.
	r := replicator(t, append(append([]string{"init"}, conn()...), "--no-roles", "--include-databases", db, "--split-tables-larger-than", "64kB")...)
	mustSucceed(t, "init", r)
	// The tables over 64kB were copied in parts.
	if !regexp.MustCompile(`(?m)^\s*unit\s+"?Sp1eCial \.Char"?\.source1testing\s+10000\s.*\s([2-9]|\d\d+)\s+(binary|text)\s*$`).MatchString(r.stdout) {
		t.Errorf("\"Sp1eCial .Char\".source1testing was not copied in parts:\n%s", r.stdout)
	}

	// expected/1-exclusion-constraints.out
	expect(t, pair.Target, db, `select n.nspname, i.relname, rn.nspname, r.relname, indisprimary, indisunique,
          (select string_agg(attname, ',') from pg_attribute where attrelid = r.oid and array[attnum::integer] <@ indkey::integer[]) as cols,
          pg_get_indexdef(indexrelid), c.conname, pg_get_constraintdef(c.oid)
     from pg_index x
          join pg_class i ON i.oid = x.indexrelid
          join pg_class r ON r.oid = x.indrelid
          join pg_namespace n ON n.oid = i.relnamespace
          join pg_namespace rn ON rn.oid = r.relnamespace
          left join pg_depend d on d.classid = 'pg_class'::regclass and d.objid = i.oid and d.refclassid = 'pg_constraint'::regclass and d.deptype = 'i'
          left join pg_constraint c ON c.oid = d.refobjid
    where r.relkind = 'r' and r.relpersistence = 'p' and rn.nspname = 'public' and r.relname = 'exclcon'`,
		"public|constraint_fail_idx|public|exclcon|false|false|a|CREATE INDEX constraint_fail_idx ON public.exclcon USING btree (a)|constraint_fail_idx|EXCLUDE USING btree (a WITH =)")
	// expected/17-exclusion-with-pkey.out
	expect(t, pair.Target, db, `select c.conname, c.contype::text, pg_get_constraintdef(c.oid) from pg_constraint c
		join pg_class r on r.oid = c.conrelid where r.relname = 'excl_with_pkey' order by c.contype, c.conname`,
		"excl_with_pkey_pkey|p|PRIMARY KEY (id)", "excl_with_pkey_excl|x|EXCLUDE USING btree (val WITH =)")
	// expected/18-collation-multi-use.out
	expect(t, pair.Target, db, "select viewname from pg_views where viewname like 'v_coll_test%' and schemaname = 'public' order by viewname",
		"v_coll_test", "v_coll_test2")
	// expected/2-inherit.out, 4-parent-data.out: the children's rows,
	// none in the parent itself.
	expect(t, pair.Target, db, "select * from public.child_model_1 order by id desc limit 2",
		"11000|1|false|[1 2 3 4]", "10999|1|false|[1 2 3 4]")
	expect(t, pair.Target, db, "select count(*) from only public.parent_model", "0")
	expect(t, pair.Target, db, "select count(*) from public.parent_model", "2000")
	// expected/3-collations.out (the columns' collations), and the ICU
	// collation of the source's.
	expect(t, pair.Target, db, `SELECT attrelid::regclass::text || '.' || attname || ' ' || collname FROM pg_attribute a JOIN pg_collation c ON c.oid = a.attcollation
		WHERE attrelid IN ('colls'::regclass, 'mycoltab'::regclass) AND attnum > 0 ORDER BY 1`,
		"colls.f1 fr-FR-x-icu", "colls.f2 de-DE-x-icu", "mycoltab.f1 mycol", "mycoltab.f2 en-US-x-icu")
	same(t, db, "SELECT collname, collprovider, colliculocale FROM pg_collation WHERE collnamespace = 'public'::regnamespace")
	// expected/3-string-escape.out
	expect(t, pair.Target, db, "table test_str_escape", "1|aaa\naaa", "2|bbb\r\nbbb", "3|ccc")
	// expected/5-attgenerated.out
	expect(t, pair.Target, db, "table public.gen", "1")
	// expected/6-sequences.out
	for _, q := range [][2]string{{"default_table_id_seq", "667"}, {"identity_table_id_seq", "668"}, {"standalone_id_seq", "669"},
		{"standalone_smallint_id_seq", "670"}, {"standalone_minvalue_id_seq", "671"}} {
		expect(t, pair.Target, db, "select last_value from "+q[0], q[1])
	}
	// expected/7-function-acl.out, 8-pg-stat-statements-acl.out: the
	// REVOKEs are on the target.
	expect(t, pair.Target, db, "SELECT proacl IS NOT NULL FROM pg_proc WHERE proname = 'test_function_acl'", "true")
	expect(t, pair.Target, db, "SELECT proacl IS NOT NULL FROM pg_proc WHERE proname = 'pg_stat_statements' LIMIT 1", "true")
	same(t, db, "SELECT proname, proacl::text FROM pg_proc WHERE proname IN ('test_function_acl', 'pg_stat_statements') ORDER BY 1")
	// expected/9-tsvector.out
	expect(t, pair.Target, db, "select id from public.tsv where id = 1", "1")
	same(t, db, "SELECT tsv::text FROM public.tsv")

	// What the other setup files create, without an expected file there.
	// Names that need quoting, with a newline and double quotes in them.
	same(t, db, `SELECT count(*) FROM public."with MyTableName

     AS (SELECT row_id

  "`)
	expect(t, pair.Target, db, `SELECT * FROM """long"""`, "1")
	expect(t, pair.Target, db, `SELECT to_regclass('public."""dqname"""') IS NOT NULL`, "true")
	// A table without columns.
	expect(t, pair.Target, db, "SELECT relnatts FROM pg_class WHERE oid = 'nocols'::regclass", "0")
	// Identity: still generated always, and the next value follows the
	// source's.
	expect(t, pair.Target, db, "SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'test_tbl'::regclass AND attname = 'id'", "a")
	expect(t, pair.Target, db, "SELECT attidentity::text FROM pg_attribute WHERE attrelid = 'test_str_escape'::regclass AND attname = 'id'", "a")
	same(t, db, "SELECT last_value FROM test_str_escape_id_seq")
	// The index whose predicate needed the search_path, and the setting.
	// (printed as the session's search_path, the database's, sees it)
	expect(t, pair.Target, db, `SELECT pg_get_indexdef(indexrelid) FROM pg_index WHERE indexrelid = '"""abc""".indexname'::regclass`,
		`CREATE INDEX indexname ON """abc""".job USING btree (state) WHERE (state = 'SCHEDULED'::state)`)
	same(t, db, `SELECT pg_get_expr(indpred, indrelid) FROM pg_index WHERE indexrelid = '"""abc""".indexname'::regclass`)
	expect(t, pair.Target, "postgres", `SELECT s FROM pg_db_role_setting r, unnest(r.setconfig) s
		WHERE r.setdatabase = (SELECT oid FROM pg_database WHERE datname = 'unit') AND r.setrole = 0`, `search_path=public, """abc"""`)
	// The NOT VALID check stays NOT VALID.
	expect(t, pair.Target, db, "SELECT conname, convalidated FROM pg_constraint WHERE conrelid = 'public.employees'::regclass",
		"chk_employees_name_not_abc|false")
	// Generated columns are computed on the target as on the source.
	expect(t, pair.Target, db, "SELECT attgenerated::text FROM pg_attribute WHERE attrelid = 'ref_admin_commune'::regclass AND attname = 'test'", "s")
	expect(t, pair.Target, db, "SELECT count(DISTINCT id) FROM uuid", "100")
	// The long partial index.
	same(t, db, "SELECT md5(indexdef) FROM pg_indexes WHERE indexname = 'idx_test_table_partial'")
	// The split tables, whole, and their foreign key.
	expect(t, pair.Target, db, `SELECT count(*) FROM "Sp1eCial .Char"."Tabl e.1testing" t JOIN "Sp1eCial .Char".source1testing s ON s.s0 = t."iD"`, "10000")
	same(t, db, "SELECT count(*), md5(string_agg(c_char || d_char, ',' ORDER BY c_char, d_char)) FROM table_ctid_candidate")

	// Everything: rows, objects, sequences, the schema dump, the
	// database's settings.
	compare(t, db)
	verify(t, append(conn(), "--include-databases", db)...)
}
