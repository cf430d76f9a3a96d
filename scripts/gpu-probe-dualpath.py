"""Time training steps of the dual-path separator (v13, training/band_model.py) on this machine's
GPU, beside the chunk-GRU Separator of the shipped recipe, at one batch size: forward, SI-SDR-free
loss (mean square of the masks: the cost is the network's, not the loss's) and backward, after a
warm-up. For a GPU lease (scripts/gpu-train.sh, PROBE_DUALPATH=1): on the CPU the dual-path
model learns faster per step but runs 3 times slower per step (MODELS.md "v13"); whether a lease
should train it depends on its speed there.
    python scripts/gpu-probe-dualpath.py [--batch 256] [--steps 20]"""

from __future__ import annotations

import argparse
import json
import time

import torch

from training.band_model import BandSeparator
from training.model import Separator


def time_steps(model: torch.nn.Module, batch: int, steps: int, device: str) -> float:
    """Seconds per training step (2 s clips: 200 frames, 50 ROIs)."""
    model.to(device).train()
    opt = torch.optim.Adam(model.parameters(), 1e-4)
    mix = torch.randn(batch, 2, 200, 257, device=device)
    rois = torch.rand(batch, 50, 1, 48, 48, device=device) if model.kind == "av" else None
    for i in range(steps + 3):
        if i == 3:
            if device == "cuda":
                torch.cuda.synchronize()
            t0 = time.perf_counter()
        mask = model.forward_sequence(mix, rois)
        loss = mask.square().mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
    if device == "cuda":
        torch.cuda.synchronize()
    return (time.perf_counter() - t0) / steps


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--batch", type=int, default=256)
    ap.add_argument("--steps", type=int, default=20)
    a = ap.parse_args()
    device = "cuda" if torch.cuda.is_available() else "cpu"
    if device == "cuda":
        torch.backends.cudnn.benchmark = True
    # pairs first (the ratio is what matters), in case the time runs out
    models = {
        "dualpath_audio_48": BandSeparator("audio"),
        "chunk_gru_audio (v11s)": Separator("audio", post_blocks=2, lookahead=2),
        "dualpath_av_48": BandSeparator("av"),
        "chunk_gru_av (v11s)": Separator("av", post_blocks=2, select=True, roi_norm=True, lookahead=2),
        "dualpath_audio_32": BandSeparator("audio", dim=32),
    }
    out = {"device": torch.cuda.get_device_name() if device == "cuda" else "cpu", "batch": a.batch}
    for name, m in models.items():
        out[name] = round(time_steps(m, a.batch, a.steps, device), 4)
        print(f"[probe] {name}: {out[name] * 1000:.1f} ms per step at batch {a.batch}", flush=True)
    print(json.dumps(out))


if __name__ == "__main__":
    main()
