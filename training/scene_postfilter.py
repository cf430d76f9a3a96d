"""A scene-level post-filter on the AV model's voices, measured (not shipped): `python -m training
postfilter --config training/configs/cpu.toml --split val [--model models/separator.onnx]`.

The daemon calls the model for every visible face of a scene in one batch, so it could make the
faces' estimates compete: each face keeps, per time-frequency bin, the share of its own estimate's
power among all faces' (plus, optionally, the residual's, the mixture minus all estimates):
    Y_k' = Y_k * (|Y_k|^2 / (sum_j |Y_j|^2 + [|X - sum_j Y_j|^2]))^a
A voice leaking into another face's estimate would lose the bins where its own face claims more.
Scored like `evaluate` (SI-SDRi of each talking face, the clip without its last 352 samples; a
silent face's output energy re the mixture), for the plain model and each variant. MODELS.md
"Scene post-filter" has the figures and why it is not in the daemon.
"""

from __future__ import annotations

import numpy as np

from . import metrics as M
from . import signal as S
from .evaluate import scenes
from .onnx_run import PAD, OnnxSeparator

# (exponent a, with the residual term); None: the model's own estimates
VARIANTS = {"none": None, "share": (1.0, False), "share^0.5": (0.5, False), "share+residual": (1.0, True),
            "(share+residual)^0.5": (0.5, True), "(share+residual)^0.25": (0.25, True)}


def masked_spectra(model: OnnxSeparator, mixtures: np.ndarray, rois: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """The mixture's spectrum and each row's masked spectrum, from the same streamed calls as
    `OnnxSeparator.separate`, before the iSTFT."""
    X, mask = model.masks(mixtures, rois)
    return X, np.stack([S.apply_mask(mask[b], X[b]) for b in range(len(X))])


def postfilter(Y: np.ndarray, X: np.ndarray, exponent: float, residual: bool) -> np.ndarray:
    """Y [faces, T, F] complex estimates of one scene, X [T, F] its mixture."""
    P = np.abs(Y) ** 2
    den = P.sum(0) + (np.abs(X - Y.sum(0)) ** 2 if residual else 0.0) + 1e-12
    return Y * (P / den) ** exponent


def scene_postfilter(cfg: dict, split: str, model_path: str, gain_db: float) -> dict:
    model = OnnxSeparator(model_path)
    data = scenes(cfg, split)
    mix = data["mixture"].astype(np.float64)
    present, speaking = data["present"].astype(bool), data["speaking"].astype(bool)
    n = mix.shape[1]
    nf = n - PAD
    scores = {v: {} for v in VARIANTS}
    for s in range(len(mix)):
        ks = np.flatnonzero(present[s])
        X, Y = masked_spectra(model, np.repeat(mix[s][None], len(ks), 0), data["rois"][s, ks])
        X, Y = X[0], Y * 10 ** (gain_db / 20)  # the daemon's level: the residual depends on it
        group = f"{int(speaking[s].sum())}spk"
        for name, v in VARIANTS.items():
            Z = Y if v is None else postfilter(Y, X, *v)
            for i, k in enumerate(ks):
                y, x = S.stream_istft(Z[i], n)[:nf], mix[s, :nf]
                if speaking[s, k]:
                    src = data["sources"][s, k, :nf].astype(np.float64)
                    scores[name].setdefault(group, []).append(float(M.si_sdri(y, src, x, zero_mean=True)))
                else:
                    e = 10 * np.log10((np.sum(y ** 2) + 1e-20) / (np.sum(x ** 2) + 1e-20))
                    scores[name].setdefault("silent_db", []).append(float(e))
    return {"split": split, "model": model_path, "output_gain_db": gain_db,
            "variants": {name: {g: {"mean": round(float(np.mean(v)), 2), "n": len(v)} for g, v in sorted(r.items())}
                         for name, r in scores.items()}}
