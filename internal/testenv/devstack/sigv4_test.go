package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"io"
	"net/http"
	"net/http/httptest"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
)

func signed(t *testing.T, user User, body string, at time.Time, service string) *http.Request {
	t.Helper()
	req, _ := http.NewRequest("POST", "http://127.0.0.1:9/jobs?x=1", strings.NewReader(body))
	sum := sha256.Sum256([]byte(body))
	if err := v4.NewSigner().SignHTTP(context.Background(), aws.Credentials{AccessKeyID: user.AccessKey, SecretAccessKey: user.SecretKey},
		req, hex.EncodeToString(sum[:]), service, Region, at); err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Accept-Encoding", "gzip") // added after signing, as Go's client does
	return req
}

func TestVerifySigV4(t *testing.T) {
	alice := Users["alice"]
	body := `{"command":"init"}`
	if arn, err := VerifySigV4(signed(t, alice, body, time.Now(), "execute-api"), []byte(body), Region); err != nil || arn != alice.ARN {
		t.Fatalf("valid request: %q %v", arn, err)
	}
	cases := map[string]struct {
		req  *http.Request
		body string
		want string
	}{
		"tampered body": {signed(t, alice, body, time.Now(), "execute-api"), `{"command":"sync"}`, "does not match"},
		"unknown key":   {signed(t, User{AccessKey: "AKIAUNKNOWN000000000", SecretKey: "x"}, body, time.Now(), "execute-api"), body, "invalid"},
		"wrong secret":  {signed(t, User{AccessKey: alice.AccessKey, SecretKey: "guess"}, body, time.Now(), "execute-api"), body, "does not match"},
		"stale":         {signed(t, alice, body, time.Now().Add(-time.Hour), "execute-api"), body, "expired"},
		"other service": {signed(t, alice, body, time.Now(), "s3"), body, "execute-api"},
		"no signature":  {func() *http.Request { r, _ := http.NewRequest("GET", "http://h/jobs", nil); return r }(), "", "missing"},
	}
	for name, c := range cases {
		if _, err := VerifySigV4(c.req, []byte(c.body), Region); err == nil || !strings.Contains(err.Error(), c.want) {
			t.Errorf("%s: %v, want %q", name, err, c.want)
		}
	}
}

// API Gateway allows 5 minutes of clock skew, either way, and no more.
func TestSigV4ClockSkew(t *testing.T) {
	alice := Users["alice"]
	for skew, ok := range map[time.Duration]bool{-4 * time.Minute: true, 4 * time.Minute: true, -6 * time.Minute: false, 6 * time.Minute: false} {
		_, err := VerifySigV4(signed(t, alice, "{}", time.Now().Add(skew), "execute-api"), []byte("{}"), Region)
		if (err == nil) != ok {
			t.Errorf("signed %s off: %v", skew, err)
		}
		if err != nil && !strings.Contains(err.Error(), "signature expired") {
			t.Errorf("signed %s off: %v", skew, err)
		}
	}
}

// Any correct signer passes, not only the Go SDK's: curl --aws-sigv4 signs
// another set of headers, which the check must use as they are.
func TestSigV4SignedByCurl(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		arn, err := VerifySigV4(r, body, Region)
		if err != nil {
			http.Error(w, err.Error(), http.StatusForbidden)
			return
		}
		io.WriteString(w, arn)
	}))
	defer srv.Close()
	alice := Users["alice"]
	for _, args := range [][]string{
		{"-X", "POST", "-H", "Content-Type: application/json", "-H", "Idempotency-Key: curl-key-0001", "-d", `{"command": "init"}`, srv.URL + "/jobs"},
		// curl 7.88 signs the query as written: written canonically
		// (sorted, encoded), it is what API Gateway checks too.
		{srv.URL + "/jobs?cursor=eyJhIjoiYiJ9&limit=5"},
		{srv.URL + "/jobs/j-aaaaaaaaaaaaaaaa/logs"},
	} {
		cmd := exec.Command("curl", append([]string{"-sS", "--aws-sigv4", "aws:amz:" + Region + ":execute-api", "--user", alice.AccessKey + ":" + alice.SecretKey}, args...)...)
		out, err := cmd.CombinedOutput()
		if err != nil || string(out) != alice.ARN {
			t.Errorf("curl %v: %v %s", args, err, out)
		}
		// The same request with a wrong secret is refused.
		cmd = exec.Command("curl", append([]string{"-sS", "--aws-sigv4", "aws:amz:" + Region + ":execute-api", "--user", alice.AccessKey + ":wrong"}, args...)...)
		if out, _ := cmd.CombinedOutput(); !strings.Contains(string(out), "does not match") {
			t.Errorf("curl with a wrong secret %v: %s", args, out)
		}
	}
}
