#!/usr/bin/env bash
# Installs moto's server (PyPI moto[server]) into a cached virtualenv outside the checkout
# and prints the path of moto_server. Tests run the real AWS SDK against it.
set -euo pipefail
VENV="${DRYDOCK_CACHE_DIR:-$HOME/.cache/drydock}/moto-venv"
BIN="$VENV/bin/moto_server"
if [ -x "$BIN" ]; then echo "$BIN"; exit 0; fi
echo "install-moto: creating $VENV and installing moto[server] (about a minute)..." >&2
python3 -m venv "$VENV" >&2
"$VENV/bin/pip" install --quiet --disable-pip-version-check 'moto[server]>=5,<6' >&2
echo "$BIN"
