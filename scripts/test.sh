#!/usr/bin/env bash
# `npm test`: installs what is missing, then runs every test with node's test runner.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/ensure-deps.sh
# After ensure-deps, whose npm install may undo it; without it the trainer falls back to wasm/cpu and says why.
bash scripts/install-tfjs-native.sh || echo "test: native TensorFlow backend not built (see above); training runs on wasm/cpu" >&2
DRYDOCK_TEMPORAL_BIN="$(bash scripts/install-temporal.sh)"
export DRYDOCK_TEMPORAL_BIN
DRYDOCK_MOTO_BIN="$(bash scripts/install-moto.sh)"
export DRYDOCK_MOTO_BIN
# Debian chromium for the Web UI test; without root it cannot install, and that test says so and skips.
# Under CI=true (.ci/run) nothing is optional: a chromium that cannot be installed fails the run here.
if ! bash scripts/install-chromium.sh >/dev/null; then
  if [ "${CI:-}" = true ]; then
    echo "test: could not install chromium, and CI=true needs it for the Web UI test" >&2
    exit 1
  fi
  echo "test: could not install chromium; the Web UI test will be skipped" >&2
fi
npx tsc --noEmit
# The longest files first (the chaos run, the shipped scenarios, the dev stack), so the lanes end
# together. Three files at a time: most of a file's time is spent waiting on timers, agents and
# the server, so on two cores three lanes keep them busy (a fresh-clone .ci/run: 21.5 min with
# two, 14.8 min with three). DRYDOCK_TEST_CONCURRENCY=1 runs one file at a time.
if [ "$#" -gt 0 ]; then FILES=("$@"); else
  mapfile -t FILES < <({ find test/sim test/e2e -name '*.test.ts' | sort; find test -name '*.test.ts' -not -path 'test/sim/*' -not -path 'test/e2e/*' | sort; })
fi
exec node --import tsx --test --test-concurrency="${DRYDOCK_TEST_CONCURRENCY:-3}" --test-force-exit --test-timeout=600000 --test-reporter=spec "${FILES[@]}"
