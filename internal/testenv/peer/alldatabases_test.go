package peer_test

import (
	"reflect"
	"strings"
	"testing"
)

// pgcopydb tests/all-databases (clone --all-databases of pagila, f1db and
// chinook): replicator's init copies every database but postgres without
// a filter. f1db's dump is not in the stored pgcopydb tree; its place is
// taken by "F1 db", a database whose name needs quoting, with its own
// owner, encoding, locale, comment, grants and settings.
func TestPeerAllDatabases(t *testing.T) {
	dbs := []string{"pagila", "chinook", "F1 db"}
	cleanup(t, dbs, "f1_owner", "f1_reader")
	sql(t, pair.Source, "postgres", "CREATE DATABASE pagila")
	loadPagila(t, pair.Source.URL("pagila"), false)
	// Chinook's script creates its database and connects to it.
	psql(t, pair.Source.URL("postgres"), testdata(t, "chinook.sql.gz"), false, nil)
	sql(t, pair.Source, "postgres", `CREATE ROLE f1_owner LOGIN; CREATE ROLE f1_reader`)
	sql(t, pair.Source, "postgres", `CREATE DATABASE "F1 db" OWNER f1_owner TEMPLATE template0 ENCODING 'SQL_ASCII' LC_COLLATE 'C' LC_CTYPE 'C'`)
	sql(t, pair.Source, "postgres", `COMMENT ON DATABASE "F1 db" IS 'formula one, the stand-in';
		REVOKE CONNECT ON DATABASE "F1 db" FROM PUBLIC; GRANT CONNECT ON DATABASE "F1 db" TO f1_reader;
		ALTER DATABASE "F1 db" SET statement_timeout = '17s';
		ALTER ROLE f1_reader IN DATABASE "F1 db" SET work_mem = '3MB'`)
	sql(t, pair.Source, "F1 db", `SET ROLE f1_owner;
CREATE TABLE drivers (driver_id int PRIMARY KEY, code char(3), forename text, surname text);
CREATE TABLE races (race_id int PRIMARY KEY, year int, round int, name text, date date);
CREATE TABLE results (result_id bigserial PRIMARY KEY, race_id int REFERENCES races, driver_id int REFERENCES drivers,
  position int, points numeric(5,2), UNIQUE (race_id, driver_id));
INSERT INTO drivers SELECT g, upper(substr(md5(g::text), 1, 3)), 'Driver', 'N° ' || g FROM generate_series(1, 40) g;
INSERT INTO races SELECT g, 2000 + g / 20, g % 20 + 1, 'Grand Prix ' || g, DATE '2000-03-01' + g * 14 FROM generate_series(1, 400) g;
INSERT INTO results (race_id, driver_id, position, points)
  SELECT r, d, d, CASE WHEN d <= 10 THEN 26 - 2.5 * d ELSE 0 END FROM generate_series(1, 400) r, generate_series(1, 20) d;
CREATE VIEW standings AS SELECT d.surname, sum(points) AS points FROM results JOIN drivers d USING (driver_id) GROUP BY 1;
GRANT SELECT ON standings TO f1_reader`)
	expect(t, pair.Source, "chinook", "SELECT count(*) FROM track", "3503")

	r := replicator(t, append([]string{"init"}, conn()...)...)
	mustSucceed(t, "init", r)

	// Every database but postgres, and nothing else.
	if s, d := query(t, pair.Source, "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"),
		query(t, pair.Target, "postgres", "SELECT datname FROM pg_database WHERE NOT datistemplate ORDER BY 1"); !reflect.DeepEqual(s, d) {
		t.Errorf("databases: source %q, target %q", s, d)
	}
	for _, db := range dbs {
		if !strings.Contains(r.stdout, db) {
			t.Errorf("the summary does not name %s:\n%s", db, r.stdout)
		}
	}
	// The databases' own properties.
	same(t, "postgres", `SELECT datname, pg_get_userbyid(datdba), pg_encoding_to_char(encoding), datcollate, datctype, array(SELECT unnest(datacl)::text ORDER BY 1)::text,
		shobj_description(oid, 'pg_database') FROM pg_database WHERE datname IN ('pagila', 'chinook', 'F1 db') ORDER BY 1`)
	same(t, "postgres", `SELECT d.datname, coalesce(pg_get_userbyid(NULLIF(s.setrole, 0)), '*'), s.setconfig::text
		FROM pg_db_role_setting s JOIN pg_database d ON d.oid = s.setdatabase WHERE d.datname = 'F1 db' ORDER BY 1, 2`)
	// Their contents.
	for table, want := range pagilaCounts {
		expect(t, pair.Target, "pagila", "SELECT count(*) FROM ONLY "+table, want)
	}
	for table, want := range map[string]string{"album": "347", "artist": "275", "customer": "59", "employee": "8", "genre": "25",
		"invoice": "412", "invoice_line": "2240", "media_type": "5", "playlist": "18", "playlist_track": "8715", "track": "3503"} {
		expect(t, pair.Target, "chinook", "SELECT count(*) FROM "+table, want)
	}
	expect(t, pair.Target, "F1 db", "SELECT count(*) FROM results", "8000")
	same(t, "F1 db", "SELECT * FROM standings ORDER BY 1")
	same(t, "F1 db", "SELECT last_value FROM results_result_id_seq")
	for _, db := range dbs {
		compare(t, db)
	}
	verify(t, conn()...)
}
