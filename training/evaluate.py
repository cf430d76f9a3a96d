"""Evaluation on synthesized val/test scenes: `python -m training evaluate --config ... --split val`.

Per talking face slot: SI-SDR, SI-SDRi, SDRi (training/metrics.py) of the model's estimate (run
through `forward_sequence`, which the tests show equals the streaming call) against that face's
source; assignment accuracy per scene; for visible-but-silent faces the output-to-mixture energy
ratio in dB (lower is better). The first PAD samples (STFT priming) are removed before scoring.
"""

from __future__ import annotations

import json

import numpy as np
import torch

from . import metrics as M
from . import signal as S
from .config import data_dir, run_dir
from .synth.scene import load_shards
from .train import PAD, forward_batch, load_model


def evaluate(cfg: dict, split: str = "val") -> dict:
    torch.set_num_threads(1)
    model = load_model(cfg)
    data = load_shards(data_dir(cfg) / split)
    n = data["mixture"].shape[1]
    res = {"si_sdr": [], "si_sdri": [], "sdri": [], "silent_db": [], "assign": []}
    for s in range(len(data["mixture"])):
        slots = np.nonzero(data["present"][s])[0]
        mix = torch.from_numpy(np.repeat(data["mixture"][s][None], len(slots), 0))
        rois = torch.from_numpy(data["rois"][s, slots].astype(np.float32) / 255.0)[:, :, None]
        with torch.no_grad():
            est, _ = forward_batch(model, mix, rois)
        est = est.numpy()
        ests = np.zeros_like(data["sources"][s], dtype=np.float64)
        for j, k in enumerate(slots):
            ests[k] = S.istft(est[j], length=n + PAD)[PAD:]
        x = data["mixture"][s].astype(np.float64)
        talking = data["speaking"][s]
        for k in slots:
            if talking[k]:
                src = data["sources"][s, k]
                res["si_sdr"].append(float(M.si_sdr(ests[k], src)))
                res["si_sdri"].append(float(M.si_sdri(ests[k], src, x)))
                res["sdri"].append(float(M.sdri(ests[k], src, x)))
            else:
                res["silent_db"].append(float(10 * np.log10((np.sum(ests[k] ** 2) + 1e-12) / (np.sum(x ** 2) + 1e-12))))
        if talking.sum() >= 2:
            res["assign"].append(M.assignment_accuracy(ests, data["sources"][s], talking))
    summary = {"split": split, "scenes": int(len(data["mixture"])), "model_kind": model.kind,
               "talking_slots": len(res["si_sdr"]), "silent_slots": len(res["silent_db"])}
    for k, v in res.items():
        summary[f"mean_{k}"] = float(np.mean(v)) if v else None
    out = run_dir(cfg) / f"eval-{split}.json"
    out.write_text(json.dumps(summary, indent=1))
    return summary
