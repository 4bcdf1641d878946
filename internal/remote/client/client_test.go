package client

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"

	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/credentials"

	"github.com/replicatorhq/replicator/internal/remote"
)

// Submit always names its submission with an Idempotency-Key and tries
// again under the same key when the API fails on its side: the API then
// answers the retry with the job the first attempt made, never a second job.
func TestSubmitRetriesUnderOneKey(t *testing.T) {
	var mu sync.Mutex
	var keys []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		mu.Lock()
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		n := len(keys)
		mu.Unlock()
		if n < 3 {
			http.Error(w, `{"error":"internal error"}`, http.StatusBadGateway)
			return
		}
		w.WriteHeader(http.StatusCreated)
		json.NewEncoder(w).Encode(remote.Job{ID: "j-aaaaaaaaaaaaaaaa"})
	}))
	defer srv.Close()
	c := &Client{BaseURL: srv.URL, Region: "us-east-1", HTTP: srv.Client(), signer: v4.NewSigner(),
		Creds: credentials.NewStaticCredentialsProvider("AKIDEXAMPLE", "secret", "")}
	j, err := c.Submit(context.Background(), &remote.Request{Command: "init"})
	if err != nil || j.ID != "j-aaaaaaaaaaaaaaaa" {
		t.Fatalf("%v %+v", err, j)
	}
	if len(keys) != 3 || keys[0] == "" || keys[0] != keys[1] || keys[1] != keys[2] {
		t.Errorf("keys sent: %q", keys)
	}
	// A definite answer (400, 429) is not retried.
	keys = nil
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		keys = append(keys, r.Header.Get("Idempotency-Key"))
		http.Error(w, `{"error":"too many jobs"}`, http.StatusTooManyRequests)
	})
	if _, err := c.Submit(context.Background(), &remote.Request{Command: "init"}); err == nil || len(keys) != 1 {
		t.Errorf("429: %v after %d attempts", err, len(keys))
	}
	// API Gateway's own throttling (the stage's rate limit) is explained.
	srv.Config.Handler = http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Error(w, `{"message":"Too Many Requests"}`, http.StatusTooManyRequests)
	})
	if _, err := c.Get(context.Background(), "j-aaaaaaaaaaaaaaaa"); err == nil || !strings.Contains(err.Error(), "throttling requests") ||
		!strings.Contains(err.Error(), "replicator setup --api-rate-limit") {
		t.Errorf("throttled: %v", err)
	}
}
