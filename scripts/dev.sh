#!/usr/bin/env bash
# `npm run dev`: installs what is missing, then runs the local dev stack (see scripts/dev.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
DRYDOCK_TEMPORAL_BIN="$(bash scripts/install-temporal.sh)"
export DRYDOCK_TEMPORAL_BIN
exec node --import tsx scripts/dev.ts
