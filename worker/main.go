// Command worker runs one replicator job on its EC2 instance. It is started at
// boot by the image's systemd unit; the instance's user data carries the job id
// and the table name, nothing else.
package main

import (
	"bufio"
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net/netip"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/feature/ec2/imds"

	"github.com/replicatorhq/replicator/internal/conninfo"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	"github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/logs"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
	"github.com/replicatorhq/replicator/internal/remote/worker"
)

func main() {
	jobID := flag.String("job-id", os.Getenv("REPLICATOR_JOB_ID"), "job to run (default: from the instance's user data)")
	table := flag.String("table", os.Getenv("REPLICATOR_TABLE"), "jobs table (default: from the instance's user data)")
	instanceID := flag.String("instance-id", os.Getenv("REPLICATOR_INSTANCE_ID"), "this instance (default: from instance metadata)")
	pgBin := flag.String("pg-bin", "", "PostgreSQL client tools directory")
	image := flag.String("image-id", os.Getenv("REPLICATOR_IMAGE_ID"), "this instance's AMI, said by the job's checks (default: from instance metadata)")
	flag.Parse()
	log := slog.New(slog.NewJSONHandler(os.Stderr, nil))
	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGTERM, os.Interrupt)
	defer stop()
	if err := run(ctx, log, *jobID, *table, *instanceID, *pgBin, *image); err != nil {
		log.Error("worker failed", "err", err)
		os.Exit(1)
	}
}

func run(ctx context.Context, log *slog.Logger, jobID, table, instanceID, pgBin, image string) error {
	if jobID == "" || table == "" || instanceID == "" {
		meta := imds.New(imds.Options{})
		if jobID == "" || table == "" {
			out, err := meta.GetUserData(ctx, &imds.GetUserDataInput{})
			if err != nil {
				return fmt.Errorf("read user data: %w", err)
			}
			vars := parseEnv(out.Content)
			jobID, table = first(jobID, vars["REPLICATOR_JOB_ID"]), first(table, vars["REPLICATOR_TABLE"])
		}
		if instanceID == "" {
			out, err := meta.GetMetadata(ctx, &imds.GetMetadataInput{Path: "instance-id"})
			if err != nil {
				return fmt.Errorf("read instance id: %w", err)
			}
			b, _ := io.ReadAll(out.Content)
			instanceID = strings.TrimSpace(string(b))
		}
		if image == "" {
			// Said by the job's checks; a worker without it still works.
			if out, err := meta.GetMetadata(ctx, &imds.GetMetadataInput{Path: "ami-id"}); err == nil {
				b, _ := io.ReadAll(out.Content)
				image = strings.TrimSpace(string(b))
			}
		}
	}
	clients, err := awsenv.Load(ctx, config.WithEC2IMDSRegion(), awsenv.Record("worker"))
	if err != nil {
		return err
	}
	store := store.New(clients.DynamoDB, table)
	store.OnDrift = func(job string, n int) {
		log.Warn("a slot counter was already at zero when the job ended; the reaper recomputes it", "job", job, "counters", n)
	}
	platform, err := store.GetPlatform(ctx)
	if err != nil {
		return err
	}
	tools, err := pgtools.Find(ctx, pgBin)
	if err != nil {
		return err
	}
	w := &worker.Worker{
		JobID: jobID, InstanceID: instanceID, Store: store,
		Secrets: &secrets.Store{SM: clients.SecretsManager, Stack: platform.Stack, Prefix: platform.SecretPrefix},
		Logs:    &logs.Writer{CW: clients.Logs, Group: platform.LogGroup, Stream: jobID},
		Events:  &events.Publisher{Client: clients.EventBridge, Stack: platform.Stack, Log: log},
		Metrics: &metrics.Publisher{Client: clients.CloudWatch, Stack: platform.Stack, Log: log},
		// The emulated platform publishes more often than every 30 s.
		MetricsEvery: durationEnv("REPLICATOR_METRICS_EVERY"),
		Tools:        tools, TempDir: os.TempDir(), Log: log.With("job", jobID, "instance", instanceID),
		Allow: allowFromEnv(), Image: image,
	}
	return w.Run(ctx)
}

func parseEnv(r io.Reader) map[string]string {
	out := map[string]string{}
	sc := bufio.NewScanner(r)
	for sc.Scan() {
		if k, v, ok := strings.Cut(strings.TrimSpace(sc.Text()), "="); ok {
			out[k] = v
		}
	}
	return out
}

func first(a, b string) string {
	if a != "" {
		return a
	}
	return b
}

// allowFromEnv is the worker's network policy: conninfo.Allowed, except that
// the emulated platform (internal/testenv/devstack), whose databases are on
// loopback, sets REPLICATOR_ALLOW_LOOPBACK=1. On EC2 the worker's environment
// comes from the image's boot unit, which takes only the job id and the table
// from the user data: a caller cannot set it.
func allowFromEnv() func(netip.Addr) error {
	if os.Getenv("REPLICATOR_ALLOW_LOOPBACK") != "1" {
		return conninfo.Allowed
	}
	return func(a netip.Addr) error {
		if a.Unmap().IsLoopback() {
			return nil
		}
		return conninfo.Allowed(a)
	}
}

// durationEnv reads a duration from the environment (0 when unset or bad).
func durationEnv(name string) time.Duration {
	d, _ := time.ParseDuration(os.Getenv(name))
	return d
}
