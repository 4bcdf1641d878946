package api_test

import (
	"context"
	"encoding/json"
	"strings"
	"testing"
	"time"

	"github.com/replicatorhq/replicator/internal/filter"
	"github.com/replicatorhq/replicator/internal/remote"
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
