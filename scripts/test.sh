#!/usr/bin/env bash
# `npm test`: installs what is missing, then runs every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
DRYDOCK_TEMPORAL_BIN="$(bash scripts/install-temporal.sh)"
export DRYDOCK_TEMPORAL_BIN
DRYDOCK_MOTO_BIN="$(bash scripts/install-moto.sh)"
export DRYDOCK_MOTO_BIN
npx tsc --noEmit
if [ "$#" -gt 0 ]; then FILES=("$@"); else mapfile -t FILES < <(find test -name '*.test.ts' | sort); fi
exec node --import tsx --test --test-concurrency=1 --test-reporter=spec "${FILES[@]}"
