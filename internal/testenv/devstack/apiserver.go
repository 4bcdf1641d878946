package devstack

import (
	"crypto/hmac"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"regexp"
	"sort"
	"strconv"
	"strings"
	"sync"
	"time"

	"github.com/aws/aws-lambda-go/events"

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
	{"GET", regexp.MustCompile(`^/version$`), "GET /version"},
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

// ClockSkew is how far a signature's time may be from the server's: API
// Gateway refuses a request signed more than 5 minutes before or after.
const ClockSkew = 5 * time.Minute

// VerifySigV4 checks a request's signature the way API Gateway's AWS_IAM
// authoriser does: well-formed header, known key, scope (date, region, service
// execute-api), time within ClockSkew, and the signature itself, recomputed
// from the canonical request over exactly the headers the client signed (so
// that any correct signer passes: the AWS SDKs, curl --aws-sigv4, awscurl).
// It returns the caller's ARN.
func VerifySigV4(r *http.Request, body []byte, region string) (string, error) {
	auth := r.Header.Get("Authorization")
	m := authRE.FindStringSubmatch(auth)
	if m == nil {
		return "", errors.New("missing or malformed SigV4 Authorization header")
	}
	akid, day, reg, service, signedList, signature := m[1], m[2], m[3], m[4], m[5], m[6]
	signed := strings.Split(signedList, ";")
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
	amzDate := r.Header.Get("X-Amz-Date")
	at, err := time.Parse("20060102T150405Z", amzDate)
	if err != nil || at.Format("20060102") != day {
		return "", errors.New("missing or inconsistent X-Amz-Date")
	}
	if d := time.Since(at); d > ClockSkew || d < -ClockSkew {
		return "", fmt.Errorf("signature expired: signed at %s, more than %s from the server's time", amzDate, ClockSkew)
	}
	if !contains(signed, "host") || !contains(signed, "x-amz-date") || !sort.StringsAreSorted(signed) {
		return "", errors.New("host and x-amz-date must be signed, and SignedHeaders sorted")
	}
	sum := sha256.Sum256(body)
	payload := hex.EncodeToString(sum[:])
	if h := r.Header.Get("X-Amz-Content-Sha256"); h != "" && h != payload {
		return "", errors.New("x-amz-content-sha256 does not match the body")
	}
	var headers strings.Builder
	for _, h := range signed {
		v := r.Header.Values(h)
		switch {
		case h == "host":
			v = []string{r.Host}
		case h == "content-length" && len(v) == 0 && r.ContentLength >= 0:
			v = []string{strconv.FormatInt(r.ContentLength, 10)} // net/http keeps it apart
		}
		if len(v) == 0 {
			return "", fmt.Errorf("signed header %s is missing", h)
		}
		for i := range v {
			v[i] = strings.Join(strings.Fields(v[i]), " ")
		}
		fmt.Fprintf(&headers, "%s:%s\n", h, strings.Join(v, ","))
	}
	canonical := strings.Join([]string{r.Method, canonicalPath(r.URL), canonicalQuery(r.URL.RawQuery), headers.String(), signedList, payload}, "\n")
	scope := day + "/" + reg + "/" + service + "/aws4_request"
	digest := sha256.Sum256([]byte(canonical))
	toSign := "AWS4-HMAC-SHA256\n" + amzDate + "\n" + scope + "\n" + hex.EncodeToString(digest[:])
	key := []byte("AWS4" + user.SecretKey)
	for _, part := range []string{day, reg, service, "aws4_request"} {
		key = hmacSHA256(key, part)
	}
	want := hex.EncodeToString(hmacSHA256(key, toSign))
	if !hmac.Equal([]byte(want), []byte(signature)) {
		return "", errors.New("the request signature does not match")
	}
	return user.ARN, nil
}

func hmacSHA256(key []byte, data string) []byte {
	h := hmac.New(sha256.New, key)
	h.Write([]byte(data))
	return h.Sum(nil)
}

// canonicalPath is the path with each segment URI-encoded (RFC 3986
// unreserved characters kept), "/" for none.
func canonicalPath(u *url.URL) string {
	p := u.EscapedPath()
	if p == "" {
		return "/"
	}
	segs := strings.Split(p, "/")
	for i, s := range segs {
		if un, err := url.PathUnescape(s); err == nil {
			segs[i] = uriEncode(un)
		}
	}
	return strings.Join(segs, "/")
}

// canonicalQuery sorts the parameters by name, then value, URI-encoded.
// A "+" is itself, not a space (RFC 3986, as SigV4 signers encode it).
func canonicalQuery(raw string) string {
	var pairs []string
	for _, p := range strings.Split(raw, "&") {
		if p == "" {
			continue
		}
		k, v, _ := strings.Cut(p, "=")
		if uk, err := url.PathUnescape(k); err == nil {
			k = uk
		}
		if uv, err := url.PathUnescape(v); err == nil {
			v = uv
		}
		pairs = append(pairs, uriEncode(k)+"="+uriEncode(v))
	}
	sort.Strings(pairs)
	return strings.Join(pairs, "&")
}

// uriEncode is SigV4's encoding: every byte but A-Z a-z 0-9 - _ . ~ as %XX.
func uriEncode(s string) string {
	var b strings.Builder
	for i := 0; i < len(s); i++ {
		c := s[i]
		if 'A' <= c && c <= 'Z' || 'a' <= c && c <= 'z' || '0' <= c && c <= '9' || c == '-' || c == '_' || c == '.' || c == '~' {
			b.WriteByte(c)
		} else {
			fmt.Fprintf(&b, "%%%02X", c)
		}
	}
	return b.String()
}

func contains(list []string, s string) bool {
	for _, x := range list {
		if x == s {
			return true
		}
	}
	return false
}
