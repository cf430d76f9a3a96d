#!/usr/bin/env bash
# `make setup-gpu`: ONNX Runtime's CUDA build for running the models on an NVIDIA GPU (README
# "GPU"). From PyPI only, pinned by version and sha256: the onnxruntime-gpu wheel (256 MB, CUDA 13
# and cuDNN 9 builds) gives libonnxruntime.so.1.31.1 and its CUDA provider libraries, unpacked to
# .cache/onnxruntime-gpu/lib/. Idempotent: nothing is downloaded or unpacked twice.
# Then: daemon.onnxruntime_library = "<that folder>/libonnxruntime.so.1.31.1" (or ORT_DYLIB_PATH),
# and daemon.execution_provider = "auto" or "cuda". The machine needs the NVIDIA driver, CUDA 13
# runtime libraries and cuDNN 9 on its library path; without them `auto` falls back to the CPU
# with a warning and `cuda` refuses to start.
set -euo pipefail
cd "$(dirname "$0")/.."
CACHE=$PWD/.cache
VERSION=1.31.1
WHEEL=onnxruntime_gpu-$VERSION-cp311-cp311-manylinux_2_28_x86_64.whl
SHA256=e26c475fe361b2015f45b4b824bd13f0bb20204e59b62814e6f0acd5f3d491a6
LIB=$CACHE/onnxruntime-gpu/lib
FILES="libonnxruntime.so.$VERSION libonnxruntime_providers_shared.so libonnxruntime_providers_cuda.so"

say() { printf 'setup-gpu: %s\n' "$*"; }
missing=0
for f in $FILES; do [ -f "$LIB/$f" ] || missing=1; done
if [ $missing = 0 ]; then
  say "ONNX Runtime CUDA build at $LIB/libonnxruntime.so.$VERSION"
  exit 0
fi
# shellcheck source=scripts/ort-wheel.sh
. scripts/ort-wheel.sh
say "the CUDA build's wheel is 256 MB"
# shellcheck disable=SC2086  # FILES is a list of plain names
ort_from_wheel "$CACHE" onnxruntime-gpu "$VERSION" "$WHEEL" "$SHA256" "$LIB" $FILES
say "ONNX Runtime CUDA build at $LIB/libonnxruntime.so.$VERSION"
