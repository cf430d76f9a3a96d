#!/usr/bin/env bash
# One-time (and idempotent) set-up of everything avsepd needs on Debian 12, from the package
# registries only: apt packages, the ONNX Runtime library from the pinned PyPI wheel, and the
# Python venv for the CPU-side tools and tests. A second run takes a second or two.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
CACHE=$ROOT/.cache

ORT_VERSION=1.32.0
ORT_WHEEL=onnxruntime-1.32.0-cp311-cp311-manylinux_2_28_x86_64.whl
ORT_SHA256=5a34fc4dfeb5a7b4a74c95dcba1e773d722abda720b474edf1b0c419dc6d163d
ORT_LIB=$CACHE/onnxruntime/lib/libonnxruntime.so.$ORT_VERSION

say() { printf 'setup: %s\n' "$*"; }
# shellcheck source=scripts/ort-wheel.sh
. scripts/ort-wheel.sh
as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# 1. Debian packages.
mapfile -t wanted < <(grep -v '^#' scripts/apt-packages.txt | awk 'NF {print $1}')
missing=()
for p in "${wanted[@]}"; do
  dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q 'install ok installed' || missing+=("$p")
done
if [ ${#missing[@]} -gt 0 ]; then
  say "installing ${#missing[@]} Debian packages: ${missing[*]}"
  as_root apt-get update -qq
  as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
while read -r name version; do
  have=$(dpkg-query -W -f='${Version}' "$name")
  if [ "${have%%-*}" != "${version%%-*}" ]; then
    echo "setup: $name is $have, but avsepd is built for upstream ${version%%-*} (scripts/apt-packages.txt)" >&2
    exit 1
  fi
done < <(grep -v '^#' scripts/apt-packages.txt | awk 'NF {print $1, $2}')

# 2. ONNX Runtime shared library, from the pinned PyPI wheel, sha256-checked.
if [ ! -f "$ORT_LIB" ]; then
  ort_from_wheel "$CACHE" onnxruntime "$ORT_VERSION" "$ORT_WHEEL" "$ORT_SHA256" "$(dirname "$ORT_LIB")" \
    "libonnxruntime.so.$ORT_VERSION"
  say "ONNX Runtime library at $ORT_LIB"
fi

# 3. Python venv for the numpy-side tools and tests (no PyTorch here: see training/).
REQ=training/requirements-ci.txt
STAMP=$CACHE/venv/.requirements.sha256
if [ ! -f "$STAMP" ] || ! sha256sum -c --quiet "$STAMP" >/dev/null 2>&1; then
  say "creating the Python venv (.cache/venv) from $REQ"
  python3 -m venv "$CACHE/venv"
  "$CACHE/venv/bin/python" -m pip install -q --disable-pip-version-check -r "$REQ"
  sha256sum "$REQ" > "$STAMP"
fi
say "ok"
