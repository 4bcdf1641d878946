// Command replicator copies PostgreSQL clusters. main only wires the factory to
// the command tree and turns errors into one line and an exit code.
package main

import (
	"context"
	"os"
	"os/signal"
	"syscall"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/root"
	"github.com/replicatorhq/replicator/internal/buildinfo"
)

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := factory.New(buildinfo.Get())
	err := root.NewCmdRoot(f).ExecuteContext(ctx)
	return cmdutil.Exit(err, f.IOStreams.ErrOut)
}
