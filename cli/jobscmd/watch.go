package jobscmd

import (
	"context"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/cli/remoteui"
)

// WatchOptions of jobs watch.
type WatchOptions struct {
	Common
	ID string
}

// NewCmdWatch builds jobs watch.
func NewCmdWatch(f *factory.Factory, runF func(context.Context, *WatchOptions) error) *cobra.Command {
	opts := &WatchOptions{}
	cmd := &cobra.Command{
		Use: "watch ID", Short: "Follow a job to its end, with the same display as a local run", Args: cobra.ExactArgs(1),
		RunE: byID(opts, &opts.ID, runF, runWatch),
	}
	common(f, cmd, &opts.Common)
	return cmd
}

func runWatch(ctx context.Context, opts *WatchOptions) error {
	c, err := opts.api(ctx)
	if err != nil {
		return err
	}
	return remoteui.Watch(ctx, opts.IO, c, opts.ID, opts.JSON)
}
