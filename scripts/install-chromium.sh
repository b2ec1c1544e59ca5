#!/usr/bin/env bash
# Installs Debian's chromium for the Web UI end-to-end test (test/ops/operator.test.ts).
# Idempotent: does nothing when /usr/bin/chromium exists. Never downloads a browser build.
set -euo pipefail
if [ -x /usr/bin/chromium ]; then
  echo /usr/bin/chromium
  exit 0
fi
SUDO=""
if [ "$(id -u)" -ne 0 ]; then SUDO="sudo"; fi
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2
$SUDO apt-get install -y -qq --no-install-recommends chromium fonts-dejavu-core >&2
echo /usr/bin/chromium
