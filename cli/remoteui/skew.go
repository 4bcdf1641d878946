package remoteui

import (
	"context"
	"fmt"
	"os"
	"strings"

	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/problem"
	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/client"
)

// CheckPlatform compares the platform's version with this CLI's before a
// command uses it. A job whose command or options the platform does not know
// yet is refused here, with the fix, rather than answered "unknown field" or
// "unknown command" by the API; an older platform otherwise gets a warning
// line. req is nil for commands that submit nothing (jobs).
func CheckPlatform(ctx context.Context, ios *iostreams.IOStreams, c client.API, where string, req *remote.Request) error {
	info, err := c.Platform(ctx)
	if err != nil {
		return err
	}
	cli := buildinfo.Get().Version
	shown := info.Version
	if shown == "" {
		shown = "older than v0.5.0"
	}
	msg := fmt.Sprintf("the platform in %s is %s, this CLI is %s", where, shown, cli)
	if req != nil {
		if newer := req.NewerThan(info.Version); len(newer) > 0 {
			return &problem.Problem{Msg: msg, Fix: fmt.Sprintf("run `replicator setup` to update it (this job uses %s, which the platform does not know)",
				strings.Join(newer, ", "))}
		}
	}
	if info.Version == "" && buildinfo.Released(cli) || buildinfo.Older(info.Version, cli) {
		fmt.Fprintf(ios.ErrOut, "warning: %s: run `replicator setup` to update it\n", msg)
	}
	return nil
}

// Where names a deployment for people: its stack, or its API's URL when
// that is how it was named (--api-url, $REPLICATOR_API_URL).
func (f *Flags) Where(c client.API) string {
	if f.APIURL != "" || os.Getenv("REPLICATOR_API_URL") != "" || f.Stack == "" {
		return c.Endpoint()
	}
	return f.Stack
}
