"""Where an AV "select" model (v4s) loses against ideal selection: `python -m training diagnose
--config training/configs/<run>.toml --split test` (PyTorch; the run's model.pt).

For every talking face in the split's 2-talker scenes it scores (SI-SDRi, dB, the final part of the
clip as in evaluate.py): the mask the face selects (what the exported model returns), each of the
two internal masks, and the better of them for this face (ideal selection). The gap between
"selected" and "best internal" is what selection costs; "best internal" against the audio-only
baseline's oracle-ordered figure says how well the AV model separates.
"""

from __future__ import annotations

import numpy as np
import torch

from . import metrics as M
from . import signal as S
from .config import data_dir
from .onnx_run import PAD
from .synth.scene import load_shards
from .model_setup import load_model


def diagnose(cfg: dict, split: str = "test") -> dict:
    model = load_model(cfg)
    if not model.select:
        raise SystemExit(f"diagnose: {cfg['name']} is not a select (v4s) AV model")
    return {"run": cfg["name"], "split": split, **score_selection(model, load_shards(data_dir(cfg) / split))}


def score_selection(model, data: dict) -> dict:
    """Mean SI-SDRi over the talking faces of `data`'s 2-talker scenes (shard layout) for the
    selected mask, each internal mask and the better internal one."""
    scores = []  # per talking face: selected, internal 0, internal 1
    for s in np.nonzero(data["speaking"].sum(1) == 2)[0]:
        x = data["mixture"][s].astype(np.float64)
        n = len(x) - PAD
        X = S.stream_stft(x)
        faces = np.nonzero(data["speaking"][s])[0]
        inp = torch.from_numpy(S.to_model_input(X))[None].expand(len(faces), -1, -1, -1)
        rois = torch.from_numpy(data["rois"][s, faces].astype(np.float32) / 255.0)[:, :, None]
        with torch.no_grad():  # both faces of the scene in one batch
            mask, _, internal = model.forward_parts(inp, rois)
        for b, k in enumerate(faces):
            scores.append([float(M.si_sdri(S.stream_istft(S.apply_mask(m.numpy(), X), len(x))[:n],
                                           data["sources"][s, k, :n], x[:n], zero_mean=True))
                           for m in (mask[b], internal[b, 0], internal[b, 1])])
    a = np.array(scores)
    means = {"selected": a[:, 0], "internal_0": a[:, 1], "internal_1": a[:, 2], "best_internal": a[:, 1:].max(1)}
    return {"faces": len(a), "si_sdri_2spk": {k: round(float(v.mean()), 3) for k, v in means.items()}}
