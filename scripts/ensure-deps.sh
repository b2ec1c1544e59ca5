#!/usr/bin/env bash
# Installs npm dependencies when node_modules is missing or package.json changed since the last install.
# Uses `npm install` (which installs the committed lockfile's versions) rather than `npm ci`: npm
# leaves other platforms' optional binaries (swc, node-llama-cpp) out of a lock made on Linux, and
# `npm ci` then refuses the lock as out of sync. Arguments go to npm install (the images and the CI
# examples pass --omit=dev --ignore-scripts; never --omit=optional, which drops esbuild's and swc's
# platform binaries); the stamp remembers them. test/structure/artifacts.test.ts runs them.
set -euo pipefail
cd "$(dirname "$0")/.."
STAMP=node_modules/.drydock-deps
WANT="$(sha256sum package.json | cut -d' ' -f1) $*"
if [ ! -f "$STAMP" ] || [ "$(cat "$STAMP")" != "$WANT" ]; then
  echo "ensure-deps: installing npm dependencies (npm install)..." >&2
  npm install --no-audit --no-fund "$@" >&2
  echo "$WANT" > "$STAMP"
fi
