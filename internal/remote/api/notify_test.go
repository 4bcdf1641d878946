package api_test

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/testenv/devstack"
)

// event is what EventBridge delivers to the topic.
type event struct {
	Source     string        `json:"source"`
	DetailType string        `json:"detail-type"`
	Detail     events.Detail `json:"detail"`
}

// A job's end goes on EventBridge and, through the stack's rule, to its
// topic: with the job's id, owner, command, databases and the command that
// shows it, and no password. A job submitted with --no-notify reaches no
// subscriber.
func TestJobEventsReachTheTopic(t *testing.T) {
	ctx := context.Background()
	inbox, err := stack.Subscribe(ctx, "notify-test")
	if err != nil {
		t.Fatal(err)
	}
	const password = "s3cret-pw-9f2"
	alice := apiAs(t, "alice")
	quiet := false
	var ids []string
	for _, notify := range []*bool{nil, &quiet} {
		j, err := alice.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://app:" + password + "@db.example.com/shop", Target: "postgres://app:" + password + "@target.example.com/shop",
			Options: remote.Options{Notify: notify}, Filters: filter.Spec{IncludeDatabases: []string{"shop"}}})
		if err != nil {
			t.Fatal(err)
		}
		if _, err := alice.Cancel(ctx, j.ID); err != nil {
			t.Fatal(err)
		}
		ids = append(ids, j.ID)
	}
	got, err := inbox.Receive(ctx, 6*time.Second)
	if err != nil {
		t.Fatal(err)
	}
	var mine []event
	for _, m := range got {
		if strings.Contains(m, password) {
			t.Errorf("a password in an event: %s", m)
		}
		var e event
		if err := json.Unmarshal([]byte(m), &e); err != nil {
			t.Fatalf("not an EventBridge event: %s", m)
		}
		if e.Detail.JobID == ids[0] || e.Detail.JobID == ids[1] {
			mine = append(mine, e)
		}
	}
	if len(mine) != 1 {
		t.Fatalf("events of the two jobs on the topic: %+v, want the first job's only", mine)
	}
	e := mine[0]
	d := e.Detail
	if e.Source != "replicator" || e.DetailType != string(events.Cancelled) || d.JobID != ids[0] || d.Owner != devstack.Users["alice"].ARN ||
		d.Command != "init" || d.Status != "cancelled" || d.Stack != "replicator" || strings.Join(d.Databases, ",") != "shop" ||
		d.Show != "replicator jobs show "+ids[0] || !d.Notify {
		t.Errorf("event: %+v", e)
	}
}

// A stack's webhook is called through EventBridge's API destination when a
// job ends (moto calls it for real, though without the body or the
// connection's header: the body's template is the program's, tested with
// the Pulumi mocks).
func TestWebhookIsCalled(t *testing.T) {
	ctx := context.Background()
	calls := make(chan string, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		calls <- r.Method + " " + r.URL.Path
	}))
	defer srv.Close()
	hooked, err := devstack.Start(ctx, devstack.Options{Stack: "hooked", Moto: stack.Moto, ReaperEvery: time.Hour, Webhook: srv.URL + "/services/T000/B000"})
	if err != nil {
		t.Fatal(err)
	}
	defer hooked.Stop()
	for _, kv := range hooked.CallerEnv("alice") {
		k, v, _ := strings.Cut(kv, "=")
		t.Setenv(k, v)
	}
	c, err := client.New(ctx, hooked.API.URL, "")
	if err != nil {
		t.Fatal(err)
	}
	j, err := c.Submit(ctx, &remote.Request{Command: "init", Source: "postgres://h/a", Target: "postgres://g/b"})
	if err != nil {
		t.Fatal(err)
	}
	if _, err := c.Cancel(ctx, j.ID); err != nil {
		t.Fatal(err)
	}
	select {
	case got := <-calls:
		if got != "POST /services/T000/B000" {
			t.Errorf("webhook call %q", got)
		}
	case <-time.After(10 * time.Second):
		t.Error("the webhook was not called")
	}
}
