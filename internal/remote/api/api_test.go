package api_test

import (
	"context"
	"errors"
	"net/http"
	"os"
	"reflect"
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/client"
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
		{"too large", "POST", "/jobs", `{"command":"init","source":"` + strings.Repeat("x", 100000) + `"}`, true, 413, "limit"},
		{"bad id", "GET", "/jobs/not-a-job", "", true, 400, "invalid job id"},
		{"unknown job", "GET", "/jobs/j-aaaaaaaaaaaaaaaa", "", true, 404, "no job j-aaaaaaaaaaaaaaaa"},
		{"bad cursor", "GET", "/jobs?cursor=zzz", "", true, 400, "invalid cursor"},
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
