// Command replicator copies PostgreSQL clusters. main only wires the factory to
// the command tree and turns errors into one line and an exit code.
package main

import (
	"context"
	"errors"
	"fmt"
	"os"
	"os/signal"
	"syscall"

	"github.com/replicatorhq/replicator/cli/cmdutil"
	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/remoteui"
	"github.com/replicatorhq/replicator/cli/root"
)

// version is set at build time with -ldflags "-X main.version=...".
var version = "dev"

func main() {
	os.Exit(run())
}

func run() int {
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	f := factory.New(version)
	cmd := root.NewCmdRoot(f)
	err := cmd.ExecuteContext(ctx)
	if err == nil {
		return 0
	}
	var detached *remoteui.Detached
	if errors.As(err, &detached) {
		fmt.Fprintln(f.IOStreams.ErrOut, detached.Error())
		return 130
	}
	var flagErr *cmdutil.FlagError
	if errors.As(err, &flagErr) || cmdutil.IsUsageError(err) {
		fmt.Fprintln(f.IOStreams.ErrOut, "error: "+cmdutil.OneLine(err)+" (see replicator --help)")
		return 2
	}
	fmt.Fprintln(f.IOStreams.ErrOut, "error: "+cmdutil.OneLine(err))
	return 1
}
