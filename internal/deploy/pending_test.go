package deploy

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
)

// An AMI build left running by a killed setup is waited for, then imported;
// one that failed is built again. Image Builder is not in moto: a stub
// answers ListImageBuildVersions.
func TestImageBuildLeftRunning(t *testing.T) {
	const arn = "arn:aws:imagebuilder:eu-west-1:123456789012:image/replicator-p-worker/1.0.7/1"
	for _, tc := range []struct {
		states     []string
		want, note string
	}{
		{[]string{"BUILDING", "TESTING", "AVAILABLE"}, arn, "the build finished"},
		{[]string{"BUILDING", "FAILED"}, "", "ended failed"},
	} {
		var calls atomic.Int32
		srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			n := int(calls.Add(1)) - 1
			st := tc.states[min(n, len(tc.states)-1)]
			fmt.Fprintf(w, `{"imageSummaryList":[{"arn":%q,"state":{"status":%q},"dateCreated":"2026-11-26T10:00:00.000Z"}]}`, arn, st)
		}))
		cfg, _ := config.LoadDefaultConfig(context.Background(), config.WithRegion("eu-west-1"), config.WithBaseEndpoint(srv.URL),
			config.WithCredentialsProvider(credentials.NewStaticCredentialsProvider("AKIA", "secret", "")),
			config.WithSharedConfigFiles(nil), config.WithSharedCredentialsFiles(nil))
		saved := ImagePollEvery
		ImagePollEvery = 10 * time.Millisecond
		var out bytes.Buffer
		o := &Options{AWS: cfg, Out: &out, Region: "eu-west-1"}
		id, why, err := o.findImageBuild(context.Background(), strings.Replace(arn[:len(arn)-2], ":image/", ":image-recipe/", 1), nil)
		ImagePollEvery = saved
		srv.Close()
		if err != nil || id != tc.want || !strings.Contains(why, tc.note) {
			t.Errorf("%v: got %q %q %v", tc.states, id, why, err)
		}
		if !strings.Contains(out.String(), "is building: waiting for it rather than starting another") {
			t.Errorf("no word of the wait: %s", out.String())
		}
	}
}

func TestLocksFromThePulumiError(t *testing.T) {
	locks := parseLocks("the stack is currently locked by 2 lock(s). Either wait for the other process(es) to end or delete the lock file with `pulumi cancel`.\n" +
		"  s3://b/.pulumi/locks/organization/replicator/prod/x.json: created by alice@laptop (pid 4242) at 2026-11-26T10:00:00Z\n" +
		"  s3://b/.pulumi/locks/organization/replicator/prod/y.json: created by ci@runner-7 (pid 17) at 2020-01-01T00:00:00Z")
	if len(locks) != 2 || locks[0].User != "alice" || locks[0].Host != "laptop" || locks[0].PID != 4242 || locks[1].Host != "runner-7" {
		t.Fatalf("%+v", locks)
	}
	now := time.Date(2026, 11, 26, 10, 30, 0, 0, time.UTC)
	if stale, _ := locks[0].Stale(now, "elsewhere"); stale {
		t.Errorf("a 30-minute-old lock of another host is not provably stale")
	}
	if stale, why := locks[1].Stale(now, "elsewhere"); !stale || !strings.Contains(why, "older than") {
		t.Errorf("an old lock: %v %s", stale, why)
	}
	if locksOf(errors.New("the stack is currently locked by 1 lock(s)")) != nil {
		t.Errorf("an error that is not the Automation API's is no lock")
	}
}
