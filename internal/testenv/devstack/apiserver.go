package devstack

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"regexp"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"

	"github.com/replicatorhq/replicator/internal/remote/lambdafn"
	"github.com/replicatorhq/replicator/internal/testenv/loopback"
)

// APIServer serves the Lambda handler over HTTP as API Gateway would: every
// request must carry a valid SigV4 signature (service execute-api) of a known
// user, whose ARN becomes the caller.
type APIServer struct {
	URL     string
	addr    string
	handler *lambdafn.Handler

	mu  sync.Mutex
	srv *http.Server
}

// StartAPI listens on a free loopback port.
func StartAPI(h *lambdafn.Handler) (*APIServer, error) {
	port, err := loopback.FreePort()
	if err != nil {
		return nil, err
	}
	a := &APIServer{addr: fmt.Sprintf("127.0.0.1:%d", port), handler: h}
	a.URL = "http://" + a.addr
	return a, a.Start()
}

// Start (re)opens the listener on the same address.
func (a *APIServer) Start() error {
	a.mu.Lock()
	defer a.mu.Unlock()
	l, err := net.Listen("tcp", a.addr)
	if err != nil {
		return err
	}
	a.srv = &http.Server{Handler: a, ReadHeaderTimeout: 10 * time.Second}
	go a.srv.Serve(l)
	return nil
}

// Stop closes the listener (an outage, for tests).
func (a *APIServer) Stop() {
	a.mu.Lock()
	defer a.mu.Unlock()
	if a.srv != nil {
		a.srv.Close()
		a.srv = nil
	}
}

var routes = []struct {
	method string
	re     *regexp.Regexp
	key    string
}{
	{"POST", regexp.MustCompile(`^/jobs$`), "POST /jobs"},
	{"GET", regexp.MustCompile(`^/jobs$`), "GET /jobs"},
	{"GET", regexp.MustCompile(`^/jobs/([^/]+)$`), "GET /jobs/{id}"},
	{"GET", regexp.MustCompile(`^/jobs/([^/]+)/logs$`), "GET /jobs/{id}/logs"},
	{"POST", regexp.MustCompile(`^/jobs/([^/]+)/cancel$`), "POST /jobs/{id}/cancel"},
}

func (a *APIServer) ServeHTTP(w http.ResponseWriter, r *http.Request) {
	body, err := io.ReadAll(io.LimitReader(r.Body, 10<<20))
	if err != nil {
		http.Error(w, `{"message":"bad request"}`, http.StatusBadRequest)
		return
	}
	arn, err := VerifySigV4(r, body, Region)
	if err != nil {
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(http.StatusForbidden)
		fmt.Fprintf(w, `{"message":%q}`, err.Error())
		return
	}
	req := events.APIGatewayV2HTTPRequest{
		Version: "2.0", RawPath: r.URL.Path, RawQueryString: r.URL.RawQuery, Body: string(body),
		Headers: map[string]string{}, QueryStringParameters: map[string]string{}, PathParameters: map[string]string{},
		RequestContext: events.APIGatewayV2HTTPRequestContext{
			RequestID: fmt.Sprintf("local-%d", time.Now().UnixNano()),
			HTTP:      events.APIGatewayV2HTTPRequestContextHTTPDescription{Method: r.Method, Path: r.URL.Path},
			Authorizer: &events.APIGatewayV2HTTPRequestContextAuthorizerDescription{
				IAM: &events.APIGatewayV2HTTPRequestContextAuthorizerIAMDescription{UserARN: arn, AccountID: "123456789012"},
			},
		},
	}
	for k, v := range r.URL.Query() {
		req.QueryStringParameters[k] = v[0]
	}
	for k := range r.Header {
		req.Headers[strings.ToLower(k)] = r.Header.Get(k)
	}
	for _, rt := range routes {
		if m := rt.re.FindStringSubmatch(r.URL.Path); m != nil && rt.method == r.Method {
			req.RouteKey = rt.key
			if len(m) > 1 {
				req.PathParameters["id"] = m[1]
			}
		}
	}
	if req.RouteKey == "" {
		w.WriteHeader(http.StatusNotFound)
		fmt.Fprint(w, `{"message":"Not Found"}`)
		return
	}
	raw, _ := json.Marshal(req)
	out, err := a.handler.Invoke(r.Context(), raw)
	if err != nil {
		w.WriteHeader(http.StatusInternalServerError)
		fmt.Fprint(w, `{"message":"Internal Server Error"}`)
		return
	}
	var resp events.APIGatewayV2HTTPResponse
	if err := json.Unmarshal(out, &resp); err != nil {
		w.WriteHeader(http.StatusBadGateway)
		return
	}
	for k, v := range resp.Headers {
		w.Header().Set(k, v)
	}
	w.WriteHeader(resp.StatusCode)
	io.WriteString(w, resp.Body)
}

var authRE = regexp.MustCompile(`^AWS4-HMAC-SHA256 Credential=([^/]+)/(\d{8})/([^/]+)/([^/]+)/aws4_request, ?SignedHeaders=([a-z0-9;-]+), ?Signature=([0-9a-f]{64})$`)

// VerifySigV4 checks a request's signature the way API Gateway's AWS_IAM
// authoriser does: well-formed header, known key, scope (date, region, service
// execute-api), time within 15 minutes, and the signature itself, recomputed
// over the headers the client signed. It returns the caller's ARN.
func VerifySigV4(r *http.Request, body []byte, region string) (string, error) {
	auth := r.Header.Get("Authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return "", errors.New("missing or malformed SigV4 Authorization header")
	}
	akid, day, reg, service, signed := m[1], m[2], m[3], m[4], strings.Split(m[5], ";")
	var user *User
	for _, u := range Users {
		if u.AccessKey == akid {
			user = &u
		}
	}
	if user == nil {
		return "", errors.New("The security token included in the request is invalid.")
	}
	if user.Expired {
		return "", errors.New("The security token included in the request is expired")
	}
	if service != "execute-api" || reg != region {
		return "", fmt.Errorf("credential scope %s/%s: expected %s/execute-api", reg, service, region)
	}
	at, err := time.Parse("20060102T150405Z", r.Header.Get("X-Amz-Date"))
	if err != nil || at.Format("20060102") != day {
		return "", errors.New("missing or inconsistent X-Amz-Date")
	}
	if d := time.Since(at); d > 15*time.Minute || d < -15*time.Minute {
		return "", errors.New("signature expired")
	}
	if !contains(signed, "host") || !contains(signed, "x-amz-date") {
		return "", errors.New("host and x-amz-date must be signed")
	}
	check, err := http.NewRequest(r.Method, "http://"+r.Host+r.URL.RequestURI(), strings.NewReader(string(body)))
	if err != nil {
		return "", err
	}
	check.Host = r.Host
	for _, h := range signed {
		if h != "host" {
			check.Header[http.CanonicalHeaderKey(h)] = r.Header.Values(h)
		}
	}
	sum := sha256.Sum256(body)
	creds := aws.Credentials{AccessKeyID: user.AccessKey, SecretAccessKey: user.SecretKey}
	if err := v4.NewSigner().SignHTTP(context.Background(), creds, check, hex.EncodeToString(sum[:]), service, reg, at); err != nil {
		return "", err
	}
	if check.Header.Get("Authorization") != auth {
		return "", errors.New("the request signature does not match")
	}
	return user.ARN, nil
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
