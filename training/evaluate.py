"""Evaluation on synthesized val/test scenes: `python -m training evaluate --config ... --split test
[--kind audio]`.

AV model: per talking face slot, SI-SDR, SI-SDRi, SDRi (training/metrics.py, zero-mean SI-SDR) of
the model's estimate for that face (run through `forward_sequence`, which the tests show equals
the streaming call) against that face's source; face->voice assignment accuracy per scene with
>= 2 talkers (metrics.assignment_accuracy); for visible-but-silent faces the output-to-mixture
energy ratio in dB (lower is better).

Audio-only baseline (2 outputs, no face input): each talking source is scored against the output
that the BEST assignment of outputs to sources gives it (an oracle permutation, which the
daemon could not know: the baseline's figures are an upper bound for it). In 3-talker scenes the
third voice gets no output and is scored with the mixture itself (SI-SDRi 0 dB). Assignment
accuracy is not defined for it (chance is 1/2).

Results are broken down by the number of talkers in the scene (2, 3; 1 = speech + noise only).
The first PAD samples (STFT priming) are removed before scoring.
"""

from __future__ import annotations

import itertools
import json

import numpy as np
import torch

from . import metrics as M
from . import signal as S
from .config import data_dir, run_dir
from .synth.scene import load_shards
from .train import PAD, forward_batch, load_model


def _scores(y, src, x) -> tuple[float, float, float]:
    return (float(M.si_sdr(y, src, zero_mean=True)), float(M.si_sdri(y, src, x, zero_mean=True)),
            float(M.sdri(y, src, x)))


def evaluate(cfg: dict, split: str = "val") -> dict:
    torch.set_num_threads(1)
    model = load_model(cfg)
    data = load_shards(data_dir(cfg) / split)
    n = data["mixture"].shape[1]
    groups: dict[str, dict[str, list]] = {}

    def add(group: str, key: str, v: float) -> None:
        for g in (group, "all"):
            groups.setdefault(g, {}).setdefault(key, []).append(v)

    for s in range(len(data["mixture"])):
        talking = data["speaking"][s]
        slots = np.nonzero(data["present"][s])[0]
        x = data["mixture"][s].astype(np.float64)
        g = f"{int(talking.sum())}spk"
        add(g, "scenes", 1.0)
        if model.kind == "av":
            mix = torch.from_numpy(np.repeat(data["mixture"][s][None], len(slots), 0))
            rois = torch.from_numpy(data["rois"][s, slots].astype(np.float32) / 255.0)[:, :, None]
            with torch.no_grad():
                est, _ = forward_batch(model, mix, rois)
            ests = np.zeros(data["sources"][s].shape, dtype=np.float64)
            for j, k in enumerate(slots):
                ests[k] = S.istft(est[j].numpy(), length=n + PAD)[PAD:]
            for k in slots:
                if talking[k]:
                    for key, v in zip(("si_sdr", "si_sdri", "sdri"), _scores(ests[k], data["sources"][s, k], x)):
                        add(g, key, v)
                else:
                    add(g, "silent_db", float(10 * np.log10((np.sum(ests[k] ** 2) + 1e-12) / (np.sum(x ** 2) + 1e-12))))
            if talking.sum() >= 2:
                add(g, "assign", M.assignment_accuracy(ests, data["sources"][s], talking))
        else:
            with torch.no_grad():
                est, _ = forward_batch(model, torch.from_numpy(data["mixture"][s][None]), None)
            outs = [S.istft(est[0, o].numpy(), length=n + PAD)[PAD:] for o in range(est.shape[1])]
            srcs = [data["sources"][s, k] for k in np.nonzero(talking)[0]]
            best, best_sum = None, -np.inf
            for perm in itertools.permutations(range(max(len(outs), len(srcs))), len(srcs)):
                sc = [(_scores(outs[o], src, x) if o < len(outs) else _scores(x, src, x))
                      for o, src in zip(perm, srcs)]
                tot = sum(c[0] for c in sc)
                if tot > best_sum:
                    best, best_sum = sc, tot
            for sc in best:
                for key, v in zip(("si_sdr", "si_sdri", "sdri"), sc):
                    add(g, key, v)
    summary = {"split": split, "scenes": int(len(data["mixture"])), "model_kind": model.kind,
               "run": run_dir(cfg).name, "by_talkers": {}}
    for grp in sorted(groups):
        d = {k: (float(np.mean(v)) if k != "scenes" else int(len(v))) for k, v in groups[grp].items()}
        d["talking_slots"] = len(groups[grp].get("si_sdr", []))
        summary["by_talkers"][grp] = d
    out = run_dir(cfg) / f"eval-{split}.json"
    out.write_text(json.dumps(summary, indent=1))
    return summary
