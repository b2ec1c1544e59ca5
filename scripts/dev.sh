#!/usr/bin/env bash
# `npm run dev`: installs what is missing, then runs the local dev stack (see scripts/dev.ts).
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# After ensure-deps, whose npm install may undo it; without it the trainer falls back to wasm/cpu and says why.
bash scripts/install-tfjs-native.sh || echo "dev: native TensorFlow backend not built (see above); training runs on wasm/cpu" >&2
DRYDOCK_TEMPORAL_BIN="$(bash scripts/install-temporal.sh)"
export DRYDOCK_TEMPORAL_BIN
exec node --import tsx scripts/dev.ts
