package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"net/http"
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
