package replication

import (
	"strings"
	"testing"

	"github.com/replicatorhq/replicator/internal/catalog"
)

// cutover --reverse publishes from the target: what stops it is said of the
// target, with the fix to run there (it said "source wal_level" of the
// target's).
func TestCheckPublisherNamesItsSide(t *testing.T) {
	for _, side := range []string{"source", "target"} {
		err := CheckPublisher(&catalog.Server{WALLevel: "replica", Replication: true}, side)
		if err == nil || !strings.HasPrefix(err.Error(), side+" wal_level is replica") || !strings.Contains(err.Error(), "logical on the "+side+" and restart it") {
			t.Errorf("%s: %v", side, err)
		}
		err = CheckPublisher(&catalog.Server{WALLevel: "logical", User: "app"}, side)
		if err == nil || !strings.HasPrefix(err.Error(), side+" role app lacks the REPLICATION privilege") {
			t.Errorf("%s: %v", side, err)
		}
		if err := CheckPublisher(&catalog.Server{WALLevel: "logical", Replication: true}, side); err != nil {
			t.Errorf("%s: %v", side, err)
		}
	}
}
