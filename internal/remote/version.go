package remote

import (
	"encoding/json"
	"sort"

	"github.com/replicatorhq/replicator/internal/buildinfo"
)

// PlatformInfo is what GET /version answers: the release of the stack's
// Lambda (the CLI that ran setup). A platform older than v0.5.0 has no such
// route.
type PlatformInfo struct {
	Version string `json:"version"`
}

// CLIVersionHeader carries the submitting CLI's version. A header, not a
// body field: an older platform's API refuses unknown body fields, and must
// still take the job (or refuse it for what it lacks, found by the CLI).
const CLIVersionHeader = "Replicator-Cli-Version"

// OptionSince is the release that brought each job option newer than
// v0.4.0, by its JSON name. A new option goes here, or an older platform
// answers a job using it with a bare "unknown field".
var OptionSince = map[string]string{
	"replicate_ddl": "v0.5.0",
	// cutover's, in the release after v0.5.0.
	"rollback": "v0.6.0", "reverse": "v0.6.0", "plan_only": "v0.6.0", "max_lag_seconds": "v0.6.0",
	"drain_timeout_seconds": "v0.6.0", "switch_timeout_seconds": "v0.6.0", "fence": "v0.6.0",
	"sequence_margin": "v0.6.0", "unfence_source": "v0.6.0", "skip_analyze": "v0.6.0",
}

// CommandSince is the release that brought each job command newer than
// v0.4.0: an older platform's API answers it with a bare "unknown command".
var CommandSince = map[string]string{"cutover": "v0.6.0"}

// NewerThan lists what of the request a platform of release v does not know:
// its command ("the cutover command", whose options then go unsaid), or
// the options it sets.
func (r *Request) NewerThan(v string) []string {
	if since, ok := CommandSince[r.Command]; ok && (v == "" || buildinfo.Released(v) && buildinfo.Older(v, since)) {
		return []string{"the " + r.Command + " command"}
	}
	return r.Options.NewerThan(v)
}

// NewerThan lists the options o sets that a platform of release v does not
// know: "" is a platform too old to say (before v0.5.0). A build from a
// working tree ("dev") knows everything.
func (o Options) NewerThan(v string) []string {
	if v != "" && !buildinfo.Released(v) {
		return nil
	}
	raw, _ := json.Marshal(o)
	var set map[string]json.RawMessage
	_ = json.Unmarshal(raw, &set)
	var out []string
	for name := range set {
		since, ok := OptionSince[name]
		if ok && (v == "" || buildinfo.Older(v, since)) {
			out = append(out, name)
		}
	}
	sort.Strings(out)
	return out
}
