package peer_test

import (
	"fmt"
	"slices"
	"testing"
)

// An extension of the extensions scenario: how the source gets it, with
// objects of the user's that use it, and what must answer the same on the
// target.
type extCase struct {
	name   string
	setup  string
	checks []string
}

// extCases are pgcopydb tests/extensions' (intarray; hstore in schema foo;
// postgis, which PostgreSQL's contrib lacks and is skipped where absent),
// and more of contrib's, in odd schemas and at versions other than the
// default, each with objects of the user's that need it.
var extCases = []extCase{
	{"intarray", `create extension intarray cascade;
create table arr (id int primary key, a int[]);
insert into arr select g, array[g % 7, g % 11, g % 13] from generate_series(1, 300) g;
create index arr_gist on arr using gist (a gist__int_ops);`,
		[]string{"SELECT count(*) FROM arr WHERE a @@ '1&2'::query_int", "SELECT sort(a) FROM arr WHERE id = 77"}},
	{"hstore", `create schema foo;
create extension hstore with schema foo version '1.7' cascade;
create table kv (id int primary key, h foo.hstore);
insert into kv select g, foo.hstore(array['k', 'n'], array[g::text, 'v' || g]) from generate_series(1, 200) g;`,
		[]string{"SELECT h OPERATOR(foo.->) 'n' FROM kv WHERE id = 150"}},
	{"postgis", `create extension postgis cascade;
create table capitals (id integer primary key, name varchar(256), geom geometry(Point, 4326));
insert into capitals values (1, 'Paris', ST_SetSRID(ST_MakePoint(2.35, 48.85), 4326));`,
		[]string{"SELECT ST_AsText(geom) FROM capitals", "SELECT count(*) FROM spatial_ref_sys"}},
	{"citext", `create extension citext version '1.5';
create table users (id int primary key, email citext unique);
insert into users select g, 'User' || g || '@Example.COM' from generate_series(1, 100) g;`,
		[]string{"SELECT id FROM users WHERE email = 'user42@example.com'"}},
	{"ltree", `create extension ltree;
create table tree (id int primary key, path ltree);
insert into tree select g, ('top.' || (g % 5) || '.n' || g)::ltree from generate_series(1, 100) g;
create index tree_gist on tree using gist (path);`,
		[]string{"SELECT count(*) FROM tree WHERE path <@ 'top.3'"}},
	{"earthdistance", `create schema "Geo Ext";
create extension earthdistance schema "Geo Ext" cascade;
create table places (id int primary key, at "Geo Ext".cube);
insert into places values (1, "Geo Ext".cube(array[4202.7, 172.6, 4803.4])), (2, "Geo Ext".cube(array[1330.1, -4656.8, 4146.3]));`,
		[]string{`SELECT round("Geo Ext".cube_distance(a.at, b.at)) FROM places a, places b WHERE a.id = 1 AND b.id = 2`, `SELECT "Geo Ext".earth()`}},
	{"pg_trgm", `create schema bar;
create extension pg_trgm schema bar;
create table docs (id int primary key, body text);
insert into docs select g, 'document number ' || g from generate_series(1, 200) g;
create index docs_trgm on docs using gin (body bar.gin_trgm_ops);`,
		[]string{"SELECT count(*) FROM docs WHERE body OPERATOR(bar.%) 'document numbr 17'", "SELECT indexdef FROM pg_indexes WHERE indexname = 'docs_trgm'"}},
	{"btree_gist", `create extension btree_gist;
create table booking (room int, during tstzrange, exclude using gist (room with =, during with &&));
insert into booking values (1, '[2024-01-01, 2024-01-02)'), (1, '[2024-01-02, 2024-01-03)'), (2, '[2024-01-01, 2024-01-03)');`,
		[]string{"SELECT pg_get_constraintdef(oid) FROM pg_constraint WHERE conrelid = 'booking'::regclass", "SELECT count(*) FROM booking"}},
	{"uuid-ossp", `create schema ext;
create extension "uuid-ossp" schema ext;
create table tokens (id uuid primary key default ext.uuid_generate_v4(), n int);
insert into tokens (n) select generate_series(1, 50);`,
		[]string{"SELECT count(DISTINCT id) FROM tokens", "SELECT pg_get_expr(adbin, adrelid) FROM pg_attrdef WHERE adrelid = 'tokens'::regclass"}},
	{"pgcrypto", `create schema "Foo Bar";
create extension pgcrypto schema "Foo Bar";
create table secrets (id int primary key, v bytea, h bytea generated always as ("Foo Bar".digest(v, 'sha256')) stored);
insert into secrets (id, v) select g, convert_to('secret ' || g, 'UTF8') from generate_series(1, 50) g;`,
		[]string{"SELECT encode(h, 'hex') FROM secrets WHERE id = 7"}},
	{"unaccent", `create extension unaccent;
create text search configuration fr_unaccent (copy = simple);
alter text search configuration fr_unaccent alter mapping for hword, hword_part, word with unaccent, simple;`,
		[]string{"SELECT to_tsvector('fr_unaccent', 'Hôtel Élysée')::text"}},
	{"isn", `create extension isn;
create table books (id int primary key, isbn isbn13);
insert into books values (1, '978-0-393-04002-9');`,
		[]string{"SELECT isbn::text FROM books"}},
	{"seg", `create schema "With a space";
create extension seg schema "With a space";
create table measures (id int primary key, s "With a space".seg);
insert into measures select g, (g || ' .. ' || (g + 2))::"With a space".seg from generate_series(1, 20) g;`,
		[]string{"SELECT s::text FROM measures WHERE id = 5"}},
	{"lo", `create extension lo;
create table images (id int primary key, raster lo);
create trigger t_raster before update or delete on images for each row execute function lo_manage(raster);`,
		[]string{"SELECT tgname FROM pg_trigger WHERE tgrelid = 'images'::regclass"}},
	{"fuzzystrmatch", `create extension fuzzystrmatch;
create view sounds as select name, soundex(name) from (values ('Robert'), ('Rupert')) v(name);`,
		[]string{"SELECT * FROM sounds ORDER BY 1"}},
	{"bloom", `create extension bloom;
create table wide (id int, a int, b int);
insert into wide select g, g % 10, g % 7 from generate_series(1, 500) g;
create index wide_bloom on wide using bloom (a, b);`,
		[]string{"SELECT indexdef FROM pg_indexes WHERE indexname = 'wide_bloom'", "SELECT count(*) FROM wide WHERE a = 3 AND b = 4"}},
	{"postgres_fdw", `create extension postgres_fdw;
create server elsewhere foreign data wrapper postgres_fdw options (host '127.0.0.1', port '1', dbname 'nowhere');
create user mapping for public server elsewhere options (user 'nobody');
create foreign table remote_t (id int, v text) server elsewhere options (table_name 't');`,
		[]string{"SELECT srvname, array(SELECT unnest(srvoptions) ORDER BY 1)::text FROM pg_foreign_server", "SELECT ftoptions::text FROM pg_foreign_table",
			"SELECT array(SELECT unnest(umoptions) ORDER BY 1)::text FROM pg_user_mapping"}},
	{"pg_stat_statements", `create extension pg_stat_statements;`, nil},
}

// pgcopydb tests/extensions: the pagila database, owned by a role without
// SUPERUSER, with extensions the superuser created, some in schemas of
// their own and not at their default version; the copy as the superuser.
// Every extension available in this server's contrib is used; those that
// are not installed here are skipped, each in its subtest.
func TestPeerExtensions(t *testing.T) {
	const db = "extensions"
	cleanup(t, []string{db}, "pagila")
	available := query(t, pair.Source, "postgres", "SELECT name FROM pg_available_extensions")
	sql(t, pair.Source, "postgres", "CREATE ROLE pagila NOSUPERUSER CREATEDB NOCREATEROLE LOGIN PASSWORD '"+pagilaPassword+"'")
	sql(t, pair.Source, "postgres", "CREATE DATABASE "+db+" OWNER pagila")
	for _, c := range extCases {
		if slices.Contains(available, c.name) {
			sql(t, pair.Source, db, c.setup)
		}
	}
	// The application, as pagila: its schema, data, and ddl.sql's tables
	// with circular foreign keys.
	src := pair.Source.URLAs("pagila", pagilaPassword, db)
	loadPagila(t, src, true)
	psql(t, src, testdata(t, "extensions-ddl.sql"), false, nil)
	sqlAs(t, src, "insert into three values (1), (2); insert into one values (1, null); insert into two values (1, 1, 2); update one set two_id = 1")

	// Roles copied too: pagila comes first, then its database.
	r := replicator(t, append(append([]string{"init"}, conn()...), "--include-databases", db)...)
	mustSucceed(t, "init", r)
	expect(t, pair.Target, "postgres", "SELECT rolname, rolsuper, rolcanlogin, rolcreatedb FROM pg_roles WHERE rolname = 'pagila'", "pagila|false|true|true")
	expect(t, pair.Target, "postgres", "SELECT pg_get_userbyid(datdba) FROM pg_database WHERE datname = '"+db+"'", "pagila")

	// The same extensions in the same schemas; each at the source's
	// version (hstore 1.7 and citext 1.5 are not the defaults).
	same(t, db, "SELECT extname, extnamespace::regnamespace::text FROM pg_extension ORDER BY 1")
	for _, c := range extCases {
		t.Run(c.name, func(t *testing.T) {
			if !slices.Contains(available, c.name) {
				t.Skipf("extension %s is not available on this server", c.name)
			}
			same(t, db, fmt.Sprintf("SELECT extname, extnamespace::regnamespace::text, extversion FROM pg_extension WHERE extname = '%s'", c.name))
			for _, q := range c.checks {
				same(t, db, q)
			}
			extensionConfigTables(t, db, c.name)
		})
	}
	// The foreign table is created, and its rows were not asked for: its
	// server (port 1) answers nobody, so a copy that read it would have
	// failed.
	if slices.Contains(available, "postgres_fdw") {
		expect(t, pair.Target, db, "SELECT relkind::text FROM pg_class WHERE oid = 'remote_t'::regclass", "f")
	}
	expect(t, pair.Target, db, "SELECT count(*) FROM one JOIN two ON two.id = one.two_id JOIN three ON three.id = two.three_id", "1")
	for table, want := range pagilaCounts {
		expect(t, pair.Target, db, "SELECT count(*) FROM ONLY "+table, want)
	}
	// Everything else: rows, objects, sequences, the schema dump.
	compare(t, db)
	verify(t, append(conn(), "--include-databases", db)...)
}

// extensionConfigTables compares the rows of an extension's configuration
// tables (pg_extension_config_dump: postgis' spatial_ref_sys, ...) that the
// user may have added, on both sides: pg_dump dumps them as data, and the
// copy must not lose them. PostgreSQL's contrib has no extension with one,
// so on a server without postgis and the like this checks that none is
// reported either side.
func extensionConfigTables(t *testing.T, db, ext string) {
	t.Helper()
	q := "SELECT coalesce(array_length(extconfig, 1), 0) FROM pg_extension WHERE extname = $1"
	s, d := query(t, pair.Source, db, q, ext), query(t, pair.Target, db, q, ext)
	if !slices.Equal(s, d) {
		t.Errorf("%s: %v configuration tables on the source, %v on the target", ext, s, d)
		return
	}
	// regclass text is quoted as needed: it goes into SQL as it is.
	for _, table := range query(t, pair.Source, db, "SELECT c::regclass::text FROM pg_extension, unnest(extconfig) c WHERE extname = $1 ORDER BY 1", ext) {
		same(t, db, "SELECT count(*), md5(coalesce(string_agg(x::text, ',' ORDER BY x::text), '')) FROM "+table+" x")
	}
}
