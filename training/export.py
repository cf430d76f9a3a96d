"""ONNX export of the streaming call: `python -m training export --config ...`.

Graph inputs: mix [B,2,4,257], (roi [B,1,48,48]), state_gru, (state_prev_roi), (with look-ahead:
state_h_hist, state_e_hist);
outputs: mask [B,2,4,257] (audio-only baseline: [B,2,2,4,257], two outputs) and the new states
(same names with "_out"). metadata "mask_outputs" = 1 (AV) or 2 (audio-only). Batch is dynamic, every
other axis fixed. metadata_props carry the signal constants that the daemon checks at load time.
Then checks ONNX Runtime against PyTorch over several chained chunks (max abs diff <= 1e-4).
"""

from __future__ import annotations

import hashlib
import json
from pathlib import Path

import numpy as np
import torch

from .config import run_dir
from .model import CHUNK_FRAMES, N_BINS, ROI_SIZE, count_params, flops_per_second
from .onnx_run import EXPECTED_META
from .model_setup import load_model

PARITY_TOL = 1e-4


def io_names(model) -> tuple[list[str], list[str], list[str], list[str]]:
    """(inputs, outputs, state inputs, state outputs), in the order of `Separator.forward`; the
    states are the model's own (`state_shapes`), each named state_<name>."""
    states = [f"state_{k}" for k in model.state_shapes(1)]
    inputs = ["mix"] + (["roi"] if model.kind == "av" else []) + states
    outputs = ["mask"] + [s + "_out" for s in states]
    return inputs, outputs, states, [s + "_out" for s in states]


def metadata(model, cfg: dict) -> dict[str, str]:
    inputs, outputs, states, states_out = io_names(model)
    contract = {
        **EXPECTED_META, "lookahead_frames": str(model.lookahead_frames),
        "state_inputs": ",".join(states), "state_outputs": ",".join(states_out),
        "inputs": ",".join(inputs), "outputs": ",".join(outputs),
        "model_kind": model.kind, "config_name": cfg["name"], "mask_outputs": str(model.n_out),
    }
    if hasattr(model, "metadata"):  # v8 fused (training/fusion.py): its members' shapes
        return contract | model.metadata()
    return contract | {
        "parameters": str(count_params(model)), "flops_per_second": str(int(flops_per_second(model))),
        "hidden": str(model.hidden), "gru_hidden": str(model.gru_hidden), "gru_layers": str(model.layers), "post_blocks": str(model.post_blocks),
        "band_head": str(model.band_head),
        "roi_norm": str(int(model.roi_norm)),
        "select": str(int(model.select)),
    }


def example_inputs(model, batch: int = 2, seed: int = 0) -> list[torch.Tensor]:
    g = torch.Generator().manual_seed(seed)
    mix = torch.randn(batch, 2, CHUNK_FRAMES, N_BINS, generator=g)
    st = model.initial_state(batch)
    xs = [mix]
    if model.kind == "av":
        xs.append(torch.rand(batch, 1, ROI_SIZE, ROI_SIZE, generator=g))
    return xs + list(st.values())  # state_shapes' order is forward's


def export_model(model, cfg: dict, path, opset: int = 17) -> None:
    import onnx

    inputs, outputs, _, _ = io_names(model)
    dyn = {n: {0: "batch"} for n in inputs + outputs}
    with torch.no_grad():
        try:
            torch.onnx.export(model, tuple(example_inputs(model)), str(path), input_names=inputs,
                              output_names=outputs, dynamic_axes=dyn, opset_version=opset, dynamo=False)
        except (TypeError, RuntimeError, ImportError) as e:  # legacy exporter gone: use dynamo
            print(f"[export] legacy exporter failed ({e}); using dynamo", flush=True)
            batch = torch.export.Dim("batch", min=1, max=64)
            torch.onnx.export(model, tuple(example_inputs(model)), str(path), input_names=inputs,
                              output_names=outputs, dynamic_shapes=tuple({0: batch} for _ in inputs),
                              opset_version=opset, dynamo=True)
    m = onnx.load(str(path))
    for k, v in metadata(model, cfg).items():
        p = m.metadata_props.add()
        p.key, p.value = k, v
    onnx.checker.check_model(m)
    onnx.save(m, str(path))


def parity(model, path, batch: int = 3, chunks: int = 5) -> float:
    """Max |ORT - torch| / max(1, |torch|) over `chunks` chained streaming calls (states fed back)."""
    import onnxruntime as ort

    so = ort.SessionOptions()
    so.intra_op_num_threads = 1
    sess = ort.InferenceSession(str(path), so, providers=["CPUExecutionProvider"])
    inputs, outputs, _, _ = io_names(model)
    xs = example_inputs(model, batch)
    state_t = xs[2:] if model.kind == "av" else xs[1:]
    state_o = [t.numpy() for t in state_t]
    worst = 0.0
    g = torch.Generator().manual_seed(1)
    for _ in range(chunks):
        mix = torch.randn(batch, 2, CHUNK_FRAMES, N_BINS, generator=g)
        head = [mix] + ([torch.rand(batch, 1, ROI_SIZE, ROI_SIZE, generator=g)] if model.kind == "av" else [])
        with torch.no_grad():
            ref = model(*head, *state_t)
        got = sess.run(outputs, {n: t.numpy() for n, t in zip(inputs, head)} |
                       dict(zip(inputs[len(head):], state_o)))
        for r, o in zip(ref, got):
            # relative where a value is above 1 (the fused model's power and sums states reach
            # 1e5, where float32 rounding alone is 1e-2); absolute elsewhere (masks are ~1)
            worst = max(worst, float(np.max(np.abs(r.numpy() - o) / np.maximum(1.0, np.abs(r.numpy())))))
        state_t, state_o = list(ref[1:]), got[1:]
    return worst


def export(cfg: dict, out=None) -> dict:
    """Export the run's model.pt to `out` (default training/runs/<run>/separator-<run>.onnx)."""
    torch.set_num_threads(1)
    model = load_model(cfg)
    out = Path(out) if out else run_dir(cfg) / f"separator-{run_dir(cfg).name}.onnx"
    export_model(model, cfg, out, int(cfg["export"].get("opset", 17)))
    diff = parity(model, out)
    tol = getattr(model, "parity_tol", PARITY_TOL)
    info = {"onnx": str(out), "bytes": out.stat().st_size,
            "sha256": hashlib.sha256(out.read_bytes()).hexdigest(), "parity_max_abs_diff": diff,
            "ok": diff <= tol}
    print(json.dumps(info), flush=True)
    if diff > tol:
        raise SystemExit(f"ONNX parity {diff:.2e} > {tol}")
    return info
