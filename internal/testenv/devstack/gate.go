package devstack

import (
	"context"
	"errors"
	"fmt"
	"log"
	"net"
	"net/http"
	"net/http/httputil"
	"net/url"
	"strings"
	"sync"
	"time"
)

// Gate stands in front of moto for every client of an emulated platform and
// runs DynamoDB's writes one at a time. moto checks a transaction's
// conditions and applies its writes without isolation from other requests,
// so two racing submissions could both pass a slot counter's cap that
// DynamoDB lets only one pass; tests of the caps would prove nothing. Tests
// may also hold a call back (Delay) to stage a slow AWS.
type Gate struct {
	URL string
	srv *http.Server

	writes sync.Mutex
	mu     sync.Mutex
	delays map[string]time.Duration
	fails  map[string]string // X-Amz-Target -> error code
	// parentVersion is the version of Amazon Linux 2023 the stand-in
	// Image Builder answers GetImage with (SetParentImageVersion).
	parentVersion string
}

// dynamoWrites are the DynamoDB operations that change items.
var dynamoWrites = map[string]bool{"PutItem": true, "UpdateItem": true, "DeleteItem": true, "TransactWriteItems": true, "BatchWriteItem": true}

// StartGate forwards to target.
func StartGate(target string) (*Gate, error) {
	u, err := url.Parse(target)
	if err != nil {
		return nil, err
	}
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	proxy := httputil.NewSingleHostReverseProxy(u)
	proxy.ErrorHandler = func(w http.ResponseWriter, r *http.Request, err error) {
		// A caller that went away (the demo or a test shutting down) is not
		// news; anything else is.
		if !errors.Is(err, context.Canceled) {
			log.Printf("devstack gate: %s %s: %v", r.Method, r.URL.Path, err)
		}
		w.WriteHeader(http.StatusBadGateway)
	}
	g := &Gate{URL: "http://" + ln.Addr().String(), delays: map[string]time.Duration{}, fails: map[string]string{}, parentVersion: "2026.11.20"}
	g.srv = &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path == "/GetImage" {
			g.getImage(w, r)
			return
		}
		op := r.Header.Get("X-Amz-Target") // e.g. DynamoDB_20120810.UpdateItem, secretsmanager.CreateSecret
		g.mu.Lock()
		d, code := g.delays[op], g.fails[op]
		g.mu.Unlock()
		if d > 0 {
			time.Sleep(d)
		}
		if code != "" {
			// As AWS's JSON protocols answer an error: its code, and a
			// message with the details AWS puts there.
			w.Header().Set("Content-Type", "application/x-amz-json-1.1")
			w.Header().Set("X-Amzn-RequestId", "gate-request-0001")
			w.WriteHeader(http.StatusBadRequest)
			fmt.Fprintf(w, `{"__type":%q,"message":"User: arn:aws:sts::%s:assumed-role/replicator-worker/i-0gate is not authorized to perform: %s"}`, code, Account, op)
			return
		}
		if service, action, _ := strings.Cut(op, "."); strings.HasPrefix(service, "DynamoDB_") && dynamoWrites[action] {
			g.writes.Lock()
			defer g.writes.Unlock()
		}
		proxy.ServeHTTP(w, r)
	})}
	go g.srv.Serve(ln)
	return g, nil
}

// getImage stands in for Image Builder's GetImage (REST-JSON), which moto
// does not have: Amazon's parent image at its current version.
func (g *Gate) getImage(w http.ResponseWriter, r *http.Request) {
	g.mu.Lock()
	version := g.parentVersion
	g.mu.Unlock()
	arn := r.URL.Query().Get("imageBuildVersionArn")
	base, _, ok := strings.Cut(arn, "/x.x.x")
	w.Header().Set("Content-Type", "application/json")
	if !ok {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprintf(w, `{"message":"the stand-in knows only x.x.x ARNs: %s"}`, arn)
		return
	}
	fmt.Fprintf(w, `{"image":{"arn":%q,"version":%q,"name":"Amazon Linux 2023 ARM64"}}`, base+"/"+version+"/1", version)
}

// SetParentImageVersion makes Amazon release a new parent image.
func (g *Gate) SetParentImageVersion(v string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.parentVersion = v
}

// Delay holds every call of op (an X-Amz-Target, such as
// "secretsmanager.CreateSecret") for d; 0 lifts it.
func (g *Gate) Delay(op string, d time.Duration) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.delays[op] = d
}

// Fail answers every call of op with AWS error code (0 lifts it), as AWS
// answers a call IAM denies.
func (g *Gate) Fail(op, code string) {
	g.mu.Lock()
	defer g.mu.Unlock()
	g.fails[op] = code
}

// Stop closes the gate.
func (g *Gate) Stop() {
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	_ = g.srv.Shutdown(ctx)
}
