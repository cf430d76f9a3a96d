"""Back from ONNX to PyTorch: load a shipped `separator*.onnx` into a freshly built model.

Why: the ONNX file is what the repository keeps (checkpoints stay out of git), so continuing the
shipped model on a new machine, or fine-tuning it on a user's own data, must start from it
(`train.init_from_onnx`).

How, without knowing how the exporter laid out each tensor (a Linear's weight becomes a transposed
MatMul operand, a GRU's gates are reordered and its two biases concatenated): export the same
model once with every parameter element holding its own global index (1, 2, 3, ... in parameter
order; exact in float32 up to 2^24 elements), then read off, for each initializer of that
"signature" export, which parameter element landed at each position, and copy the source file's
value from that position. The round trip is then checked: the imported model exported again
must reproduce every initializer of the source file bit for bit.
"""

from __future__ import annotations

import hashlib
import tempfile
from pathlib import Path

import numpy as np
import torch

from .export import export_model

MAX_EXACT = 2**24  # float32 holds every integer up to this


class OnnxImportError(ValueError):
    """An ONNX file that does not fit the model (names the file and the tensor)."""


def check_onnx_file(path, sha256: str | None, key: str) -> None:
    """The file exists and, where `sha256` pins it, has that hash (`key` names the setting)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{key}: {path} does not exist")
    if not sha256:
        return
    got = hashlib.sha256(path.read_bytes()).hexdigest()
    if got != sha256.lower():
        raise OnnxImportError(f"{path}: sha256 {got}, but {key}_sha256 pins {sha256} (the run starts from that "
                              "model: `git log -- PATH` finds the commit that shipped it)")


def _initializers(path: Path) -> dict[str, np.ndarray]:
    import onnx
    from onnx import numpy_helper

    try:
        m = onnx.load(str(path))
    except Exception as e:  # noqa: BLE001 - onnx raises several types for a corrupt file
        raise OnnxImportError(f"{path}: not a readable ONNX model ({e})") from e
    return {i.name: numpy_helper.to_array(i) for i in m.graph.initializer}


def import_onnx(model: torch.nn.Module, cfg: dict, path, sha256: str | None = None,
                key: str = "train.init_from_onnx") -> list[str]:
    """Fill `model`'s parameters from the ONNX file at `path` (pinned by `sha256`, if given),
    exported from a model of the same configuration. Returns the parameters the file does not
    hold (training-only layers, e.g. the AV model's auxiliary head), which keep their fresh
    initialisation. `key` names the setting in errors."""
    check_onnx_file(path, sha256, key)
    path = Path(path)
    source = _initializers(path)
    params = list(model.named_parameters())
    total = sum(p.numel() for _, p in params)
    if total >= MAX_EXACT:
        raise OnnxImportError(f"{path}: the model has {total} parameters, more than the signature export can tell apart")
    saved = {n: p.detach().clone() for n, p in params}
    offsets, start = [], 0
    for _, p in params:
        offsets.append(start)
        start += p.numel()
    was_training = model.training
    model.eval()
    with tempfile.TemporaryDirectory() as tmp:
        with torch.no_grad():
            for (_, p), off in zip(params, offsets):
                p.copy_(torch.arange(off + 1, off + 1 + p.numel(), dtype=p.dtype).reshape(p.shape))
        export_model(model, cfg, Path(tmp) / "signature.onnx")
        signature = _initializers(Path(tmp) / "signature.onnx")
    flat = torch.zeros(total, dtype=torch.float64)
    seen = torch.zeros(total, dtype=torch.bool)
    for name, sig in signature.items():
        if not np.issubdtype(sig.dtype, np.floating) or sig.size == 0:
            continue  # shapes and indices the exporter adds
        idx = sig.astype(np.float64).ravel()
        if not (np.all(idx == np.round(idx)) and idx.min() >= 1 and idx.max() <= total):
            continue  # a constant of the graph (folded from buffers), not a parameter
        if name not in source or source[name].shape != sig.shape:
            got = "missing" if name not in source else f"shaped {source[name].shape}"
            raise OnnxImportError(f"{path}: initializer {name!r} is {got}, this model's export has {sig.shape}: "
                               "the file was exported from another configuration (model.* in the config) or exporter")
        i = torch.from_numpy(idx.astype(np.int64) - 1)
        flat[i] = torch.from_numpy(source[name].astype(np.float64).ravel())
        seen[i] = True
    missing = []
    with torch.no_grad():
        for (name, p), off in zip(params, offsets):
            got = seen[off: off + p.numel()]
            if bool(got.all()):
                p.copy_(flat[off: off + p.numel()].reshape(p.shape).to(p.dtype))
            elif not bool(got.any()):
                p.copy_(saved[name])
                missing.append(name)
            else:
                raise OnnxImportError(f"{path}: only part of parameter {name} is in the file")
    _check_round_trip(model, cfg, path, source)
    model.train(was_training)
    return missing


def _check_round_trip(model, cfg: dict, path: Path, source: dict[str, np.ndarray]) -> None:
    with tempfile.TemporaryDirectory() as tmp:
        export_model(model, cfg, Path(tmp) / "again.onnx")
        again = _initializers(Path(tmp) / "again.onnx")
    for name, arr in source.items():
        if name not in again or again[name].shape != arr.shape or not np.array_equal(again[name], arr):
            raise OnnxImportError(f"{path}: initializer {name!r} does not survive the round trip "
                               "(import, then export again): the file does not fit this model")
