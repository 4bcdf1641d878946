package events

import (
	"context"
	"encoding/json"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"

	"github.com/replicatorhq/replicator/internal/remote"
)

// Issue 22, 10: what a caller supplies (a database name, inside an error)
// reaches Slack's "text" with its control sequences escaped: no @channel,
// no link that shows one address and opens another.
func TestWebhookTextEscapesSlackControls(t *testing.T) {
	j := &remote.Job{ID: "j-1", Command: "init", Status: remote.Failed,
		Error: `database "<!channel> <https://evil.example|console.aws.amazon.com> & co": does not exist`}
	d := Of("replicator", j, time.Now())
	line := text(Failed, d)
	for _, bad := range []string{"<!channel>", "<https://", "& co"} {
		if strings.Contains(line, bad) {
			t.Errorf("text keeps %q: %s", bad, line)
		}
	}
	if !strings.Contains(line, "&lt;!channel&gt;") || !strings.Contains(line, "&amp; co") || !strings.HasSuffix(line, "replicator jobs show j-1") {
		t.Errorf("text %q", line)
	}
	// The template takes the escaped line only.
	if strings.Contains(WebhookTemplate, "<cause>") || WebhookPaths["text"] != "$.detail.text" {
		t.Errorf("the webhook template reads unescaped fields: %s %v", WebhookTemplate, WebhookPaths)
	}
}

// Issue 22, 7: an error or message of any size gives an event under
// EventBridge's bound (the job's error is bounded by the record; the
// event bounds it again, with the line built from it).
func TestEventDetailIsBounded(t *testing.T) {
	huge := strings.Repeat("é", 200<<10)
	j := &remote.Job{ID: "j-2", Command: "init", Status: remote.Failed, Error: huge, Message: huge}
	d := Of("replicator", j, time.Now())
	d.Text = text(Failed, d)
	b, err := json.Marshal(d)
	if err != nil {
		t.Fatal(err)
	}
	if len(b) > MaxDetailBytes {
		t.Errorf("detail of %d bytes, over %d", len(b), MaxDetailBytes)
	}
	if len(d.Error) > remote.MaxTextBytes+3 || !strings.HasSuffix(d.Error, "...") {
		t.Errorf("error not bounded: %d bytes", len(d.Error))
	}
}

// putRecorder is EventBridge's PutEvents, keeping what it was sent.
type putRecorder struct{ details []string }

func (p *putRecorder) PutEvents(_ context.Context, in *eventbridge.PutEventsInput, _ ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error) {
	for _, e := range in.Entries {
		p.details = append(p.details, aws.ToString(e.Detail))
	}
	return &eventbridge.PutEventsOutput{}, nil
}

// Escaping grows bounded text several times over: an error of '<' at its
// bound, with as long a message and the longest database list a job may
// have, still makes an event (trimmed, within EventBridge's limit), not a
// dropped one.
func TestEscapedEventStillFits(t *testing.T) {
	var dbs []string
	for i := range 256 {
		dbs = append(dbs, strings.Repeat("<", 120)+fmt.Sprint(i))
	}
	lt := strings.Repeat("<", remote.MaxTextBytes)
	j := &remote.Job{ID: "j-3", Command: "init", Status: remote.Failed, Error: lt, Message: lt}
	j.Filters.IncludeDatabases = dbs
	rec := &putRecorder{}
	p := &Publisher{Client: rec, Stack: "replicator"}
	if err := p.send(context.Background(), Failed, j, nil); err != nil {
		t.Fatalf("the event was dropped: %v", err)
	}
	if len(rec.details) != 1 || len(rec.details[0]) > MaxDetailBytes {
		t.Fatalf("sent %d event(s), %d bytes", len(rec.details), len(rec.details[0]))
	}
	var d Detail
	if err := json.Unmarshal([]byte(rec.details[0]), &d); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(d.Error, "<<<") || !strings.HasSuffix(d.Error, "...") || d.JobID != "j-3" || d.Status != string(remote.Failed) {
		t.Errorf("trimmed detail lost what it must say: %+v", d)
	}
}
