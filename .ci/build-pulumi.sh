#!/usr/bin/env bash
# Build the pulumi CLI (which the Automation API drives) from the Go module
# proxy, into ~/.cache/replicator: the test of `replicator setup` runs the real
# Pulumi engine offline. pkg/v3 and sdk/v3 must be the same version.
set -euo pipefail
VERSION=v3.274.1
OUT="$HOME/.cache/replicator/pulumi-$VERSION"
[ -x "$OUT" ] && exit 0
DIR="$HOME/.cache/replicator/pulumi-build"
mkdir -p "$DIR"
cd "$DIR"
[ -f go.mod ] || printf 'module pulumibuild\n\ngo 1.26\n' > go.mod
printf '//go:build tools\n\npackage tools\n\nimport _ "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi"\n' > tools.go
echo "building the pulumi CLI $VERSION (a few minutes, once)"
go get "github.com/pulumi/pulumi/pkg/v3@$VERSION" "github.com/pulumi/pulumi/sdk/v3@$VERSION" "github.com/pulumi/pulumi/pkg/v3/cmd/pulumi@$VERSION"
go mod tidy
go build -ldflags "-X github.com/pulumi/pulumi/sdk/v3/go/common/version.Version=$VERSION" -o "$OUT.tmp" github.com/pulumi/pulumi/pkg/v3/cmd/pulumi
mv "$OUT.tmp" "$OUT"
