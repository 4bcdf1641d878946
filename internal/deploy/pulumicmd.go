package deploy

import (
	"context"
	"fmt"
	"io"
	"os"
	"os/exec"

	"github.com/pulumi/pulumi/sdk/v3/go/auto"
)

// FindPulumi returns the pulumi CLI the Automation API drives: the one under
// $REPLICATOR_PULUMI_ROOT (a directory holding bin/pulumi), the one on PATH, or
// one installed for the user under ~/.pulumi/versions (downloaded once).
func FindPulumi(ctx context.Context, out io.Writer) (auto.PulumiCommand, error) {
	if root := os.Getenv("REPLICATOR_PULUMI_ROOT"); root != "" {
		return auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: root, SkipVersionCheck: true})
	}
	if _, err := exec.LookPath("pulumi"); err == nil {
		if cmd, err := auto.NewPulumiCommand(nil); err == nil {
			return cmd, nil
		}
	}
	if cmd, err := auto.NewPulumiCommand(&auto.PulumiCommandOptions{Root: defaultRoot()}); err == nil {
		return cmd, nil
	}
	fmt.Fprintf(out, "Installing the pulumi CLI into %s (the deployment engine; no Pulumi account is needed)\n", defaultRoot())
	cmd, err := auto.InstallPulumiCommand(ctx, &auto.PulumiCommandOptions{Root: defaultRoot()})
	if err != nil {
		return nil, fmt.Errorf("install the pulumi CLI: %w (install it yourself from https://www.pulumi.com/docs/install/, or set REPLICATOR_PULUMI_ROOT)", err)
	}
	return cmd, nil
}

func defaultRoot() string {
	home, _ := os.UserHomeDir()
	return home + "/.pulumi/versions/replicator"
}
