package jobscmd

import (
	"context"
	"fmt"

	"github.com/spf13/cobra"

	"github.com/replicatorhq/replicator/cli/factory"
	"github.com/replicatorhq/replicator/internal/remote"
)

// CancelOptions of jobs cancel.
type CancelOptions struct {
	Common
	ID string
}

// NewCmdCancel builds jobs cancel.
func NewCmdCancel(f *factory.Factory, runF func(context.Context, *CancelOptions) error) *cobra.Command {
	opts := &CancelOptions{}
	cmd := &cobra.Command{
		Use: "cancel ID", Short: "Stop a job (the worker stops cleanly, or is terminated)", Args: cobra.ExactArgs(1),
		RunE: byID(opts, &opts.ID, runF, runCancel),
	}
	common(f, cmd, &opts.Common)
	return cmd
}

func runCancel(ctx context.Context, opts *CancelOptions) error {
	c, err := opts.api(ctx)
	if err != nil {
		return err
	}
	j, err := c.Cancel(ctx, opts.ID)
	if err != nil {
		return err
	}
	if opts.JSON {
		return printJSON(opts.IO.Out, j)
	}
	if j.Status == remote.Cancelled {
		fmt.Fprintf(opts.IO.Out, "job %s cancelled\n", j.ID)
	} else {
		fmt.Fprintf(opts.IO.Out, "job %s: cancel requested; the worker stops at its next heartbeat (replicator jobs watch %s)\n", j.ID, j.ID)
	}
	return nil
}
