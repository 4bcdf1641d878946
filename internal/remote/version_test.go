package remote

import (
	"reflect"
	"testing"
)

// A platform answers a command or an option newer than itself with a bare
// "unknown command" or "unknown field": the CLI names them first. A dev
// platform (not a release) knows everything; one too old to say (before
// v0.5.0, "") knows nothing new.
func TestRequestNewerThan(t *testing.T) {
	cut := &Request{Command: "cutover", Options: Options{Cutover: Cutover{Reverse: true}}}
	for _, c := range []struct {
		platform string
		want     []string
	}{
		{"", []string{"the cutover command"}},
		{"v0.5.0", []string{"the cutover command"}},
		{"v0.6.0", nil},
		{"v0.5.0+abc123", nil},
	} {
		if got := cut.NewerThan(c.platform); !reflect.DeepEqual(got, c.want) {
			t.Errorf("cutover on %q: %q, want %q", c.platform, got, c.want)
		}
	}
	sync := &Request{Command: "sync", Options: Options{ReplicateDDL: "on"}}
	if got := sync.NewerThan("v0.4.0"); !reflect.DeepEqual(got, []string{"replicate_ddl"}) {
		t.Errorf("sync --replicate-ddl on v0.4.0: %q", got)
	}
	if got := sync.NewerThan("v0.5.0"); got != nil {
		t.Errorf("sync --replicate-ddl on v0.5.0: %q", got)
	}
}
