package conninfo

import (
	"strings"
	"testing"
)

func TestParseURL(t *testing.T) {
	e, err := Parse("source", "postgresql://app%40corp:p%40ss%3Aw0rd@db.example.com:6543/my%20db?sslmode=require&application_name=x")
	if err != nil {
		t.Fatal(err)
	}
	if e.User() != "app@corp" || e.Password() != "p@ss:w0rd" || e.Database() != "my db" || e.Host() != "db.example.com" || e.Port() != 6543 {
		t.Fatalf("parsed %+v", e.config)
	}
	if got := e.String(); got != "postgres://app%40corp@db.example.com:6543/my%20db?application_name=x&sslmode=require" {
		t.Errorf("String() = %s", got)
	}
	tool := e.ToolConnString()
	if strings.Contains(tool, "p@ss") || !strings.Contains(tool, "sslmode='require'") || !strings.Contains(tool, "dbname='my db'") {
		t.Errorf("tool conn string %q", tool)
	}
	if env := strings.Join(e.ToolEnv(), " "); !strings.Contains(env, "PGPASSWORD=p@ss:w0rd") {
		t.Errorf("tool env %q", env)
	}
	other, err := e.WithDatabase("it's")
	if err != nil || other.Database() != "it's" || other.Password() != "p@ss:w0rd" {
		t.Fatalf("WithDatabase: %v %+v", err, other)
	}
	if !strings.Contains(other.ToolConnString(), `dbname='it\'s'`) {
		t.Errorf("quoting: %s", other.ToolConnString())
	}
}

func TestParseKeywordValue(t *testing.T) {
	e, err := Parse("target", `host=localhost port=5433 user=bob password='se cr\'et' dbname=postgres sslmode=disable`)
	if err != nil {
		t.Fatal(err)
	}
	if e.Password() != "se cr'et" || e.Port() != 5433 || e.User() != "bob" {
		t.Fatalf("parsed %+v", e.config)
	}
}

func TestPasswordFromEnvironmentAndPgpass(t *testing.T) {
	t.Setenv("PGPASSWORD", "from-env")
	e, err := Parse("source", "postgres://u@h/db")
	if err != nil || e.Password() != "from-env" {
		t.Fatalf("PGPASSWORD not used: %v %q", err, e.Password())
	}
	t.Setenv("PGPASSWORD", "")
	pass := t.TempDir() + "/pgpass"
	writeFile(t, pass, "h:5432:db:u:from-pgpass\n")
	t.Setenv("PGPASSFILE", pass)
	e, err = Parse("source", "postgres://u@h/db")
	if err != nil || e.Password() != "from-pgpass" {
		t.Fatalf(".pgpass not used: %v %q", err, e.Password())
	}
}

func TestMalformedNeverEchoesPassword(t *testing.T) {
	for _, raw := range []string{
		"postgres://u:topsecret@h:badport/db",
		"postgres://u:topsecret@[::1/db",
		"host=h password=topsecret sslmode=bogus",
		"postgres://u:topsecret@h/db?sslmode=bogus",
		// Issue 22, 8: a "/" or "?" in the password ends the host part;
		// the rest, password included, once became the database name.
		"postgres://u:top/topsecret@h/db",
		"postgres://u:top?topsecret@h/db",
		"postgres://u:topsecret/x@h:5432/db",
		"nonsense",
		"",
	} {
		_, err := Parse("source", raw)
		if err == nil {
			t.Errorf("%q: no error", raw)
			continue
		}
		if strings.Contains(err.Error(), "topsecret") || strings.Contains(err.Error(), "\n") {
			t.Errorf("%q: %v", raw, err)
		}
		if !strings.HasPrefix(err.Error(), "source: ") {
			t.Errorf("%q: error does not name the side: %v", raw, err)
		}
	}
}

// Keepalives: the client tools get libpq's keywords (the operating system's
// default would notice a vanished server after two hours), pgx gets them as
// its dialer's, and they are never sent to the server as settings, which it
// would refuse.
func TestKeepalives(t *testing.T) {
	e, err := Parse("source", "postgres://u@db.example.com/app?keepalives_idle=5")
	if err != nil {
		t.Fatal(err)
	}
	tool := e.ToolConnString()
	for _, want := range []string{"keepalives_idle='5'", "keepalives_interval='10'", "keepalives_count='3'"} {
		if !strings.Contains(tool, want) {
			t.Errorf("tool connection string %q lacks %s", tool, want)
		}
	}
	for k := range e.ConnConfig().RuntimeParams {
		if strings.HasPrefix(k, "keepalives") {
			t.Errorf("%s would be sent to the server as a setting", k)
		}
	}
	if e.ConnConfig().DialFunc == nil {
		t.Error("no dialer")
	}
	if _, err := Parse("source", "postgres://u@db.example.com/app?keepalives_count=never"); err == nil || !strings.Contains(err.Error(), "keepalives_count must be a positive number") {
		t.Errorf("a bad keepalives_count: %v", err)
	}
}
