#!/usr/bin/env bash
# Installs the Temporal CLI v1.5.1 into a cache outside the checkout and prints its path.
# Built from source with `go install` because no prebuilt binary can be downloaded here;
# later tags carry a replace directive and cannot be built this way.
set -euo pipefail
VERSION="v1.5.1"
DIR="${DRYDOCK_CACHE_DIR:-$HOME/.cache/drydock}/temporal-$VERSION"
BIN="$DIR/temporal"
if [ -x "$BIN" ] && "$BIN" --version >/dev/null 2>&1; then
  echo "$BIN"
  exit 0
fi
if ! command -v go >/dev/null 2>&1; then
  echo "install-temporal: Go is required to build the Temporal CLI $VERSION (install Go 1.22+ and retry)" >&2
  exit 1
fi
mkdir -p "$DIR"
echo "install-temporal: building Temporal CLI $VERSION with go install into $DIR (takes several minutes the first time)..." >&2
GOBIN="$DIR" GOFLAGS=-mod=mod go install "github.com/temporalio/cli/cmd/temporal@$VERSION" >&2
"$BIN" --version >&2
echo "$BIN"
