// Package client is the CLI's client of the job API: every request signed
// with SigV4 (service execute-api) using the default AWS credential chain
// (environment, profiles, SSO), as API Gateway's AWS_IAM authorisation expects.
package client

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"sort"
	"strings"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/service/sts"
	"github.com/aws/smithy-go/logging"
	"github.com/cenkalti/backoff/v5"
	"github.com/google/uuid"

	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/cost"
	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/stackcache"
)

// API is what the CLI asks of the job API; *Client is the real one, and
// command tests swap in their own.
type API interface {
	Endpoint() string
	// AWSRegion is the platform's region.
	AWSRegion() string
	Identity(ctx context.Context) (string, error)
	Submit(ctx context.Context, r *remote.Request) (*remote.Job, error)
	// Quote is what the API would run a request on and its estimate,
	// without creating the job; Price the instance type's hourly price
	// from the Price List API, or the built-in table (with its source).
	Quote(ctx context.Context, r *remote.Request) (*remote.Quote, error)
	Price(ctx context.Context, instanceType string) (float64, string)
	Get(ctx context.Context, id string) (*remote.Job, error)
	List(ctx context.Context, limit int, cursor string) ([]*remote.Job, string, error)
	Logs(ctx context.Context, id, cursor string) (*logs.Page, error)
	Cancel(ctx context.Context, id string) (*remote.Job, error)
	// Platform is the platform's version (empty before v0.5.0).
	Platform(ctx context.Context) (*remote.PlatformInfo, error)
}

var _ API = (*Client)(nil)

// Target names a deployment: an API URL and region, or the stack whose
// outputs replicator setup recorded.
type Target struct {
	APIURL, Region, Stack string
}

// Open resolves a target and returns its client: the URL given, else
// $REPLICATOR_API_URL, else the one setup recorded for the stack (with its
// region, unless one is given).
func Open(ctx context.Context, t Target) (*Client, error) {
	u, region := t.APIURL, t.Region
	if u == "" {
		u = os.Getenv("REPLICATOR_API_URL")
	}
	if u == "" {
		out, err := stackcache.Load(t.Stack)
		if err != nil {
			return nil, err
		}
		u = out.APIURL
		if region == "" {
			region = out.Region
		}
	}
	return New(ctx, u, region)
}

// Client talks to one deployment's API.
type Client struct {
	BaseURL string
	Region  string
	Creds   aws.CredentialsProvider
	HTTP    *http.Client
	signer  *v4.Signer
	awsCfg  aws.Config
}

// New reads the default AWS configuration; region may be "" to use it.
func New(ctx context.Context, apiURL, region string) (*Client, error) {
	if apiURL == "" {
		return nil, errors.New("no API URL: pass --api-url or set REPLICATOR_API_URL (replicator setup prints it)")
	}
	u, err := url.Parse(apiURL)
	if err != nil || u.Scheme == "" || u.Host == "" {
		return nil, fmt.Errorf("invalid API URL %q: expected https://...", apiURL)
	}
	opts := []func(*config.LoadOptions) error{config.WithLogger(logging.Nop{})}
	if region != "" {
		opts = append(opts, config.WithRegion(region))
	}
	cfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("AWS configuration: %w", err)
	}
	if cfg.Region == "" {
		return nil, errors.New("no AWS region: pass --region or set AWS_REGION (the region of your replicator setup)")
	}
	return &Client{BaseURL: strings.TrimRight(apiURL, "/"), Region: cfg.Region, Creds: cfg.Credentials,
		HTTP: &http.Client{Timeout: 30 * time.Second}, signer: v4.NewSigner(), awsCfg: cfg}, nil
}

// Endpoint is the API's URL.
func (c *Client) Endpoint() string { return c.BaseURL }

// AWSRegion is the platform's region.
func (c *Client) AWSRegion() string { return c.Region }

// Quote asks the API what the job would run on and cost (POST /jobs with
// dry_run: nothing is created).
func (c *Client) Quote(ctx context.Context, r *remote.Request) (*remote.Quote, error) {
	var q remote.Quote
	if err := c.do(ctx, http.MethodPost, "/jobs", url.Values{"dry_run": {"true"}}, r, &q); err != nil {
		return nil, err
	}
	return &q, nil
}

// Price is the instance type's hourly price in the platform's region.
func (c *Client) Price(ctx context.Context, instanceType string) (float64, string) {
	return cost.NewPriceList(c.awsCfg).Hourly(ctx, instanceType, c.Region)
}

// Identity is who the requests are signed as.
func (c *Client) Identity(ctx context.Context) (string, error) {
	out, err := sts.NewFromConfig(c.awsCfg).GetCallerIdentity(ctx, &sts.GetCallerIdentityInput{})
	if err != nil {
		return "", &CredentialsError{Err: err}
	}
	return aws.ToString(out.Arn), nil
}

// Error is an API error response: the job API's ({"error": ...}) or API
// Gateway's own ({"message": ...}, e.g. a refused signature).
type Error struct {
	Status  int
	Msg     string            `json:"error"`
	Gateway string            `json:"message"`
	Fields  map[string]string `json:"fields"`
}

func (e *Error) Error() string {
	if len(e.Fields) == 0 {
		return e.Msg
	}
	var parts []string
	for k, v := range e.Fields {
		parts = append(parts, k+": "+v)
	}
	sort.Strings(parts)
	return e.Msg + ": " + strings.Join(parts, "; ")
}

// CredentialsError is AWS credentials that could not be had (none, an
// expired SSO session, a profile that does not exist).
type CredentialsError struct{ Err error }

func (e *CredentialsError) Error() string {
	return fmt.Sprintf("AWS credentials: %v (configure a profile, SSO or AWS_ACCESS_KEY_ID)", e.Err)
}

func (e *CredentialsError) Unwrap() error { return e.Err }

// NetworkError is the API not reached at all.
type NetworkError struct{ Err error }

func (e *NetworkError) Error() string { return fmt.Sprintf("job API unreachable: %v", e.Err) }

func (e *NetworkError) Unwrap() error { return e.Err }

// Retryable says whether trying again may help: the network, and the API's
// side failing (5xx, or 429 when throttled). Refused credentials (401, 403,
// expired tokens) and refused requests are not: retrying would only hide the
// cause.
func Retryable(err error) bool {
	var ae *Error
	if errors.As(err, &ae) {
		return ae.Status >= 500 || ae.Status == http.StatusTooManyRequests
	}
	var ne *NetworkError
	return errors.As(err, &ne) && !errors.Is(err, context.Canceled)
}

func (c *Client) do(ctx context.Context, method, path string, query url.Values, in, out any) error {
	return c.doWith(ctx, method, path, query, nil, in, out)
}

func (c *Client) doWith(ctx context.Context, method, path string, query url.Values, hdr http.Header, in, out any) error {
	var body []byte
	if in != nil {
		var err error
		if body, err = json.Marshal(in); err != nil {
			return err
		}
	}
	u := c.BaseURL + path
	if len(query) > 0 {
		u += "?" + query.Encode()
	}
	req, err := http.NewRequestWithContext(ctx, method, u, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set(remote.CLIVersionHeader, buildinfo.Get().Version)
	for k, v := range hdr {
		req.Header[k] = v
	}
	creds, err := c.Creds.Retrieve(ctx)
	if err != nil {
		return &CredentialsError{Err: err}
	}
	sum := sha256.Sum256(body)
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.Region, time.Now()); err != nil {
		return fmt.Errorf("sign request: %w", err)
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return &NetworkError{Err: err}
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(io.LimitReader(resp.Body, 16<<20))
	if err != nil {
		return fmt.Errorf("job API: %w", err)
	}
	if resp.StatusCode >= 300 {
		e := &Error{Status: resp.StatusCode}
		_ = json.Unmarshal(data, e)
		switch {
		case e.Msg != "":
		case resp.StatusCode == http.StatusForbidden || resp.StatusCode == http.StatusUnauthorized:
			// API Gateway refused the signature: say why, and what to do.
			why := e.Gateway
			if why == "" {
				why = resp.Status
			}
			e.Msg = fmt.Sprintf("the job API refused these AWS credentials: %s (refresh them, e.g. aws sso login; check the profile and that the region is the platform's)", strings.TrimSuffix(why, "."))
		case resp.StatusCode == http.StatusTooManyRequests:
			// API Gateway's stage throttling (setup --api-rate-limit).
			e.Msg = "the job API is throttling requests (429 Too Many Requests: over the stack's rate limit); wait a moment and try again, or raise it with replicator setup --api-rate-limit"
		case e.Gateway != "":
			e.Msg = fmt.Sprintf("job API answered %s: %s", resp.Status, e.Gateway)
		default:
			e.Msg = fmt.Sprintf("job API answered %s", resp.Status)
		}
		return e
	}
	if out != nil {
		if err := json.Unmarshal(data, out); err != nil {
			return fmt.Errorf("job API: unreadable answer: %w", err)
		}
	}
	return nil
}

// Submit creates a job under a new Idempotency-Key, trying again (with the
// same key) while the API cannot be reached or fails on its side: a
// submission that did reach it yields its job, never a second one.
func (c *Client) Submit(ctx context.Context, r *remote.Request) (*remote.Job, error) {
	key := uuid.NewString()
	return backoff.Retry(ctx, func() (*remote.Job, error) {
		j, err := c.SubmitWithKey(ctx, r, key)
		var ae *Error
		var ne *NetworkError
		switch {
		case errors.As(err, &ne) && ctx.Err() == nil, errors.As(err, &ae) && ae.Status >= 500:
			return nil, err
		case err != nil:
			return nil, backoff.Permanent(err)
		}
		return j, nil
	}, backoff.WithBackOff(backoff.NewExponentialBackOff()), backoff.WithMaxTries(SubmitTries))
}

// SubmitTries bounds Submit's attempts.
var SubmitTries uint = 4

// SubmitWithKey creates a job once, under the Idempotency-Key key.
func (c *Client) SubmitWithKey(ctx context.Context, r *remote.Request, key string) (*remote.Job, error) {
	var j remote.Job
	return &j, c.doWith(ctx, http.MethodPost, "/jobs", nil, http.Header{"Idempotency-Key": {key}}, r, &j)
}

// Platform reads the platform's version: an empty version, without error,
// from a platform older than v0.5.0 (it has no such route).
func (c *Client) Platform(ctx context.Context) (*remote.PlatformInfo, error) {
	var p remote.PlatformInfo
	err := c.do(ctx, http.MethodGet, "/version", nil, nil, &p)
	var ae *Error
	if errors.As(err, &ae) && ae.Status == http.StatusNotFound {
		return &remote.PlatformInfo{}, nil
	}
	return &p, err
}

// Get reads a job.
func (c *Client) Get(ctx context.Context, id string) (*remote.Job, error) {
	var j remote.Job
	return &j, c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id), nil, nil, &j)
}

// List reads a page of the caller's jobs, newest first.
func (c *Client) List(ctx context.Context, limit int, cursor string) ([]*remote.Job, string, error) {
	q := url.Values{"limit": {fmt.Sprint(limit)}}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var out struct {
		Jobs []*remote.Job `json:"jobs"`
		Next string        `json:"next_cursor"`
	}
	err := c.do(ctx, http.MethodGet, "/jobs", q, nil, &out)
	return out.Jobs, out.Next, err
}

// Logs reads the job's log lines after cursor.
func (c *Client) Logs(ctx context.Context, id, cursor string) (*logs.Page, error) {
	q := url.Values{}
	if cursor != "" {
		q.Set("cursor", cursor)
	}
	var p logs.Page
	return &p, c.do(ctx, http.MethodGet, "/jobs/"+url.PathEscape(id)+"/logs", q, nil, &p)
}

// Cancel asks the job to stop.
func (c *Client) Cancel(ctx context.Context, id string) (*remote.Job, error) {
	var j remote.Job
	return &j, c.do(ctx, http.MethodPost, "/jobs/"+url.PathEscape(id)+"/cancel", nil, nil, &j)
}

// Raw sends a signed request with a literal body and returns the response and
// its body (for tests of the API's contract).
func (c *Client) Raw(ctx context.Context, method, path, body string) (*http.Response, string, error) {
	req, err := http.NewRequestWithContext(ctx, method, c.BaseURL+path, strings.NewReader(body))
	if err != nil {
		return nil, "", err
	}
	creds, err := c.Creds.Retrieve(ctx)
	if err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256([]byte(body))
	if err := c.signer.SignHTTP(ctx, creds, req, hex.EncodeToString(sum[:]), "execute-api", c.Region, time.Now()); err != nil {
		return nil, "", err
	}
	resp, err := c.HTTP.Do(req)
	if err != nil {
		return nil, "", err
	}
	defer resp.Body.Close()
	data, err := io.ReadAll(resp.Body)
	return resp, string(data), err
}
