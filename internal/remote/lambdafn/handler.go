// Package lambdafn is the platform's Lambda function: one binary that answers
// API Gateway (HTTP API payload 2.0) requests and runs the reaper when
// EventBridge's schedule invokes it.
package lambdafn

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"os"

	"github.com/aws/aws-lambda-go/events"

	"github.com/replicatorhq/replicator/internal/remote/api"
	"github.com/replicatorhq/replicator/internal/remote/awsenv"
	jobevents "github.com/replicatorhq/replicator/internal/remote/events"
	"github.com/replicatorhq/replicator/internal/remote/launch"
	"github.com/replicatorhq/replicator/internal/remote/lifecycle"
	"github.com/replicatorhq/replicator/internal/remote/metrics"
	"github.com/replicatorhq/replicator/internal/remote/reaper"
	"github.com/replicatorhq/replicator/internal/remote/secrets"
	"github.com/replicatorhq/replicator/internal/remote/store"
)

// Handler dispatches invocations.
type Handler struct {
	API    *api.API
	Reaper *reaper.Reaper
}

// New wires the handler from the environment and the default AWS credentials.
func New(ctx context.Context) (*Handler, error) {
	cfg, err := awsenv.FromEnv()
	if err != nil {
		return nil, err
	}
	c, err := awsenv.Load(ctx, awsenv.Record("lambda"))
	if err != nil {
		return nil, err
	}
	return With(ctx, cfg, c, slog.New(slog.NewJSONHandler(os.Stderr, nil)))
}

// With wires the handler from explicit configuration and clients.
func With(ctx context.Context, cfg awsenv.Config, c *awsenv.Clients, log *slog.Logger) (*Handler, error) {
	jobStore := store.New(c.DynamoDB, cfg.Table)
	jobStore.OnDrift = func(job string, n int) {
		log.Warn("a slot counter was already at zero when the job ended; the reaper recomputes it", "job", job, "counters", n)
	}
	secrets := &secrets.Store{SM: c.SecretsManager, Stack: cfg.Stack, Prefix: cfg.SecretPrefix, KMSKeyID: cfg.KMSKeyID}
	launcher := &launch.Launcher{EC2: c.EC2, Stack: cfg.Stack, LaunchTemplate: cfg.LaunchTemplate, Version: cfg.LaunchTemplateVersion,
		SubnetIDs: cfg.SubnetIDs, Table: cfg.Table}
	publisher := &jobevents.Publisher{Client: c.EventBridge, Stack: cfg.Stack, Log: log}
	meter := &metrics.Publisher{Client: c.CloudWatch, Stack: cfg.Stack, Log: log}
	life := &lifecycle.Lifecycle{Store: jobStore, Secrets: secrets, Launcher: launcher, EC2: c.EC2, InstanceARN: cfg.InstanceARN,
		Events: publisher, Metrics: meter, Log: log}
	// Workers learn the platform's names from the table.
	if err := jobStore.PutPlatform(ctx, store.Platform{LogGroup: cfg.LogGroup, SecretPrefix: cfg.SecretPrefix, Stack: cfg.Stack,
		ArtifactsBucket: cfg.ArtifactsBucket, WorkerKey: cfg.WorkerKey}); err != nil {
		return nil, fmt.Errorf("record platform configuration: %w", err)
	}
	return &Handler{
		API:    &api.API{Config: cfg, Store: jobStore, Secrets: secrets, Life: life, Logs: c.Logs, Log: log},
		Reaper: &reaper.Reaper{Config: cfg, Store: jobStore, Life: life, EC2: c.EC2, Events: publisher, Metrics: meter, Log: log},
	}, nil
}

// Invoke handles one raw event: a scheduled EventBridge event runs the reaper,
// anything else is an API Gateway request.
func (h *Handler) Invoke(ctx context.Context, raw json.RawMessage) (json.RawMessage, error) {
	var probe struct {
		Source     string `json:"source"`
		DetailType string `json:"detail-type"`
	}
	if err := json.Unmarshal(raw, &probe); err != nil {
		return nil, fmt.Errorf("unreadable event: %w", err)
	}
	if probe.Source == "aws.events" {
		rep, err := h.Reaper.Run(ctx)
		if err != nil {
			return nil, err
		}
		return json.Marshal(rep)
	}
	var req events.APIGatewayV2HTTPRequest
	if err := json.Unmarshal(raw, &req); err != nil {
		return nil, fmt.Errorf("unreadable request: %w", err)
	}
	resp, err := h.API.Handle(ctx, req)
	if err != nil {
		return nil, err
	}
	return json.Marshal(resp)
}
