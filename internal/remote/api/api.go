// Package api is the job API behind API Gateway (HTTP API, payload 2.0, every
// route authorised with AWS_IAM): submit, read, list, read logs of, and cancel
// jobs. The caller's IAM ARN, from the request context, owns the job; a caller
// sees and cancels only its own jobs.
package api

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"regexp"
	"strconv"
	"strings"

	"github.com/aws/aws-lambda-go/events"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"

	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/cost"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/lifecycle"
	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
)

// MaxBody caps a request body: room for a secret as large as Secrets
// Manager takes (remote.MaxSecretBytes) and the rest of a job.
const MaxBody = 96 << 10

// API serves the routes.
type API struct {
	Config  awsenv.Config
	Store   *store.Store
	Secrets *secrets.Store
	Life    *lifecycle.Lifecycle
	Logs    *cloudwatchlogs.Client
	Log     *slog.Logger
}

type response = events.APIGatewayV2HTTPResponse

// errorBody is every error response.
type errorBody struct {
	Error  string            `json:"error"`
	Fields map[string]string `json:"fields,omitempty"`
}

func reply(status int, body any) response {
	b, _ := json.Marshal(body)
	return response{StatusCode: status, Body: string(b), Headers: map[string]string{"Content-Type": "application/json"}}
}

func fail(status int, format string, args ...any) response {
	return reply(status, errorBody{Error: fmt.Sprintf(format, args...)})
}

// Handle routes one request. Errors of AWS services are logged and answered 500
// without detail; nothing logged holds a password (requests are not logged).
func (a *API) Handle(ctx context.Context, req events.APIGatewayV2HTTPRequest) (response, error) {
	caller := ""
	if iam := req.RequestContext.Authorizer; iam != nil && iam.IAM != nil {
		caller = remote.OwnerOf(iam.IAM.UserARN)
	}
	if caller == "" {
		return fail(http.StatusUnauthorized, "no IAM caller: every route needs SigV4-signed requests"), nil
	}
	id := req.PathParameters["id"]
	if strings.Contains(req.RouteKey, "{id}") && !remote.ValidID(id) {
		// Echoed in part only: an answer is no amplifier of what was sent.
		return fail(http.StatusBadRequest, "invalid job id %q: expected j- and 16 of a-z and 2-7", redact.Truncate(id, 24)), nil
	}
	var resp response
	var err error
	switch req.RouteKey {
	case "POST /jobs":
		resp, err = a.submit(ctx, caller, req)
	case "GET /jobs":
		resp, err = a.list(ctx, caller, req)
	case "GET /jobs/{id}":
		resp, err = a.get(ctx, caller, id)
	case "GET /jobs/{id}/logs":
		resp, err = a.logs(ctx, caller, id, req)
	case "POST /jobs/{id}/cancel":
		resp, err = a.cancel(ctx, caller, id)
	case "GET /version":
		resp = reply(http.StatusOK, remote.PlatformInfo{Version: a.Config.Version})
	default:
		return fail(http.StatusNotFound, "no route %s", req.RouteKey), nil
	}
	if err != nil {
		a.Log.Error("request failed", "route", req.RouteKey, "job", id, "err", err)
		return fail(http.StatusInternalServerError, "internal error; see the API's logs (request %s)", req.RequestContext.RequestID), nil
	}
	return resp, nil
}

func (a *API) submit(ctx context.Context, caller string, req events.APIGatewayV2HTTPRequest) (response, error) {
	// A submission that has begun finishes whatever the caller does: a job
	// stored without its secret would hold a slot for nothing.
	ctx = context.WithoutCancel(ctx)
	body := req.Body
	if req.IsBase64Encoded {
		return fail(http.StatusBadRequest, "expected a JSON body"), nil
	}
	if len(body) > MaxBody {
		return fail(http.StatusRequestEntityTooLarge, "body of %d bytes is over the %d-byte limit", len(body), MaxBody), nil
	}
	idem, bad := idempotency(req)
	if bad != nil {
		return *bad, nil
	}
	dec := json.NewDecoder(bytes.NewReader([]byte(body)))
	dec.DisallowUnknownFields()
	var r remote.Request
	if err := dec.Decode(&r); err != nil {
		return fail(http.StatusBadRequest, "invalid JSON: %s", jsonError(err)), nil
	}
	if dec.More() {
		return fail(http.StatusBadRequest, "invalid JSON: trailing data after the object"), nil
	}
	src, dst, err := r.Validate(a.Config.Limits())
	var fe remote.FieldErrors
	if errors.As(err, &fe) {
		return reply(http.StatusBadRequest, errorBody{Error: "invalid job", Fields: fe}), nil
	}
	if r.Options.Notify != nil && *r.Options.Notify && a.Config.NotifyTargets == 0 {
		return reply(http.StatusBadRequest, errorBody{Error: "invalid job", Fields: remote.FieldErrors{
			"options.notify": "this stack has no notification targets: run replicator setup with --notify-email or --notify-webhook, or drop --notify"}}), nil
	}
	if r.Options.TimeLimitMinutes == 0 {
		r.Options.TimeLimitMinutes = min(a.Config.DefaultTimeLimitMinutes, a.Config.MaxTimeLimitMinutes)
	}
	instanceType := r.Options.InstanceType
	if instanceType == "" {
		instanceType = remote.InstanceTypeFor(a.Config.DefaultInstanceType, a.Config.MaxInstanceSize, r.Options.SourceBytes)
	}
	// The estimate uses the built-in price table: the Lambda does not call
	// the Price List API (the CLI does, with the caller's credentials).
	est := cost.Make(cost.Input{InstanceType: instanceType, Region: a.Config.Region, Bytes: r.Options.SourceBytes,
		SourceHost: src.Host(), TargetHost: dst.Host()})
	if req.QueryStringParameters["dry_run"] == "true" {
		return reply(http.StatusOK, remote.Quote{InstanceType: instanceType, TimeLimitMinutes: r.Options.TimeLimitMinutes, Estimate: est}), nil
	}
	if idem == nil {
		return fail(http.StatusBadRequest, "missing %s header: every submission names itself (a UUID, say), so that a retried or replayed request gets the same job instead of a second one", IdempotencyHeader), nil
	}
	if bad := checkMaxCost(r.Options.MaxCostUSD, est); bad != "" {
		return reply(http.StatusBadRequest, errorBody{Error: "invalid job", Fields: remote.FieldErrors{"options.max_cost_usd": bad}}), nil
	}
	now := a.Store.Now().UTC()
	job := &remote.Job{
		ID: remote.NewID(), Owner: caller, Command: r.Command, Status: remote.Queued,
		Source: src.String(), Target: dst.String(), Filters: r.Filters, Options: r.Options,
		InstanceType: instanceType, CreatedAt: now, UpdatedAt: now, HourlyUSD: est.HourlyUSD,
		CLIVersion: redact.Truncate(req.Headers[strings.ToLower(remote.CLIVersionHeader)], 64), PlatformVersion: a.Config.Version,
	}
	err = a.Store.Create(ctx, job, store.Caps{Active: a.Config.MaxActiveJobs, PerOwner: a.Config.MaxJobsPerOwner}, idem)
	var dup *store.Duplicate
	switch {
	case errors.As(err, &dup) && dup.SameBody:
		a.Log.Info("replayed submission", "job", dup.JobID, "owner", caller)
		return a.get(ctx, caller, dup.JobID)
	case errors.As(err, &dup):
		return fail(http.StatusConflict, "Idempotency-Key %q was used for job %s with another request: use a new key for a new job", idem.Key, dup.JobID), nil
	case errors.Is(err, store.ErrCapacity):
		return fail(http.StatusTooManyRequests, "%d jobs are already queued or running, the limit of this platform: wait for one to finish or cancel one (replicator jobs list)", a.Config.MaxActiveJobs), nil
	case errors.Is(err, store.ErrOwnerCapacity):
		return fail(http.StatusTooManyRequests, "you have %d jobs queued or running, the most one caller may (replicator setup --max-jobs-per-owner): wait for one to finish or cancel one (replicator jobs list)", a.Config.MaxJobsPerOwner), nil
	case err != nil:
		return response{}, err
	}
	return a.launch(ctx, job, r.Secret())
}

// launch stores a created job's secret and starts its worker. A failure
// fails the job with a readable cause (AWS's own text goes to the log).
func (a *API) launch(ctx context.Context, job *remote.Job, secret remote.Secret) (response, error) {
	arn, err := a.Secrets.Create(ctx, job.ID, secret)
	if err != nil {
		a.Log.Error("store the job's secret", "job", job.ID, "err", err)
		_, _ = a.Life.End(ctx, job, lifecycle.End{To: remote.Failed, From: []remote.Status{remote.Queued}, Error: "the job's connection URLs could not be stored; try again"})
		return response{}, err
	}
	job.SecretARN = arn
	if _, err := a.Store.Transition(ctx, job.ID, store.Change{From: []remote.Status{remote.Queued}, Set: map[string]any{"secret_arn": arn}}); err != nil {
		return response{}, err
	}
	j, err := a.Life.Launch(ctx, job, nil)
	if err != nil {
		if lifecycle.IsConflict(err) {
			return response{}, err
		}
		a.Log.Error("launch worker", "job", job.ID, "err", err)
		// Queued when no worker started; provisioning when one did, was
		// claimed, and could not be handed the job's secret.
		j, terr := a.Life.End(ctx, job, lifecycle.End{To: remote.Failed, From: []remote.Status{remote.Queued, remote.Provisioning}, Error: launch.Cause(err, job.InstanceType)})
		if terr != nil {
			return response{}, terr
		}
		return reply(http.StatusCreated, j), nil
	}
	a.Log.Info("job submitted", "job", j.ID, "owner", j.Owner, "instance", j.InstanceID, "type", j.InstanceType)
	return reply(http.StatusCreated, j), nil
}

// IdempotencyHeader names a submission so that retries and replays of it
// get the same job.
const IdempotencyHeader = "Idempotency-Key"

var idempotencyKeyRE = regexp.MustCompile(`^[A-Za-z0-9_.:-]{8,128}$`)

// idempotency reads a submission's Idempotency-Key. It is required: a
// signed POST replayed within its signature's window (SigV4 allows five
// minutes) would otherwise create a second job; with the key, a replay
// gets the first job back. The CLI sends one with every submission.
func idempotency(req events.APIGatewayV2HTTPRequest) (*store.Idempotency, *response) {
	key, ok := req.Headers[strings.ToLower(IdempotencyHeader)]
	if !ok {
		return nil, nil // refused by submit unless it is a dry run
	}
	if !idempotencyKeyRE.MatchString(key) {
		r := fail(http.StatusBadRequest, "invalid %s header: 8 to 128 letters, digits, '-', '_', '.' or ':' (a UUID, say)", IdempotencyHeader)
		return nil, &r
	}
	sum := sha256.Sum256([]byte(req.Body))
	return &store.Idempotency{Key: key, BodyHash: hex.EncodeToString(sum[:])}, nil
}

// own reads a job of the caller: someone else's job does not exist for them.
func (a *API) own(ctx context.Context, caller, id string) (*remote.Job, *response, error) {
	j, err := a.Store.Get(ctx, id)
	// A job stored before owners were principals has the session's ARN.
	if errors.Is(err, store.ErrNotFound) || err == nil && remote.OwnerOf(j.Owner) != caller {
		r := fail(http.StatusNotFound, "no job %s", id)
		return nil, &r, nil
	}
	return j, nil, err
}

func (a *API) get(ctx context.Context, caller, id string) (response, error) {
	j, r, err := a.own(ctx, caller, id)
	if r != nil || err != nil {
		return deref(r), err
	}
	return reply(http.StatusOK, j), nil
}

func (a *API) list(ctx context.Context, caller string, req events.APIGatewayV2HTTPRequest) (response, error) {
	limit := 20
	if v := req.QueryStringParameters["limit"]; v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 100 {
			return fail(http.StatusBadRequest, "limit must be between 1 and 100"), nil
		}
		limit = n
	}
	list, next, err := a.Store.List(ctx, caller, limit, req.QueryStringParameters["cursor"])
	if errors.Is(err, store.ErrInvalidCursor) {
		return fail(http.StatusBadRequest, "invalid cursor"), nil
	}
	if err != nil {
		return response{}, err
	}
	if list == nil {
		list = []*remote.Job{}
	}
	return reply(http.StatusOK, map[string]any{"jobs": list, "next_cursor": next}), nil
}

func (a *API) logs(ctx context.Context, caller, id string, req events.APIGatewayV2HTTPRequest) (response, error) {
	if _, r, err := a.own(ctx, caller, id); r != nil || err != nil {
		return deref(r), err
	}
	page, err := logs.Read(ctx, a.Logs, a.Config.LogGroup, id, req.QueryStringParameters["cursor"], 1000)
	if errors.Is(err, logs.ErrInvalidCursor) {
		return fail(http.StatusBadRequest, "invalid cursor"), nil
	}
	if err != nil {
		return response{}, err
	}
	return reply(http.StatusOK, page), nil
}

// cancel stops a job: a running worker is asked to stop cleanly (the reaper
// terminates it if it does not); a job without a running worker ends at once.
func (a *API) cancel(ctx context.Context, caller, id string) (response, error) {
	j, r, err := a.own(ctx, caller, id)
	if r != nil || err != nil {
		return deref(r), err
	}
	if j.Status.Terminal() {
		return fail(http.StatusConflict, "job %s already %s", id, j.Status), nil
	}
	if j.Status == remote.Running {
		j, err = a.Store.Transition(ctx, id, store.Change{From: []remote.Status{remote.Running}, Set: map[string]any{"cancel_requested": true, "message": "cancel requested"}})
		if err == nil {
			return reply(http.StatusAccepted, j), nil
		}
		if !errors.Is(err, store.ErrConflict) {
			return response{}, err
		}
		// It just moved on: fall through with the new state.
		if j, err = a.Store.Get(ctx, id); err != nil {
			return response{}, err
		}
		if j.Status.Terminal() {
			return fail(http.StatusConflict, "job %s already %s", id, j.Status), nil
		}
	}
	j, err = a.Life.End(ctx, j, lifecycle.End{To: remote.Cancelled, From: []remote.Status{remote.Queued, remote.Provisioning},
		Message: "cancelled before the worker started", Set: map[string]any{"cancel_requested": true}})
	if errors.Is(err, store.ErrConflict) {
		return a.cancel(ctx, caller, id) // the worker started meanwhile
	}
	if err != nil {
		return response{}, err
	}
	return reply(http.StatusOK, j), nil
}

func deref(r *response) response {
	if r == nil {
		return response{}
	}
	return *r
}

// jsonError keeps the decoder's reason without echoing the body.
func jsonError(err error) string {
	msg := err.Error()
	if strings.HasPrefix(msg, "json: unknown field") {
		return strings.TrimPrefix(msg, "json: ") + " (unknown fields are rejected)"
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("field %s: expected %s", ute.Field, ute.Type)
	}
	return msg
}

// checkMaxCost refuses a job whose estimate is over its --max-cost, or
// whose cost cannot be known: a limit that could not be kept would be one
// that silently does nothing.
func checkMaxCost(maxUSD float64, est cost.Estimate) string {
	switch {
	case maxUSD <= 0:
		return ""
	case !est.PriceKnown:
		return fmt.Sprintf("no price is known for %s, so a cost limit cannot be kept: choose another --instance-type or drop --max-cost", est.InstanceType)
	case est.Hours > 0 && est.TotalUSD > maxUSD:
		return fmt.Sprintf("the estimate is $%.2f (%s for %.1f h at $%.4f/h), over --max-cost $%.2f: raise it, or choose a smaller --instance-type", est.TotalUSD, est.InstanceType, est.Hours, est.HourlyUSD, maxUSD)
	}
	return ""
}
