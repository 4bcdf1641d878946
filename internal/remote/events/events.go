// Package events publishes what happens to remote jobs on EventBridge (the
// account's default bus, source "replicator"), where the stack's rule sends
// them on to its SNS topic and webhooks and users may route them anywhere
// else. Publishing is best effort: an event that cannot be sent is logged and
// never fails the job's own transition.
package events

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"slices"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge"
	"github.com/aws/aws-sdk-go-v2/service/eventbridge/types"

	"github.com/replicatorhq/replicator/internal/redact"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/cost"
)

// Source of every event: the stack's rule and the IAM condition
// events:source match it.
const Source = "replicator"

// Kind is an event's detail-type.
type Kind string

const (
	Succeeded Kind = "Job Succeeded"
	Failed    Kind = "Job Failed"
	Cancelled Kind = "Job Cancelled"
	// Relaunched: a worker stopped heart-beating and another took over.
	Relaunched Kind = "Worker Relaunched"
	// LimitNear: the job's time limit runs out soon.
	LimitNear Kind = "Time Limit Near"
	// LagHigh: a monitored sync job's target is behind by the job's
	// threshold or more; LagRecovered: it caught up again.
	LagHigh      Kind = "Sync Lag High"
	LagRecovered Kind = "Sync Lag Recovered"
)

// Ended is the kind of a job's final status.
func Ended(s remote.Status) Kind {
	switch s {
	case remote.Succeeded:
		return Succeeded
	case remote.Cancelled:
		return Cancelled
	default:
		return Failed
	}
}

// Detail is an event's body. It holds no connection URL, only the job's
// redacted endpoints' databases and what people need to follow up.
type Detail struct {
	Stack     string   `json:"stack"`
	JobID     string   `json:"job_id"`
	Owner     string   `json:"owner"`
	Command   string   `json:"command"`
	Status    string   `json:"status"`
	Databases []string `json:"databases,omitempty"`
	// Error is the cause of a failure (already free of secrets).
	Error   string `json:"error,omitempty"`
	Message string `json:"message,omitempty"`
	// Notify: the stack's rule sends the event to its topic and webhooks
	// (init --remote --no-notify turns it off for one job).
	Notify          bool    `json:"notify"`
	InstanceType    string  `json:"instance_type,omitempty"`
	Attempts        int     `json:"attempts"`
	DurationSeconds float64 `json:"duration_seconds,omitempty"`
	Bytes           int64   `json:"bytes,omitempty"`
	Rows            int64   `json:"rows,omitempty"`
	TablesDone      int     `json:"tables_done,omitempty"`
	Tables          int     `json:"tables,omitempty"`
	// Deadline is when the time limit runs out (LimitNear).
	Deadline *time.Time `json:"deadline,omitempty"`
	// Lag of a monitored sync job (LagHigh, LagRecovered): the database
	// furthest behind, by how much, and the threshold.
	Lag *Lag `json:"lag,omitempty"`
	// Used is what the job used so far: instance-hours, cost, average
	// throughput (none before its first launch).
	Used *cost.Used `json:"used,omitempty"`
	// Show is the command that shows the job.
	Show string `json:"show"`
	// Text is the line for people the webhooks post (Slack's "text"):
	// what users supplied in it (database names inside an error) has
	// Slack's control characters escaped, so that it cannot mention
	// @channel or disguise a link.
	Text string `json:"text"`
}

// SlackEscape escapes the three characters Slack's message formatting
// reads as control sequences (<!channel>, <https://url|label>, &lt;):
// Slack asks for &amp;, &lt; and &gt; in their place.
func SlackEscape(s string) string {
	return slackEscaper.Replace(s)
}

var slackEscaper = strings.NewReplacer("&", "&amp;", "<", "&lt;", ">", "&gt;")

// text is the webhooks' line for an event of kind about d.
func text(kind Kind, d Detail) string {
	line := fmt.Sprintf("replicator %s: %s, job %s (%s)", d.Stack, kind, d.JobID, d.Command)
	if d.Error != "" {
		line += " " + d.Error
	}
	return SlackEscape(line) + " " + SlackEscape(d.Show)
}

// Lag is how far a sync job's target is behind.
type Lag struct {
	Database         string  `json:"database"`
	Bytes            int64   `json:"bytes"`
	Seconds          float64 `json:"seconds"`
	ThresholdSeconds float64 `json:"threshold_seconds"`
	State            string  `json:"state"`
}

// Of is the detail of job j now.
func Of(stack string, j *remote.Job, now time.Time) Detail {
	d := Detail{Stack: stack, JobID: j.ID, Owner: j.Owner, Command: j.Command, Status: string(j.Status),
		Databases: slices.Clone(j.Filters.IncludeDatabases), Error: redact.Truncate(j.Error, remote.MaxTextBytes),
		Message: redact.Truncate(j.Message, remote.MaxTextBytes), Notify: j.Options.Notifies(),
		InstanceType: j.InstanceType, Attempts: j.Attempts, Show: "replicator jobs show " + j.ID}
	if stack != "replicator" {
		d.Show += " --stack " + stack
	}
	if j.StartedAt != nil {
		end := now
		if j.FinishedAt != nil {
			end = *j.FinishedAt
		}
		d.DurationSeconds = end.Sub(*j.StartedAt).Round(time.Second).Seconds()
	}
	if p := j.Progress; p != nil {
		d.Bytes, d.Rows, d.TablesDone, d.Tables = p.Bytes, p.Rows, p.TablesDone, p.TablesTotal
	}
	if dl := j.Deadline(); !dl.IsZero() {
		d.Deadline = &dl
	}
	d.Used = j.Usage(now)
	return d
}

// API is the part of EventBridge a publisher uses.
type API interface {
	PutEvents(ctx context.Context, in *eventbridge.PutEventsInput, optFns ...func(*eventbridge.Options)) (*eventbridge.PutEventsOutput, error)
}

// Publisher sends a stack's events; a nil one sends nothing.
type Publisher struct {
	Client API
	Stack  string
	Log    *slog.Logger
	Now    func() time.Time
}

// Publish sends one event about j; a failure is logged, not returned.
func (p *Publisher) Publish(ctx context.Context, kind Kind, j *remote.Job) {
	p.PublishLag(ctx, kind, j, nil)
}

// PublishLag sends one event about j with its replication lag.
func (p *Publisher) PublishLag(ctx context.Context, kind Kind, j *remote.Job, lag *Lag) {
	if p == nil || p.Client == nil {
		return
	}
	if err := p.send(ctx, kind, j, lag); err != nil && p.Log != nil {
		p.Log.Warn("publish job event", "job", j.ID, "event", string(kind), "err", err)
	}
}

func (p *Publisher) send(ctx context.Context, kind Kind, j *remote.Job, lag *Lag) error {
	now := time.Now()
	if p.Now != nil {
		now = p.Now()
	}
	d := Of(p.Stack, j, now)
	d.Lag = lag
	d.Text = text(kind, d)
	b, err := fit(&d)
	if err != nil {
		return err
	}
	out, err := p.Client.PutEvents(ctx, &eventbridge.PutEventsInput{Entries: []types.PutEventsRequestEntry{{
		Source: aws.String(Source), DetailType: aws.String(string(kind)), Detail: aws.String(string(b)),
		Resources: []string{}, Time: aws.Time(now),
	}}})
	if err != nil {
		return err
	}
	if out.FailedEntryCount > 0 && len(out.Entries) > 0 {
		return fmt.Errorf("%s: %s", aws.ToString(out.Entries[0].ErrorCode), aws.ToString(out.Entries[0].ErrorMessage))
	}
	return nil
}

// fit marshals d within MaxDetailBytes: JSON and Slack escaping can grow
// bounded text several times over (a '<' is "&lt;", then "\u0026lt;"), so
// the longest of the free texts is halved, and the database list cut, until
// the event fits: an event that says less beats one that is dropped.
func fit(d *Detail) ([]byte, error) {
	for range 64 {
		b, err := json.Marshal(d)
		if err != nil || len(b) <= MaxDetailBytes {
			return b, err
		}
		longest := &d.Error
		for _, f := range []*string{&d.Message, &d.Text} {
			if len(*f) > len(*longest) {
				longest = f
			}
		}
		names := 0
		for _, n := range d.Databases {
			names += len(n)
		}
		if names > len(*longest) && len(d.Databases) > 1 {
			keep := len(d.Databases) / 2
			d.Databases = append(d.Databases[:keep:keep], fmt.Sprintf("... and %d more", len(d.Databases)-keep))
			continue
		}
		*longest = halve(*longest)
	}
	return nil, fmt.Errorf("event detail over EventBridge's %d bytes after trimming", MaxDetailBytes)
}

// halve keeps the first half of s, cut on a rune boundary, marked "...".
func halve(s string) string {
	s = strings.TrimSuffix(s, "...")
	n := len(s) / 2
	for n > 0 && !utf8.RuneStart(s[n]) {
		n--
	}
	return s[:n] + "..."
}

// MaxDetailBytes bounds an event: EventBridge takes at most 256 KiB per
// PutEvents entry (source, detail-type and detail together), so the detail
// keeps well under it.
const MaxDetailBytes = 64 << 10

// NotifyPattern is the event pattern of the stack's notification rule: its
// own jobs' events (stacks share the account's default bus), those the job
// lets notify.
func NotifyPattern(stack string) string {
	b, _ := json.Marshal(map[string]any{
		"source": []string{Source},
		"detail": map[string]any{"stack": []string{stack}, "notify": []bool{true}},
	})
	return string(b)
}

// WebhookPaths and WebhookTemplate are the input transformer of the
// stack's webhooks: a line for people (Slack shows "text") and the event
// itself (aws.events.event.json, EventBridge's reserved variable).
var WebhookPaths = map[string]string{"text": "$.detail.text"}

const WebhookTemplate = `{"text": "<text>", "event": <aws.events.event.json>}`

// WebhookHeader is what a webhook's connection sends (a connection needs
// an authorization; the webhooks take none of EventBridge's).
const WebhookHeader = "X-Replicator-Stack"
