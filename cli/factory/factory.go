// Package factory hands commands their dependencies: the streams, a logger, the
// PostgreSQL client tools, the job API's client. Commands take a *Factory rather than reaching for
// globals, so tests can swap any of them.
package factory

import (
	"context"
	"io"
	"log/slog"

	"github.com/replicatorhq/replicator/internal/buildinfo"
	"github.com/replicatorhq/replicator/internal/iostreams"
	"github.com/replicatorhq/replicator/internal/pgtools"
	"github.com/replicatorhq/replicator/internal/remote/client"
)

// Factory is created once in main and passed to every command.
type Factory struct {
	IOStreams *iostreams.IOStreams
	// Build is what this binary is (--version; the platform setup deploys
	// carries its Version).
	Build buildinfo.Info
	// Verbose is set by the --verbose flag before a command runs.
	Verbose bool
	// FindTools locates pg_dump and friends (dir from --pg-bin, "" to search).
	FindTools func(ctx context.Context, dir string) (*pgtools.Tools, error)
	// JobClient opens the job API of a deployment, when a command needs it.
	JobClient func(ctx context.Context, t client.Target) (client.API, error)
}

// New returns the factory for a real process.
func New(build buildinfo.Info) *Factory {
	return &Factory{
		IOStreams: iostreams.System(),
		Build:     build,
		FindTools: pgtools.Find,
		JobClient: func(ctx context.Context, t client.Target) (client.API, error) { return client.Open(ctx, t) },
	}
}

// Logger writes diagnostics to stderr: warnings by default, everything with
// --verbose.
func (f *Factory) Logger(w io.Writer) *slog.Logger {
	level := slog.LevelWarn
	if f.Verbose {
		level = slog.LevelDebug
	}
	return slog.New(slog.NewTextHandler(w, &slog.HandlerOptions{Level: level}))
}
