package api_test

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

var stack *devstack.Stack

// The API against moto, without workers (instances start in moto's EC2 and
// nothing runs them): what is tested here is the HTTP contract.
func TestMain(m *testing.M) {
	var err error
	stack, err = devstack.Start(context.Background(), devstack.Options{Config: awsenv.Config{MaxActiveJobs: 2}})
	if err != nil {
		os.Stderr.WriteString("emulated platform: " + err.Error() + "\n")
		os.Exit(1)
	}
	code := m.Run()
	stack.Stop()
	os.Exit(code)
}

func apiAs(t *testing.T, user string) *client.Client {
	t.Helper()
	for _, kv := range stack.CallerEnv(user) {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := client.New(context.Background(), stack.API.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func apiError(t *testing.T, err error, status int, contains string) *client.Error {
	t.Helper()
	var ae *client.Error
	if !errors.As(err, &ae) || ae.Status != status || !strings.Contains(ae.Error(), contains) {
		t.Fatalf("want %d %q, got %v", status, contains, err)
	}
	return ae
}

func TestSubmitValidation(t *testing.T) {
	c := apiAs(t, "alice")
	ctx := context.Background()
	_, err := c.Submit(ctx, &remote.Request{Command: "copy", Source: "nonsense", Target: "postgres://u:pw@h/db",
		Options: remote.Options{Jobs: 999, InstanceType: "huge!"}, Filters: jobsFilter("a.b.c.d")})
	ae := apiError(t, err, http.StatusBadRequest, "invalid job")
	for _, field := range []string{"command", "source", "options.jobs", "options.instance_type", "filters"} {
		if ae.Fields[field] == "" {
			t.Errorf("no error for field %s: %v", field, ae.Fields)
		}
	}
	if strings.Contains(ae.Error(), "pw") {
		t.Errorf("error echoes a password: %v", ae)
	}
}

func TestRawRequests(t *testing.T) {
	c := apiAs(t, "alice")
	do := func(method, path, body string, sign bool) (*http.Response, string) {
		t.Helper()
		req, _ := http.NewRequest(method, stack.API.URL+path, strings.NewReader(body))
		if sign {
			resp, data, err := c.Raw(context.Background(), method, path, body)
			if err != nil {
				t.Fatal(err)
			}
			return resp, data
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		buf := new(strings.Builder)
		_, _ = bufCopy(buf, resp)
		return resp, buf.String()
	}
	for _, tc := range []struct {
		name, method, path, body string
		sign                     bool
		status                   int
		contains                 string
	}{
		{"unsigned", "GET", "/jobs", "", false, 403, "SigV4"},
		{"unknown field", "POST", "/jobs", `{"command":"init","source":"postgres://h/a","target":"postgres://g/b","colour":"red"}`, true, 400, `unknown field \"colour\"`},
		{"not json", "POST", "/jobs", `{"command":`, true, 400, "invalid JSON"},
		// Issue 22, 11: without the key, a replay of this signed request
		// within SigV4's window would create a second job.
		// Issue 22, 8: "/" in a password once put the rest of it in the
		// job's stored and echoed source.
		{"slash in password", "POST", "/jobs", `{"command":"init","source":"postgres://u:abc/def@203.0.113.9/a","target":"postgres://u:p@203.0.113.10/b"}`, true, 400, "percent-encode"},
		{"no idempotency key", "POST", "/jobs", `{"command":"init","source":"postgres://u:p@203.0.113.9/a","target":"postgres://u:p@203.0.113.10/b"}`, true, 400, "missing Idempotency-Key header"},
		{"too large", "POST", "/jobs", `{"command":"init","source":"` + strings.Repeat("x", 100000) + `"}`, true, 413, "limit"},
		{"bad id", "GET", "/jobs/not-a-job", "", true, 400, "invalid job id"},
		{"unknown job", "GET", "/jobs/j-aaaaaaaaaaaaaaaa", "", true, 404, "no job j-aaaaaaaaaaaaaaaa"},
		{"bad cursor", "GET", "/jobs?cursor=zzz", "", true, 400, "invalid cursor"},
		// A cursor of the caller's own owner key but without the rest of a
		// page's key once reached DynamoDB and came back 500.
		{"cursor missing keys", "GET", "/jobs?cursor=" + cursorOf(map[string]string{"gsi1pk": devstack.Users["alice"].ARN}), "", true, 400, "invalid cursor"},
		{"cursor of another item", "GET", "/jobs?cursor=" + cursorOf(map[string]string{"gsi1pk": devstack.Users["alice"].ARN, "gsi1sk": "x", "pk": "ACCOUNT", "sk": "ACTIVE"}), "", true, 400, "invalid cursor"},
		{"long bad id", "GET", "/jobs/" + strings.Repeat("A", 5000), "", true, 400, `invalid job id \"AAAAAAAAAAAAAAAAAAAAAAAA...\"`},
		{"bad limit", "GET", "/jobs?limit=1000", "", true, 400, "limit"},
		{"no route", "DELETE", "/jobs", "", true, 404, "Not Found"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			resp, body := do(tc.method, tc.path, tc.body, tc.sign)
			if resp.StatusCode != tc.status || !strings.Contains(body, tc.contains) {
				t.Errorf("%s %s: %d %s", tc.method, tc.path, resp.StatusCode, body)
			}
		})
	}
}

func TestConcurrencyCapAndOwnership(t *testing.T) {
	ctx := context.Background()
	alice := apiAs(t, "alice")
	req := &remote.Request{Command: "init", Source: "postgres://app:pw1@db.internal/postgres", Target: "postgres://admin:pw2@new.internal/postgres"}
	var ids []string
	for i := 0; i < 2; i++ {
		j, err := alice.Submit(ctx, req)
		if err != nil {
			t.Fatal(err)
		}
		if j.Status != remote.Provisioning || j.InstanceID == "" || j.InstanceType != "c7g.large" || strings.Contains(j.Source, "pw1") {
			t.Errorf("submitted job %+v", j)
		}
		ids = append(ids, j.ID)
	}
	_, err := alice.Submit(ctx, req)
	apiError(t, err, http.StatusTooManyRequests, "2 jobs are already queued or running")

	bob := apiAs(t, "bob")
	_, err = bob.Get(ctx, ids[0])
	apiError(t, err, http.StatusNotFound, "no job")
	list, _, err := bob.List(ctx, 10, "")
	if err != nil || len(list) != 0 {
		t.Errorf("bob lists %d jobs (%v)", len(list), err)
	}
	alice = apiAs(t, "alice")
	list, next, err := alice.List(ctx, 1, "")
	if err != nil || len(list) != 1 || list[0].ID != ids[1] || next == "" {
		t.Fatalf("first page: %v %v %q", err, list, next)
	}
	list, _, err = alice.List(ctx, 1, next)
	if err != nil || len(list) != 1 || list[0].ID != ids[0] {
		t.Fatalf("second page: %v %v", err, list)
	}
	// Cancelling a job without a running worker ends it and frees a slot.
	j, err := alice.Cancel(ctx, ids[0])
	if err != nil || j.Status != remote.Cancelled {
		t.Fatalf("cancel: %v %+v", err, j)
	}
	if _, err := alice.Submit(ctx, req); err != nil {
		t.Errorf("slot not freed by the cancel: %v", err)
	}
	_, err = alice.Cancel(ctx, ids[0])
	apiError(t, err, http.StatusConflict, "already cancelled")
	list, _, _ = alice.List(ctx, 100, "")
	for _, j := range list {
		if !j.Status.Terminal() {
			alice.Cancel(ctx, j.ID)
		}
	}
}

// A launch that AWS refuses fails the job at once, with a readable reason
// (never AWS's raw text, which goes to the API's log).
func TestLaunchFailureFailsTheJob(t *testing.T) {
	l := stack.Handler.API.Life.Launcher
	saved := l.LaunchTemplate
	l.LaunchTemplate = "no-such-template"
	defer func() { l.LaunchTemplate = saved }()
	j, err := apiAs(t, "alice").Submit(context.Background(), &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Status != remote.Failed || !strings.Contains(j.Error, "the worker image or launch template is missing (InvalidLaunchTemplateName") ||
		!strings.Contains(j.Error, "run replicator setup again") || strings.Contains(j.Error, "RequestID") || strings.Contains(j.Error, "api error") {
		t.Errorf("job after a failed launch: %s %q", j.Status, j.Error)
	}
}

// A remote job's URLs may not name files or sockets of the platform; TLS
// material comes inline and is checked, and what the secret cannot hold is
// refused before anything is created.
func TestSubmitRefusesLocalResources(t *testing.T) {
	c := apiAs(t, "alice")
	ctx := context.Background()
	pemText := "-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n"
	for _, tc := range []struct {
		name, field, contains string
		req                   remote.Request
	}{
		{"sslrootcert path", "source", "name local files", remote.Request{Source: "postgres://u:pw@db.example.com/a?sslrootcert=/etc/passwd", Target: "postgres://g/b"}},
		{"passfile", "target", "name local files", remote.Request{Source: "postgres://h/a", Target: "host=g dbname=b passfile=/root/.pgpass"}},
		{"service file", "target", "name local files", remote.Request{Source: "postgres://h/a", Target: "host=g servicefile=/etc/shadow"}},
		{"unix socket", "source", "Unix socket", remote.Request{Source: "host=/var/run/postgresql dbname=a", Target: "postgres://g/b"}},
		{"unknown certificate", "source_certificates", "unknown certificate", remote.Request{Source: "postgres://h/a", Target: "postgres://g/b",
			SourceCerts: map[string]string{"passfile": pemText}}},
		{"not PEM", "target_certificates", "not PEM", remote.Request{Source: "postgres://h/a", Target: "postgres://g/b",
			TargetCerts: map[string]string{"sslrootcert": "/etc/ssl/cert.pem"}}},
		// Secrets Manager's SecretString holds at most 65,536 bytes.
		{"over the secret limit", "certificates", "over the 65536 a job's secret holds", remote.Request{Source: "postgres://h/a", Target: "postgres://g/b",
			TargetCerts: map[string]string{"sslrootcert": "-----BEGIN CERTIFICATE-----\n" + strings.Repeat("QUJD\n", 14000) + "-----END CERTIFICATE-----\n"}}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Command = "init"
			_, err := c.Submit(ctx, &tc.req)
			ae := apiError(t, err, http.StatusBadRequest, "invalid job")
			if !strings.Contains(ae.Fields[tc.field], tc.contains) {
				t.Errorf("field %s: %q, want %q (all: %v)", tc.field, ae.Fields[tc.field], tc.contains, ae.Fields)
			}
			if strings.Contains(ae.Error(), "pw") {
				t.Errorf("error echoes a password: %v", ae)
			}
		})
	}
	list, _, _ := c.List(ctx, 100, "")
	for _, j := range list {
		if !j.Status.Terminal() {
			t.Errorf("a refused submission left job %s %s", j.ID, j.Status)
		}
	}
}

// The job's secret keeps every connection the request carried: the URLs,
// the source as the target reaches it, and the certificates.
func TestSecretHoldsTheConnections(t *testing.T) {
	c := apiAs(t, "alice")
	ctx := context.Background()
	req := &remote.Request{Command: "sync", Source: "postgres://u:pw1@db.example.com/a?sslmode=verify-full", Target: "postgres://v:pw2@new.example.com/b",
		SourceForTarget: "host=10.0.0.5 dbname=a user=u password=pw1 sslrootcert=/rdsdbdata/rds-metadata/ca-cert.pem",
		SourceCerts:     map[string]string{"sslrootcert": "-----BEGIN CERTIFICATE-----\nQUJD\n-----END CERTIFICATE-----\n"}}
	j, err := c.Submit(ctx, req)
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel(ctx, j.ID)
	sec, err := stack.Handler.API.Secrets.Get(ctx, j.ID)
	if err != nil {
		t.Fatal(err)
	}
	if !reflect.DeepEqual(*sec, req.Secret()) {
		t.Errorf("secret %+v, want %+v", *sec, req.Secret())
	}
}

// What one call may make the platform start is bounded: the allowlisted
// Graviton families up to the stack's size, the stack's longest time limit,
// and only the database ports the workers' security group opens.
func TestSubmitLimits(t *testing.T) {
	c := apiAs(t, "alice")
	ctx := context.Background()
	cfg := &stack.Handler.API.Config
	saved := *cfg
	defer func() { *cfg = saved }()
	cfg.MaxTimeLimitMinutes, cfg.EgressPorts = 120, []int{5432, 6432}
	for _, tc := range []struct {
		name, field, contains string
		req                   remote.Request
	}{
		{"GPU instance", "options.instance_type", "is not arm64", remote.Request{Options: remote.Options{InstanceType: "p5.48xlarge"}}},
		{"Graviton GPU", "options.instance_type", "is not offered", remote.Request{Options: remote.Options{InstanceType: "g5g.16xlarge"}}},
		{"over the size", "options.instance_type", "larger than this platform allows (4xlarge at most)", remote.Request{Options: remote.Options{InstanceType: "c7g.16xlarge"}}},
		{"over the time limit", "options.time_limit_minutes", "must be between 1 and 120, this platform's limit", remote.Request{Options: remote.Options{TimeLimitMinutes: 7 * 24 * 60}}},
		{"closed port", "source", "port 3306 is not one the workers may reach (5432, 6432)", remote.Request{Source: "postgres://u:pw@db.example.com:3306/a"}},
		{"closed fallback port", "target", "port 22 is not one", remote.Request{Target: "host=a.example.com,b.example.com port=5432,22 dbname=b"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			tc.req.Command = "init"
			if tc.req.Source == "" {
				tc.req.Source = "postgres://h/a"
			}
			if tc.req.Target == "" {
				tc.req.Target = "postgres://g/b"
			}
			_, err := c.Submit(ctx, &tc.req)
			ae := apiError(t, err, http.StatusBadRequest, "invalid job")
			if !strings.Contains(ae.Fields[tc.field], tc.contains) {
				t.Errorf("field %s: %q, want %q", tc.field, ae.Fields[tc.field], tc.contains)
			}
		})
	}
	// Large data sizes the worker up, but not past the stack's limit.
	cfg.MaxInstanceSize = "xlarge"
	j, err := c.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b", Options: remote.Options{SourceBytes: 3 << 40}})
	if err != nil {
		t.Fatal(err)
	}
	defer c.Cancel(ctx, j.ID)
	if j.InstanceType != "c7g.xlarge" {
		t.Errorf("a 3 TiB job on a platform capped at xlarge got %s", j.InstanceType)
	}
}

// Fair limits under races: eight submissions at once from two callers get
// no more than the platform's slots, and no caller more than its own; cancels
// racing each other free each slot once. Every counter ends at zero. (The
// emulated platform runs DynamoDB's writes one at a time, as DynamoDB
// isolates transactions; moto alone would let racing transactions through.)
func TestFairLimitsUnderRaces(t *testing.T) {
	ctx := context.Background()
	cfg := &stack.Handler.API.Config
	saved := *cfg
	defer func() { *cfg = saved }()
	cfg.MaxActiveJobs, cfg.MaxJobsPerOwner = 3, 2
	clients := map[string]*client.Client{"alice": apiAs(t, "alice"), "bob": apiAs(t, "bob")}
	type result struct {
		who string
		job *remote.Job
		err error
	}
	results := make(chan result, 8)
	var wg sync.WaitGroup
	for i := 0; i < 8; i++ {
		who := []string{"alice", "bob"}[i%2]
		wg.Add(1)
		go func() {
			defer wg.Done()
			j, err := clients[who].Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
			results <- result{who, j, err}
		}()
	}
	wg.Wait()
	close(results)
	created := map[string][]string{}
	for r := range results {
		var ae *client.Error
		switch {
		case r.err == nil:
			created[r.who] = append(created[r.who], r.job.ID)
		case errors.As(r.err, &ae) && ae.Status == http.StatusTooManyRequests:
		default:
			t.Errorf("%s: %v", r.who, r.err)
		}
	}
	if n := len(created["alice"]) + len(created["bob"]); n != 3 || len(created["alice"]) > 2 || len(created["bob"]) > 2 {
		t.Errorf("created %v: want 3 in all, at most 2 each", created)
	}
	// Each job cancelled twice at once.
	for who, ids := range created {
		for _, id := range ids {
			for k := 0; k < 2; k++ {
				wg.Add(1)
				go func() {
					defer wg.Done()
					clients[who].Cancel(ctx, id)
				}()
			}
		}
	}
	wg.Wait()
	st := stack.Store()
	if n, _ := st.ActiveCount(ctx); n != 0 {
		t.Errorf("platform counter %d after every job ended", n)
	}
	for _, who := range []string{"alice", "bob"} {
		if n, _ := st.OwnerCount(ctx, devstack.Users[who].ARN); n != 0 {
			t.Errorf("%s's counter %d after every job ended", who, n)
		}
	}
	// One caller at the per-owner cap is told so; the other still submits.
	cfg.MaxActiveJobs = 10
	var mine []string
	for i := 0; i < 2; i++ {
		j, err := clients["alice"].Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
		if err != nil {
			t.Fatal(err)
		}
		mine = append(mine, j.ID)
	}
	_, err := clients["alice"].Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	apiError(t, err, http.StatusTooManyRequests, "you have 2 jobs queued or running, the most one caller may")
	j, err := clients["bob"].Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	if err != nil {
		t.Errorf("bob is held by alice's jobs: %v", err)
	} else {
		clients["bob"].Cancel(ctx, j.ID)
	}
	for _, id := range mine {
		clients["alice"].Cancel(ctx, id)
	}
}

// A retried or replayed submission with the same Idempotency-Key gets the
// same job; the key reused for another request is refused; keys are the
// caller's own.
func TestIdempotency(t *testing.T) {
	ctx := context.Background()
	alice, bob := apiAs(t, "alice"), apiAs(t, "bob")
	req := &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"}
	first, err := alice.SubmitWithKey(ctx, req, "key-0001-aaaa")
	if err != nil {
		t.Fatal(err)
	}
	defer alice.Cancel(ctx, first.ID)
	again, err := alice.SubmitWithKey(ctx, req, "key-0001-aaaa")
	if err != nil || again.ID != first.ID {
		t.Errorf("a replay made another job or failed: %v %v", again.ID, err)
	}
	other := *req
	other.Target = "postgres://g/c"
	_, err = alice.SubmitWithKey(ctx, &other, "key-0001-aaaa")
	apiError(t, err, http.StatusConflict, "was used for job "+first.ID+" with another request")
	theirs, err := bob.SubmitWithKey(ctx, req, "key-0001-aaaa")
	if err != nil || theirs.ID == first.ID {
		t.Errorf("bob's key is not his own: %v %v", theirs, err)
	} else {
		bob.Cancel(ctx, theirs.ID)
	}
	_, err = alice.SubmitWithKey(ctx, req, "short")
	apiError(t, err, http.StatusBadRequest, "invalid Idempotency-Key header")
	list, _, _ := alice.List(ctx, 100, "")
	n := 0
	for _, j := range list {
		if j.Target == first.Target && !j.CreatedAt.Before(first.CreatedAt) {
			n++
		}
	}
	if n != 1 {
		t.Errorf("%d jobs for one submission", n)
	}
}

// A caller that hangs up mid-submission does not stop it halfway: the job
// gets its secret and its worker.
func TestSubmitOutlivesTheCaller(t *testing.T) {
	stack.Gate.Delay("secretsmanager.CreateSecret", 1500*time.Millisecond)
	defer stack.Gate.Delay("secretsmanager.CreateSecret", 0)
	c := apiAs(t, "alice")
	ctx, cancel := context.WithTimeout(context.Background(), 500*time.Millisecond)
	defer cancel()
	if _, err := c.SubmitWithKey(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://hung-up/b"}, "hang-up-0001"); err == nil {
		t.Fatal("the submission returned before the delay")
	}
	var job *remote.Job
	deadline := time.Now().Add(15 * time.Second)
	for time.Now().Before(deadline) {
		list, _, _ := c.List(context.Background(), 100, "")
		for _, j := range list {
			if strings.Contains(j.Target, "hung-up") {
				job = j
			}
		}
		if job != nil && job.SecretARN != "" && job.InstanceID != "" {
			break
		}
		time.Sleep(200 * time.Millisecond)
	}
	if job == nil || job.SecretARN == "" || job.InstanceID == "" || job.Status != remote.Provisioning {
		t.Fatalf("the job of a caller that hung up: %+v", job)
	}
	c.Cancel(context.Background(), job.ID)
}

// A job stored without its secret (the API stopped halfway) is failed by
// the reaper after the grace, and its slots are freed.
func TestReaperFailsIncompleteSubmissions(t *testing.T) {
	ctx := context.Background()
	st := stack.Store()
	owner := devstack.Users["alice"].ARN
	before, _ := st.OwnerCount(ctx, owner)
	created := time.Now().Add(-time.Hour).UTC()
	j := &remote.Job{ID: remote.NewID(), Owner: owner, Command: "init", Status: remote.Queued, CreatedAt: created, UpdatedAt: created}
	if err := st.Create(ctx, j, store.Caps{Active: 100, PerOwner: 100}, nil); err != nil {
		t.Fatal(err)
	}
	deadline := time.Now().Add(20 * time.Second)
	for {
		got, err := st.Get(ctx, j.ID)
		if err == nil && got.Status == remote.Failed {
			if !strings.Contains(got.Error, "the submission did not complete") || got.InstanceID != "" {
				t.Errorf("failed job: %+v", got)
			}
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("the reaper left the incomplete job %+v", got)
		}
		time.Sleep(300 * time.Millisecond)
	}
	// moto applies a transaction's items one by one with no lock (DynamoDB
	// serialises GetItem with TransactWriteItems), so a read just after the
	// job's status may still see the counter's old value: wait for it.
	for {
		after, _ := st.OwnerCount(ctx, owner)
		if after == before {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("alice's counter %d, was %d", after, before)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

func cursorOf(key map[string]string) string {
	b, _ := json.Marshal(key)
	return base64.RawURLEncoding.EncodeToString(b)
}

// Issue 22, 5: an owner is the principal, not the session: two sessions of
// one role see and cancel the same jobs (the SDK's session name changes per
// process, so a user's next run could not see their own jobs), and share
// one quota; another principal still sees nothing.
func TestOwnerIsThePrincipal(t *testing.T) {
	ctx := context.Background()
	first := apiAs(t, "ops-1")
	j, err := first.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	if err != nil {
		t.Fatal(err)
	}
	if j.Owner != "arn:aws:sts::123456789012:assumed-role/ops" {
		t.Errorf("owner %q, want the role", j.Owner)
	}
	second := apiAs(t, "ops-2")
	list, _, err := second.List(ctx, 10, "")
	if err != nil || len(list) != 1 || list[0].ID != j.ID {
		t.Errorf("another session of the role lists %v (%v)", list, err)
	}
	if _, err := apiAs(t, "alice").Get(ctx, j.ID); err == nil {
		t.Error("another principal sees the role's job")
	}
	if got, err := second.Cancel(ctx, j.ID); err != nil || got.Status != remote.Cancelled {
		t.Errorf("another session of the role cancels: %v %+v", err, got)
	}
}

// Issue 22, 5: the quota is the principal's, not the session's: a second
// session of the same role may not take a second slot of a one-job quota
// (with the session ARN as owner, each session had its own).
func TestSessionsOfOneRoleShareTheQuota(t *testing.T) {
	ctx := context.Background()
	cfg := &stack.Handler.API.Config
	saved := *cfg
	defer func() { *cfg = saved }()
	cfg.MaxActiveJobs, cfg.MaxJobsPerOwner = 10, 1
	first, second := apiAs(t, "ops-1"), apiAs(t, "ops-2")
	j, err := first.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	if err != nil {
		t.Fatal(err)
	}
	defer first.Cancel(ctx, j.ID)
	_, err = second.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	apiError(t, err, http.StatusTooManyRequests, "the most one caller may")
}
