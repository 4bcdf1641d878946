package conninfo

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/pem"
	"math/big"
	"net/netip"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"
)

// A URL from the job API must not make the Lambda or the worker read local
// files or use a Unix socket.
func TestParseRemoteRefusesLocalResources(t *testing.T) {
	for _, raw := range []string{
		"postgres://u:p@db.example.com/app?sslrootcert=/etc/shadow",
		"postgres://u:p@db.example.com/app?sslkey=/proc/self/environ",
		"postgres://u:p@db.example.com/app?passfile=/root/.pgpass",
		"postgres://u:p@db.example.com/app?service=prod",
		"host=db.example.com user=u servicefile=/etc/passwd",
		"host=db.example.com sslcrldir=/etc",
		"host=/var/run/postgresql user=u",
		"postgres://u:p@%2Fvar%2Frun%2Fpostgresql/app",
		"host=@abstract user=u",
		"host=db.example.com hostaddr=169.254.169.254 user=u",
	} {
		if _, err := ParseRemote("source", raw); err == nil {
			t.Errorf("ParseRemote(%q) accepted it", raw)
		} else if strings.Contains(err.Error(), ":p@") {
			t.Errorf("error echoes the URL: %v", err)
		}
	}
	// libpq's "system" names the system's roots, not a file: the worker uses its own.
	if _, err := ParseRemote("source", "postgres://u:p@db.example.com/app?sslmode=verify-full&sslrootcert=system"); err != nil {
		t.Errorf("sslrootcert=system: %v", err)
	}
	if _, err := ParseRemote("source", "postgres://u:p@db.example.com:6432/app?sslmode=require"); err != nil {
		t.Errorf("a plain URL: %v", err)
	}
}

// ForRemote inlines the certificates and the resolved password; the worker's
// WithCertificates writes them back to private files.
func TestCertificatesRoundTrip(t *testing.T) {
	dir := t.TempDir()
	certPEM, keyPEM := selfSigned(t)
	ca, cert, key := filepath.Join(dir, "ca.pem"), filepath.Join(dir, "client.crt"), filepath.Join(dir, "client.key")
	os.WriteFile(ca, certPEM, 0o644)
	os.WriteFile(cert, certPEM, 0o644)
	os.WriteFile(key, keyPEM, 0o600)
	t.Setenv("PGPASSWORD", "from-env")
	ep, err := Parse("target", "host=db.example.com user=u dbname=app sslmode=verify-full sslrootcert="+ca+" sslkey="+key+" sslcert="+cert)
	if err != nil {
		t.Fatal(err)
	}
	conn, certs, err := ep.ForRemote()
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(conn, dir) || !strings.Contains(conn, "from-env") {
		t.Errorf("remote connection string %q: want the password and no local path", conn)
	}
	if !strings.Contains(certs["sslrootcert"], "BEGIN CERTIFICATE") || certs["sslkey"] != string(keyPEM) {
		t.Errorf("certificates: %v", certs)
	}
	if _, err := ParseRemote("target", conn); err != nil {
		t.Fatalf("the API refuses what ForRemote makes: %v", err)
	}

	workDir := t.TempDir()
	t.Setenv("PGPASSWORD", "")
	back, err := WithCertificates("target", conn, certs, workDir)
	if err != nil {
		t.Fatal(err)
	}
	path := back.params["sslrootcert"]
	if filepath.Dir(path) != workDir {
		t.Fatalf("sslrootcert %q is not in the worker's directory", path)
	}
	if info, err := os.Stat(back.params["sslkey"]); err != nil || info.Mode().Perm() != 0o600 {
		t.Errorf("key file: %v %v", info, err)
	}
	if back.config.Password != "from-env" {
		t.Error("the password did not travel")
	}
	if _, err := WithCertificates("target", conn, Certificates{"passfile": "x"}, workDir); err == nil {
		t.Error("an unknown certificate keyword was written")
	}

	// A Unix socket of this machine cannot be carried.
	sock, _ := Parse("source", "host=/tmp user=u dbname=app")
	if _, _, err := sock.ForRemote(); err == nil {
		t.Error("ForRemote carried a Unix socket")
	}
}

// The worker never connects to instance metadata, loopback or link-local
// addresses, in any spelling.
func TestAllowed(t *testing.T) {
	for addr, ok := range map[string]bool{
		"169.254.169.254":        false, // IMDS (IPv4)
		"fd00:ec2::254":          false, // IMDS (IPv6, Nitro)
		"169.254.169.253":        false, // Amazon DNS, link-local
		"::ffff:169.254.169.254": false, // IPv4-mapped
		"64:ff9b::a9fe:a9fe":     false, // NAT64 spelling of 169.254.169.254
		"127.0.0.1":              false,
		"127.1.2.3":              false,
		"::1":                    false,
		"0.0.0.0":                false,
		"::":                     false,
		"fe80::1":                false,
		"224.0.0.1":              false,
		"10.0.3.7":               true, // a database in the VPC
		"172.31.0.10":            true,
		"203.0.113.9":            true,
		"2600:1f18::5":           true,
		"64:ff9b::cb00:7109":     true, // NAT64 of 203.0.113.9
		// Issue 22, 6: zones make netip.Prefix.Contains false, so each of
		// these passed the prefixes before; other spellings of IMDS.
		"::1%lo":                  false,
		"fd00:ec2::254%eth0":      false,
		"64:ff9b::a9fe:a9fe%eth0": false,
		"ff02::1%lo":              false,
		"fe80::1%eth0":            false,
		"2600:1f18::5%eth0":       false, // a zone is never a database's
		"::a9fe:a9fe":             false, // IPv4-compatible 169.254.169.254
		"::cb00:7109":             false, // IPv4-compatible, even of a public address
		"64:ff9b:1::a9fe:a9fe":    false, // RFC 8215 local-use NAT64
	} {
		err := Allowed(netip.MustParseAddr(addr))
		if (err == nil) != ok {
			t.Errorf("Allowed(%s) = %v, want allowed=%v", addr, err, ok)
		}
	}
}

// Guard resolves names once and pins them: "localhost" is refused like its
// address, and a pinned endpoint dials nothing else.
func TestGuard(t *testing.T) {
	ctx := context.Background()
	ep, _ := Parse("source", "postgres://u:p@localhost:5432/app")
	if err := ep.Guard(ctx, Allowed); err == nil || !strings.Contains(err.Error(), "not reachable from a remote job") {
		t.Errorf("localhost: %v", err)
	}
	ep, _ = Parse("source", "postgres://u:p@[fd00:ec2::254]:80/app")
	if err := ep.Guard(ctx, Allowed); err == nil {
		t.Error("the IPv6 metadata address was allowed")
	}

	// With everything allowed, the pins are what the tools and pgx use.
	ep, _ = Parse("source", "postgres://u:p@localhost:5432/app")
	if err := ep.Guard(ctx, func(netip.Addr) error { return nil }); err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(ep.ToolConnString(), "hostaddr=") {
		t.Errorf("tools are not pinned: %s", ep.ToolConnString())
	}
	other, err := ep.WithDatabase("other")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := other.config.LookupFunc(ctx, "elsewhere.example.com"); err == nil {
		t.Error("a guarded endpoint resolved a host it did not check")
	}
	if addrs, err := other.config.LookupFunc(ctx, "localhost"); err != nil || len(addrs) == 0 {
		t.Errorf("pinned lookup: %v %v", addrs, err)
	}

	// The dial check stands even if a lookup were bypassed.
	guarded, _ := Parse("source", "postgres://u:p@203.0.113.9:5432/app")
	if err := guarded.Guard(ctx, Allowed); err != nil {
		t.Fatal(err)
	}
	if _, err := guarded.config.DialFunc(ctx, "tcp", "169.254.169.254:80"); err == nil {
		t.Error("dial to the metadata address passed the guard")
	}
	for _, addr := range []string{"[::1%lo]:5432", "[fd00:ec2::254%eth0]:80"} {
		if _, err := guarded.config.DialFunc(ctx, "tcp", addr); err == nil || !strings.Contains(err.Error(), "zone") {
			t.Errorf("dial to %s: %v", addr, err)
		}
	}
	ep, _ = Parse("source", "postgres://u:p@[::1%25lo]:5432/app")
	if err := ep.Guard(ctx, Allowed); err == nil {
		t.Error("a zoned loopback URL passed the guard")
	}
}

// selfSigned is a certificate and its key, PEM-encoded, for pgx to load.
func selfSigned(t *testing.T) (certPEM, keyPEM []byte) {
	t.Helper()
	key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tmpl := &x509.Certificate{SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "u"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(time.Hour), IsCA: true, BasicConstraintsValid: true}
	der, err := x509.CreateCertificate(rand.Reader, tmpl, tmpl, &key.PublicKey, key)
	if err != nil {
		t.Fatal(err)
	}
	k, err := x509.MarshalECPrivateKey(key)
	if err != nil {
		t.Fatal(err)
	}
	return pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: der}), pem.EncodeToMemory(&pem.Block{Type: "EC PRIVATE KEY", Bytes: k})
}
