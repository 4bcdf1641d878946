package events

import (
	"encoding/json"
	"strings"
	"testing"
	"time"

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
