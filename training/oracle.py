"""Oracle masks on a synthesized split: how far masking the mixture's STFT can go when the answer
is known (`python -m training oracle --split test`; numpy only, like `evaluate`).

For each talking face of each 2-talker scene, with S the face's source and R = X - S the rest of
the mixture (the other voice and the noise), in this project's STFT (docs/SIGNAL.md):
  IRM          |S| / (|S| + |R|) per bin (real, in [0, 1]);
  PSM          Re(S X*) / |X|^2 per bin, clipped to [0, 1] (phase-sensitive, still real);
  gain/frame   one broadband Wiener gain |S|^2 / (|S|^2 + |R|^2) per 10 ms frame, the same for
               every bin: what knowing only WHEN the face's voice dominates can give;
  gain/chunk   the same per 40 ms chunk, the resolution of the video.
The model's complex mask, bounded to 2, can in principle exceed all of these; the time-only gains
show what a model that gates by the mouth, without separating voices in frequency, can reach.
Scored like `evaluate` (SI-SDRi over the final part of the clip).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from . import metrics as M
from . import signal as S
from .config import data_dir
from .evaluate import EVAL_DIR
from .signal import CHUNK_FRAMES, STREAM_PAD
from .synth.scene import load_shards

ORACLE_DIR = EVAL_DIR / "oracle"
MASKS = ("IRM", "PSM", "gain/frame", "gain/chunk")


def _masks(Sx: np.ndarray, X: np.ndarray) -> dict[str, np.ndarray]:
    R = X - Sx
    es, er = np.sum(np.abs(Sx) ** 2, 1), np.sum(np.abs(R) ** 2, 1)
    C = CHUNK_FRAMES
    T = len(es) // C * C
    chunk = np.ones_like(es)
    es4, er4 = (v[:T].reshape(-1, C).sum(1).repeat(C) for v in (es, er))
    chunk[:T] = es4 / (es4 + er4 + 1e-12)
    return {"IRM": np.abs(Sx) / (np.abs(Sx) + np.abs(R) + 1e-9),
            "PSM": np.clip(np.real(Sx * np.conj(X)) / (np.abs(X) ** 2 + 1e-9), 0.0, 1.0),
            "gain/frame": (es / (es + er + 1e-12))[:, None],
            "gain/chunk": chunk[:, None]}


def oracle(cfg: dict, split: str, out_dir: Path = ORACLE_DIR) -> dict:
    """Mean SI-SDRi (dB) of each oracle mask over the talking faces of 2-talker scenes; writes
    models/eval/oracle/<split>.json."""
    data = load_shards(data_dir(cfg) / split)
    out = {"split": split, "talkers": 2, **score_oracles(data)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{split}.json").write_text(json.dumps(out, indent=1) + "\n")
    return out


def score_oracles(data: dict) -> dict:
    """Scenes in the shard layout -> {"faces": n, "si_sdri": {mask: mean SI-SDRi}} (2-talker scenes)."""
    scores: dict[str, list[float]] = {k: [] for k in MASKS}
    for s in np.nonzero(data["speaking"].sum(1) == 2)[0]:
        x = data["mixture"][s].astype(np.float64)
        n, nf = len(x), len(x) - STREAM_PAD
        X = S.stream_stft(x)
        for k in np.nonzero(data["speaking"][s])[0]:
            src = data["sources"][s, k].astype(np.float64)
            for name, m in _masks(S.stream_stft(src), X).items():
                y = S.stream_istft(m * X, n)[:nf]
                scores[name].append(float(M.si_sdri(y, src[:nf], x[:nf], zero_mean=True)))
    return {"faces": len(scores["IRM"]), "si_sdri": {k: float(np.mean(v)) for k, v in scores.items()}}
