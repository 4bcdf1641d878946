package deploy

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs"
	lgtypes "github.com/aws/aws-sdk-go-v2/service/cloudwatchlogs/types"
	"github.com/aws/aws-sdk-go-v2/service/dynamodb"
	ddbtypes "github.com/aws/aws-sdk-go-v2/service/dynamodb/types"
	"github.com/aws/aws-sdk-go-v2/service/ec2"
	"github.com/aws/aws-sdk-go-v2/service/secretsmanager"

	"github.com/replicatorhq/replicator/internal/remote"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/lifecycle"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/stacknames"
)

// Jobs is what teardown needs of a stack's jobs. Everything here is scoped by
// the stack's name and tag: stacks side by side never touch each other.
type Jobs struct {
	Stack string
	Store *store.Store // nil when the stack has no table (nothing was deployed)
	life  *lifecycle.Lifecycle
	ec2   *ec2.Client
}

// StackJobs opens the jobs of stack (table "" when there is none).
func StackJobs(cfg aws.Config, stack, table string) *Jobs {
	n := stacknames.Of(stack)
	j := &Jobs{Stack: stack, ec2: ec2.NewFromConfig(cfg)}
	secrets := &secrets.Store{SM: secretsmanager.NewFromConfig(cfg), Stack: stack, Prefix: n.SecretPrefix()}
	if table != "" {
		j.Store = store.New(dynamodb.NewFromConfig(cfg), table)
	}
	j.life = &lifecycle.Lifecycle{Store: j.Store, Secrets: secrets, EC2: j.ec2, Log: slog.New(slog.DiscardHandler)}
	return j
}

// Active lists the jobs still queued or running. A table that does not exist
// (a setup that stopped before creating it) has none.
func (j *Jobs) Active(ctx context.Context) ([]*remote.Job, error) {
	if j.Store == nil {
		return nil, nil
	}
	active, err := j.Store.ListActive(ctx)
	var nf *ddbtypes.ResourceNotFoundException
	if errors.As(err, &nf) {
		return nil, nil
	}
	return active, err
}

// Cancel ends active jobs as cancelled (status, instance, secret).
func (j *Jobs) Cancel(ctx context.Context, active []*remote.Job, reason string, out io.Writer) error {
	for _, job := range active {
		_, err := j.life.End(ctx, job, lifecycle.End{To: remote.Cancelled, Error: reason, Message: reason})
		if err != nil && !lifecycle.IsConflict(err) {
			return fmt.Errorf("cancel %s: %w", job.ID, err)
		}
		fmt.Fprintf(out, "Cancelled job %s\n", job.ID)
	}
	return nil
}

// StopWorkers terminates every worker instance of the stack still up.
func (j *Jobs) StopWorkers(ctx context.Context, out io.Writer) error {
	ws, err := launch.Workers(ctx, j.ec2, j.Stack)
	if err != nil {
		return err
	}
	var ids []string
	for _, w := range ws {
		ids = append(ids, w.ID)
	}
	if len(ids) == 0 {
		return nil
	}
	if err := launch.Terminate(ctx, j.ec2, ids...); err != nil {
		return err
	}
	fmt.Fprintf(out, "Terminated %d worker instance(s)\n", len(ids))
	return nil
}

// RemoveSecrets deletes the job secrets of the stack a crash left behind.
func (j *Jobs) RemoveSecrets(ctx context.Context, out io.Writer) error {
	ids, err := j.life.Secrets.List(ctx)
	if err != nil {
		return err
	}
	for _, id := range ids {
		if err := j.life.Secrets.Delete(ctx, id); err != nil {
			return err
		}
	}
	if len(ids) > 0 {
		fmt.Fprintf(out, "Deleted %d job secret(s) left behind\n", len(ids))
	}
	return nil
}

// RemoveLogGroups deletes the stack's log groups that outlive a destroy:
// Image Builder's (it creates /aws/imagebuilder/RECIPE when a build starts
// before the stack's own group exists) and any other of the stack's stacknames.
func RemoveLogGroups(ctx context.Context, cfg aws.Config, stack string, out io.Writer) error {
	n := stacknames.Of(stack)
	c := cloudwatchlogs.NewFromConfig(cfg)
	for _, g := range []string{n.ImageLogGroup(), n.JobsLogGroup(), n.FunctionLogGroup()} {
		_, err := c.DeleteLogGroup(ctx, &cloudwatchlogs.DeleteLogGroupInput{LogGroupName: aws.String(g)})
		var nf *lgtypes.ResourceNotFoundException
		if errors.As(err, &nf) {
			continue
		}
		if err != nil {
			return fmt.Errorf("delete log group %s: %w", g, err)
		}
		fmt.Fprintf(out, "Deleted the log group %s\n", g)
	}
	return nil
}
