"""Output level of a face-conditioned separator: `python -m training calibrate --config
training/configs/cpu.toml --split val --model models/separator.onnx [--write]`.

The separators are trained with a scale-invariant loss (SI-SDR), so the level of a model's output
is its own: the shipped v15s comes out 20-30 dB below the voice it extracts. A listener (and the
daemon's speaking decision, src/stream/speech.rs) needs each voice at about the level it has in
the mixture, so the daemon multiplies every mask by one gain per model: `output_gain_db`.

The gain is the median, over the talking faces of a split's scenes, of the least-squares gain that
matches the estimate y to the face's own voice s, 20 log10(<y, s> / <y, y>); the quartiles say how
far one face may land from its level. Faces whose estimate is mostly another voice (a wrong
assignment) would pull it, so only faces whose SI-SDR to their own voice is above 0 dB count. A
visible face that does not speak is reported too, after the gain, relative to the mixture: it must
stay far below it. The split is a validation one: the gain is a fit choice, like a model's.

`--write` stores the gain in the file's metadata_props (`output_gain_db`), which changes its
sha256; the shipped files keep their pinned bytes and the daemon knows their gains by sha256
(src/model/face_separator.rs `KNOWN_OUTPUT_GAINS`).
"""

from __future__ import annotations

import hashlib
from pathlib import Path

import numpy as np

from . import metrics as M
from .evaluate import scenes
from .onnx_run import PAD, ModelError, OnnxSeparator


def least_squares_gain_db(y: np.ndarray, s: np.ndarray) -> float:
    """20 log10 of the a that minimises |s - a y|^2 (dB); nan when y is silent or opposite."""
    yy = float(np.dot(y, y))
    ys = float(np.dot(y, s))
    if yy <= 0.0 or ys <= 0.0:
        return float("nan")
    return 20.0 * np.log10(ys / yy)


def face_estimates(model: OnnxSeparator, data: dict) -> tuple[np.ndarray, np.ndarray]:
    """Every visible face's estimate of a split's scenes (the clip without its last PAD
    samples): (rows [faces, 2] = (scene, slot), estimates [faces, n])."""
    if model.kind != "av":
        raise ModelError(f"{model.path}: needs a face-conditioned (av) model, not {model.kind!r}")
    rows = np.argwhere(data["present"].astype(bool))
    mixtures = data["mixture"].astype(np.float64)
    n = mixtures.shape[1] - PAD
    return rows, model.separate(mixtures[rows[:, 0]], data["rois"][rows[:, 0], rows[:, 1]])[..., :n]


def output_gain(data: dict, rows: np.ndarray, ests: np.ndarray) -> dict:
    """The gain and its spread from `face_estimates` (see the module's text)."""
    n = ests.shape[-1]
    mixtures = data["mixture"].astype(np.float64)
    gains, silent = [], []
    for (s, k), y in zip(rows, ests):
        x = mixtures[s, :n]
        if data["speaking"][s, k]:
            src = data["sources"][s, k, :n].astype(np.float64)
            if M.si_sdr(y, src, zero_mean=True) > 0.0:
                g = least_squares_gain_db(y, src)
                if np.isfinite(g):
                    gains.append(g)
        else:
            silent.append((y, x))
    if not gains:
        raise ModelError("no talking face got its own voice; no gain to fit")
    gain = float(np.median(gains))
    scale = 10.0 ** (gain / 20.0)
    silent_db = [10.0 * np.log10((np.sum((scale * y) ** 2) + 1e-20) / (np.sum(x ** 2) + 1e-20)) for y, x in silent]
    return {
        "faces": len(gains),
        "output_gain_db": round(gain, 2),
        "gain_db_quartiles": [round(float(q), 2) for q in np.percentile(gains, [25, 75])],
        "silent_faces": len(silent),
        "silent_face_after_gain_db_re_mixture": round(float(np.median(silent_db)), 1) if silent_db else None,
    }


def calibrate(cfg: dict, split: str, model_path: str | Path, threads: int = 1) -> dict:
    data = scenes(cfg, split)
    rows, ests = face_estimates(OnnxSeparator(model_path, threads=threads), data)
    try:
        gain = output_gain(data, rows, ests)
    except ModelError as e:
        raise ModelError(f"{model_path}, split {split}: {e}") from None
    return {"model": str(model_path), "sha256": hashlib.sha256(Path(model_path).read_bytes()).hexdigest(),
            "split": split, **gain}


def write_gain(model_path: str | Path, gain_db: float) -> None:
    """Store `output_gain_db` in the model's metadata_props (the file's bytes change)."""
    import onnx

    m = onnx.load(str(model_path))
    props = {p.key: p.value for p in m.metadata_props}
    props["output_gain_db"] = f"{gain_db:.2f}"
    del m.metadata_props[:]
    for k, v in props.items():
        m.metadata_props.add(key=k, value=v)
    onnx.save(m, str(model_path))
