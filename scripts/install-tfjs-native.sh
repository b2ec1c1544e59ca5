#!/usr/bin/env bash
# Builds TensorFlow.js's native backend without its install script (which downloads libtensorflow
# and a prebuilt addon from a host these machines cannot reach) and makes this checkout use it:
#   1. libtensorflow from the PyPI TensorFlow 2.15.1 wheel (tensorflow-cpu, or tensorflow plus the
#      CUDA 12 wheels that its [and-cuda] extra names for --gpu): downloaded once with pip, only the
#      two libraries and the headers the addon needs are kept, in a cache outside the checkout;
#   2. the addon of @tensorflow/tfjs-node(-gpu) 4.22.0, compiled there with npm's node-gyp against
#      Node's own headers (nothing downloaded), plus drydock's small device-list addon (scripts/native);
#   3. node_modules/@tensorflow/tfjs-node(-gpu) in this checkout: a copy of that package whose deps/
#      points into the cache, with its runtime dependencies nested inside it.
# Idempotent and cheap when done: a stamp in the package says which build it holds, so running it
# again after `npm install` (which removes the package: its own install script fails here) only
# copies it back (~1 s). Exit 1 when it cannot build; the trainer then falls back (wasm, cpu) and says why.
#   bash scripts/install-tfjs-native.sh [--gpu] [--print-downloads] [--quiet]
#     --gpu               tfjs-node-gpu with the CUDA build of TensorFlow and the nvidia-*-cu12 wheels
#     --print-downloads   print the pip commands it would run, and exit
# Env: DRYDOCK_CACHE_DIR (default ~/.cache/drydock); DRYDOCK_TF_NATIVE=0 skips it (exit 0).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
MODE=cpu
PRINT=0
QUIET=0
for arg in "$@"; do
  case "$arg" in
    --gpu) MODE=gpu ;;
    --cpu) MODE=cpu ;;
    --print-downloads) PRINT=1 ;;
    --quiet) QUIET=1 ;;
    -h | --help) sed -n '2,19p' "$0" | sed 's/^# \{0,1\}//'; exit 0 ;;
    *) echo "install-tfjs-native: unknown option '$arg' (expected --gpu, --cpu, --print-downloads, --quiet)" >&2; exit 2 ;;
  esac
done
say() { [ "$QUIET" = 1 ] || echo "install-tfjs-native: $*" >&2; }
die() { echo "install-tfjs-native: $*" >&2; exit 1; }
if [ "${DRYDOCK_TF_NATIVE:-1}" = 0 ]; then say "skipped (DRYDOCK_TF_NATIVE=0)"; exit 0; fi

TFJS_VERSION=4.22.0
TF_VERSION=2.15.1
NAPI=8 # the highest N-API version tfjs-node's package.json lists; node-pre-gyp looks in lib/napi-v8
PY_TARGET=(--python-version 3.11 --platform manylinux2014_x86_64 --only-binary=:all:)
if [ "$MODE" = gpu ]; then PKG=@tensorflow/tfjs-node-gpu WHEEL=tensorflow; else PKG=@tensorflow/tfjs-node WHEEL=tensorflow-cpu; fi
CACHE="${DRYDOCK_CACHE_DIR:-$HOME/.cache/drydock}"
DIR="$CACHE/tfjs-native/${PKG#@tensorflow/}-$TFJS_VERSION-tf$TF_VERSION-napi$NAPI"
TARGET="$ROOT/node_modules/$PKG"
BUILT="$DIR/pkg/node_modules/$PKG"

pip_download() { # args: requirement… ; into $DIR/wheels
  local cmd=(python3 -m pip download --quiet --disable-pip-version-check --no-deps "${PY_TARGET[@]}" -d "$DIR/wheels" "$@")
  if [ "$PRINT" = 1 ]; then echo "${cmd[*]}"; return 0; fi
  "${cmd[@]}" >&2
}

# The CUDA wheels are the [and-cuda] extra of the tensorflow wheel's own metadata, so they always match it.
cuda_requirements() {
  python3 - "$1" <<'EOF'
import re, sys, zipfile
z = zipfile.ZipFile(sys.argv[1])
meta = next(n for n in z.namelist() if n.endswith('.dist-info/METADATA'))
for line in z.read(meta).decode().splitlines():
    m = re.match(r"Requires-Dist: (nvidia-[\w-]+) \(==([\w.]+)\) ; extra == .and-cuda.", line)
    if m: print(f"{m.group(1)}=={m.group(2)}")
EOF
}

if [ "$PRINT" = 1 ]; then
  pip_download "$WHEEL==$TF_VERSION"
  if [ "$MODE" = gpu ]; then
    # Resolved from PyPI's metadata only (pip's dry run), without the 475 MB wheel; the real install
    # reads the same list from the downloaded wheel's METADATA.
    report=$(mktemp)
    scratch=$(mktemp -d)
    python3 -m pip install --dry-run --quiet --disable-pip-version-check --ignore-installed --target "$scratch" \
      "${PY_TARGET[@]}" --report "$report" "$WHEEL[and-cuda]==$TF_VERSION" >&2
    mapfile -t reqs < <(python3 -c "
import json, sys
for i in json.load(open(sys.argv[1]))['install']:
    m = i['metadata']
    if m['name'].startswith('nvidia-'): print(m['name'] + '==' + m['version'])" "$report")
    rm -rf "$report" "$scratch"
    pip_download "${reqs[@]}"
  fi
  exit 0
fi

# Applied already? (the stamp names the build; the addon and the libraries must still be there)
stamp_ok() {
  [ -f "$DIR/build-id" ] && [ -f "$TARGET/.drydock-native" ] && [ "$(cat "$DIR/build-id")" = "$(cat "$TARGET/.drydock-native")" ] &&
    [ -f "$TARGET/lib/napi-v$NAPI/tfjs_binding.node" ] && [ -e "$TARGET/deps/lib/libtensorflow.so" ] && [ -d "$TARGET/node_modules/@mapbox/node-pre-gyp" ]
}
if stamp_ok; then say "$PKG already uses TensorFlow $TF_VERSION from $DIR"; exit 0; fi

mkdir -p "$DIR"
exec 9>"$DIR/.lock"
command -v flock >/dev/null 2>&1 && flock 9 # one build at a time per cache (parallel test runs, helpers)

# 1. libtensorflow and headers from the wheel(s)
if [ ! -f "$DIR/deps/lib/libtensorflow_cc.so.2" ]; then
  command -v python3 >/dev/null 2>&1 && python3 -m pip --version >/dev/null 2>&1 || die "python3 with pip is needed to download the $WHEEL wheel from PyPI (apt-get install python3-pip)"
  rm -rf "$DIR/wheels" "$DIR/deps.tmp"
  mkdir -p "$DIR/wheels" "$DIR/deps.tmp/lib"
  say "downloading $WHEEL==$TF_VERSION from PyPI (CPU 207 MB, GPU 475 MB; once)..."
  pip_download "$WHEEL==$TF_VERSION" || die "pip could not download $WHEEL==$TF_VERSION"
  wheel=$(ls "$DIR"/wheels/*.whl | head -1)
  if [ "$MODE" = gpu ]; then
    mapfile -t reqs < <(cuda_requirements "$wheel")
    [ "${#reqs[@]}" -gt 0 ] || die "no [and-cuda] requirements in $(basename "$wheel")"
    say "downloading the CUDA 12 wheels: ${reqs[*]}"
    pip_download "${reqs[@]}" || die "pip could not download the CUDA wheels"
  fi
  # Keep only what the addon needs: the two libraries, the C API headers, and the CUDA wheels' lib folders.
  python3 - "$DIR/deps.tmp" "$DIR"/wheels/*.whl <<'EOF'
import os, shutil, sys, zipfile
out, wheels = sys.argv[1], sys.argv[2:]
headers = ('tensorflow/include/tensorflow/c/', 'tensorflow/include/tensorflow/core/platform/', 'tensorflow/include/tsl/c/', 'tensorflow/include/tsl/platform/')
libs = {'tensorflow/libtensorflow_cc.so.2', 'tensorflow/libtensorflow_framework.so.2'}
for w in wheels:
    with zipfile.ZipFile(w) as z:
        for info in z.infolist():
            n = info.filename
            if n.endswith('/'): continue
            if n in libs: dest = os.path.join(out, 'lib', os.path.basename(n))
            elif n.startswith(headers): dest = os.path.join(out, 'include', n[len('tensorflow/include/'):])
            elif n.startswith('nvidia/') and '/lib/' in n: dest = os.path.join(out, n)
            else: continue
            os.makedirs(os.path.dirname(dest), exist_ok=True)
            with z.open(info) as src, open(dest, 'wb') as dst: shutil.copyfileobj(src, dst)
EOF
  (
    cd "$DIR/deps.tmp/lib"
    ln -sf libtensorflow_cc.so.2 libtensorflow.so       # -ltensorflow
    ln -sf libtensorflow_framework.so.2 libtensorflow_framework.so
    ln -sf libtensorflow_cc.so.2 libtensorflow.so.2.9.1 # what tfjs-node's install.js checks for
    if [ -d ../nvidia ]; then
      # libtensorflow_cc's RUNPATH has $ORIGIN/../nvidia/<x>/lib for most CUDA libraries and $ORIGIN for
      # the rest: link every CUDA library here too, so no LD_LIBRARY_PATH is needed.
      find ../nvidia -path '*/lib/*.so*' -type f -exec ln -sf {} . \;
    fi
  )
  rm -rf "$DIR/deps" "$DIR/wheels"
  mv "$DIR/deps.tmp" "$DIR/deps"
  rm -f "$DIR/build-id"
fi

# 2. the package's JavaScript (no install script) and its addon, built from source against Node's headers
if [ ! -f "$DIR/build-id" ]; then
  NODEDIR="$(npm config get nodedir 2>/dev/null || true)"
  if [ -z "$NODEDIR" ] || [ "$NODEDIR" = undefined ] || [ ! -f "$NODEDIR/include/node/common.gypi" ]; then
    NODEDIR="$(dirname "$(dirname "$(readlink -f "$(command -v node)")")")"
  fi
  [ -f "$NODEDIR/include/node/common.gypi" ] || die "Node's headers are not under $NODEDIR/include/node (install the nodejs package with its headers, or set npm's nodedir)"
  NODE_GYP="$(dirname "$(readlink -f "$(command -v npm)")")/../node_modules/node-gyp/bin/node-gyp.js"
  [ -f "$NODE_GYP" ] || die "npm's bundled node-gyp is missing ($NODE_GYP)"
  command -v make >/dev/null 2>&1 && command -v g++ >/dev/null 2>&1 || die "make and g++ are needed to build the addon (apt-get install build-essential)"
  rm -rf "$DIR/pkg"
  mkdir -p "$DIR/pkg"
  printf '{"name":"drydock-tfjs-native","private":true,"dependencies":{"%s":"%s"}}\n' "$PKG" "$TFJS_VERSION" > "$DIR/pkg/package.json"
  say "installing $PKG@$TFJS_VERSION's JavaScript (npm, --ignore-scripts)..."
  (cd "$DIR/pkg" && npm install --ignore-scripts --no-audit --no-fund --no-package-lock --loglevel=error >&2) || die "npm could not install $PKG@$TFJS_VERSION"
  ln -sfn "$DIR/deps" "$BUILT/deps"
  say "compiling the addon with node-gyp against $NODEDIR/include/node..."
  (cd "$BUILT" && node "$NODE_GYP" rebuild --nodedir="$NODEDIR" --jobs=2 --loglevel=warn \
    --module_name=tfjs_binding --module_path="$BUILT/lib/napi-v$NAPI" --napi_build_version=$NAPI >&2) || die "node-gyp could not build the addon"
  rm -rf "$BUILT/build"
  # The cache keeps the package and its own dependencies, not its copy of tfjs (the checkout has one).
  find "$DIR/pkg/node_modules/@tensorflow" -mindepth 1 -maxdepth 1 ! -name "${PKG#@tensorflow/}" -exec rm -rf {} +
  cc -shared -fPIC -O2 -DNAPI_VERSION=$NAPI -DNODE_GYP_MODULE_NAME=drydock_tf_devices -I"$NODEDIR/include/node" -I"$DIR/deps/include" \
    "$ROOT/scripts/native/tf_devices.c" -L"$DIR/deps/lib" -ltensorflow -Wl,-rpath,'$ORIGIN' -o "$DIR/deps/lib/drydock_tf_devices.node" || die "could not build drydock_tf_devices.node"
  sha256sum "$BUILT/lib/napi-v$NAPI/tfjs_binding.node" "$DIR/deps/lib/drydock_tf_devices.node" | sha256sum | cut -c1-16 > "$DIR/build-id"
fi

# 3. this checkout's node_modules/<pkg>: the package with deps/ → the cache, its own dependencies nested
[ -d "$ROOT/node_modules/@tensorflow/tfjs" ] || die "node_modules/@tensorflow/tfjs is missing: run npm install first (scripts/ensure-deps.sh)"
rm -rf "$TARGET.tmp"
cp -a "$BUILT" "$TARGET.tmp"
mkdir -p "$TARGET.tmp/node_modules"
# Its dependency closure from the cache's flat install, minus @tensorflow/* (those resolve to the checkout's own tfjs).
node - "$DIR/pkg/node_modules" "$PKG" <<'EOF' | while read -r dep; do mkdir -p "$(dirname "$TARGET.tmp/node_modules/$dep")"; cp -a "$DIR/pkg/node_modules/$dep" "$TARGET.tmp/node_modules/$dep"; done
const { readFileSync, existsSync } = require('node:fs');
const [root, pkg] = process.argv.slice(2);
const seen = new Set();
const visit = (name) => {
  const meta = JSON.parse(readFileSync(`${root}/${name}/package.json`, 'utf8'));
  for (const dep of Object.keys({ ...meta.dependencies, ...meta.optionalDependencies })) {
    if (dep.startsWith('@tensorflow/') || seen.has(dep) || !existsSync(`${root}/${dep}/package.json`)) continue;
    seen.add(dep);
    visit(dep);
  }
};
visit(pkg);
console.log([...seen].join('\n'));
EOF
cp "$DIR/build-id" "$TARGET.tmp/.drydock-native"
rm -rf "$TARGET"
mv "$TARGET.tmp" "$TARGET"

# Check it loads here, as the trainer will (a child process; TensorFlow's start-up logs kept apart).
log=$(mktemp)
if ! out=$(cd "$ROOT" && TF_CPP_MIN_LOG_LEVEL=2 node -e "
  const tf = require('$PKG');
  tf.ready().then(() => console.log(tf.getBackend() + ' ' + tf.backend().binding.TF_Version));
" 2>"$log"); then
  err=$(grep -m1 -i error "$log" || tail -1 "$log")
  rm -f "$log"
  die "$PKG was built but does not load: $err"
fi
rm -f "$log"
say "$PKG uses TensorFlow ${out#* } (backend ${out%% *}) from $DIR"
