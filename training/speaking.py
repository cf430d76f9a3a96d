"""The daemon's speaking decision (src/stream/speech.rs) replayed on a synthesized split, to choose
its constants on validation scenes rather than on the demo clip its test uses: `python -m training
speaking --config training/configs/cpu.toml --split val [--model models/separator.onnx]`.

Per 40 ms chunk and visible face: the face's voice estimate (the model's output times its output
gain, training/calibrate.py) is *voiced* when its mean square is above `active_dbfs` and at least
`share_db` of the mixture's; the face speaks after `onset` voiced chunks in a row and stops after
`hangover` unvoiced ones; with `below_loudest_db`, a voice more than that far below the
loudest face's voice in the chunk is not voiced either (another face's leakage; 200 = off) (the Rust rule, the same arithmetic on time-domain chunks instead of
spectra). The truth: a chunk of the face's own source louder than -50 dBFS is speech, and pauses
of up to 320 ms inside speech count as speech (a fixed convention, independent of the constants
tried). Reported per setting: chunk accuracy over all visible faces, speech found (recall), and
false alarms on chunks where the face is quiet; silent faces' chunks are among those.
"""

from __future__ import annotations

import itertools
from pathlib import Path

import numpy as np

from .calibrate import face_estimates, output_gain
from .evaluate import scenes
from .onnx_run import OnnxSeparator

CHUNK = 640
TRUTH_DBFS = -50.0
TRUTH_BRIDGE = 8  # chunks (320 ms)


def _chunks_ms(x: np.ndarray) -> np.ndarray:
    n = len(x) // CHUNK
    return np.mean(x[: n * CHUNK].reshape(n, CHUNK) ** 2, axis=1)


def _bridge(active: np.ndarray, gap: int) -> np.ndarray:
    """Fill runs of False no longer than `gap` that lie between two True chunks."""
    out = active.copy()
    idx = np.flatnonzero(active)
    for a, b in zip(idx[:-1], idx[1:]):
        if 1 < b - a <= gap + 1:
            out[a + 1 : b] = True
    return out


def decide(voice: np.ndarray, mixture: np.ndarray, loudest: np.ndarray, active_dbfs: float, share_db: float,
           onset: int, hangover: int, below_loudest_db: float) -> np.ndarray:
    """The Rust rule (speech.rs SpeechTracker) on per-chunk mean squares; `loudest` is the
    loudest voice of the scene's faces in each chunk."""
    voiced = ((voice > 10 ** (active_dbfs / 10)) & (voice > 10 ** (share_db / 10) * mixture)
              & (voice >= 10 ** (-below_loudest_db / 10) * loudest))
    speaking, against, out = False, 0, np.zeros(len(voice), bool)
    for i, v in enumerate(voiced):
        if v == speaking:
            against = 0
        else:
            against += 1
            if against >= (hangover if speaking else onset):
                speaking, against = v, 0
        out[i] = speaking
    return out


def speaking_sweep(cfg: dict, split: str, model_path: str | Path, grid: dict | None = None) -> dict:
    data = scenes(cfg, split)
    rows, ests = face_estimates(OnnxSeparator(model_path), data)
    gain_db = output_gain(data, rows, ests)["output_gain_db"]
    ests *= 10 ** (gain_db / 20)
    mixtures = data["mixture"].astype(np.float64)
    n = ests.shape[-1]
    voices = [_chunks_ms(y) for y in ests]
    loudest: dict[int, np.ndarray] = {}
    for (s, _), v in zip(rows, voices):
        loudest[s] = np.maximum(loudest.get(s, v), v)
    faces = []
    for (s, k), v in zip(rows, voices):
        src = data["sources"][s, k, :n].astype(np.float64)
        truth = _bridge(_chunks_ms(src) > 10 ** (TRUTH_DBFS / 10), TRUTH_BRIDGE)
        faces.append((v, _chunks_ms(mixtures[s, :n]), loudest[s], truth))
    grid = grid or {"active_dbfs": [-50.0], "share_db": [-15.0, -12.0, -9.0], "onset": [2, 3],
                    "hangover": [6, 8, 10], "below_loudest_db": [10.0, 15.0, 20.0, 200.0]}
    results = []
    for values in itertools.product(*grid.values()):
        p = dict(zip(grid.keys(), values))
        hit = miss = fa = quiet = 0
        for voice, mix, loud, truth in faces:
            flags = decide(voice, mix, loud, **p)
            hit += int(np.sum(flags & truth))
            miss += int(np.sum(~flags & truth))
            fa += int(np.sum(flags & ~truth))
            quiet += int(np.sum(~truth))
        total = hit + miss + quiet
        results.append({**p, "accuracy": round((hit + quiet - fa) / total, 4),
                        "recall": round(hit / max(hit + miss, 1), 4), "false_alarm": round(fa / max(quiet, 1), 4)})
    results.sort(key=lambda r: -r["accuracy"])
    return {"split": split, "model": str(model_path), "output_gain_db": gain_db, "faces": len(faces),
            "chunks": int(sum(len(f[3]) for f in faces)), "results": results}
