"""Image and audio helpers shared by the training data synthesis and scripts/make_demo_clip.py.

Moved here verbatim from scripts/make_demo_clip.py (which now imports them) so that the demo clip
and the training scenes animate faces and read audio the same way.
"""

from __future__ import annotations

import multiprocessing
import wave
from pathlib import Path

import numpy as np

# The espeak-ng splits voiced with training variants and shown with the training faces: `train`,
# then `stack` and `train_more`, which add variants no other split uses (training/synth/speech.py)
TRAINING_TTS_SPLITS = ("train", "stack", "train_more")


def ordered_map(fn, items, workers: int = 1, chunksize: int = 1):
    """fn over items, results in order; in `workers` forked processes when workers > 1 (fn and
    the module state it reads are inherited by fork, only items and results are pickled)."""
    if workers <= 1:
        yield from map(fn, items)
        return
    with multiprocessing.get_context("fork").Pool(workers) as procs:
        yield from procs.imap(fn, items, chunksize=chunksize)


def read_wav(path: Path) -> tuple[np.ndarray, int]:
    with wave.open(str(path), "rb") as w:
        assert w.getsampwidth() == 2 and w.getnchannels() == 1, path
        sr = w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return x, sr


def resample_fft(x: np.ndarray, sr_in: int, sr_out: int) -> np.ndarray:
    """Band-limited resampling of a short, silence-padded utterance via the FFT."""
    if sr_in == sr_out:
        return x.copy()
    n_out = int(round(len(x) * sr_out / sr_in))
    spec = np.fft.rfft(x)
    n_bins = n_out // 2 + 1
    if n_bins <= len(spec):
        spec = spec[:n_bins]
    else:
        spec = np.concatenate([spec, np.zeros(n_bins - len(spec), spec.dtype)])
    return np.fft.irfft(spec, n_out) * (n_out / len(x))


def blur3(x: np.ndarray) -> np.ndarray:
    """3x3 binomial blur ([1, 2, 1] / 4 down the rows, then along them) over the last two axes,
    edges replicated: a camera's mild softness (faces.py) and the "sharp" yardstick's unsharp
    mask (camera_shift.py)."""
    pad = [(0, 0)] * (x.ndim - 2)
    p = np.pad(x, pad + [(1, 1), (0, 0)], mode="edge")
    rows = 0.25 * p[..., :-2, :] + 0.5 * p[..., 1:-1, :] + 0.25 * p[..., 2:, :]
    p = np.pad(rows, pad + [(0, 0), (1, 1)], mode="edge")
    return 0.25 * p[..., :-2] + 0.5 * p[..., 1:-1] + 0.25 * p[..., 2:]


def smooth_noise(rng: np.random.Generator, n: int, width: int) -> np.ndarray:
    """Unit-variance-ish low-pass noise (moving average of white noise)."""
    w = rng.standard_normal(n + width)
    k = np.ones(width) / width
    out = np.convolve(w, k, mode="valid")[:n]
    return out / (np.std(out) + 1e-12)


def inpaint_red_boxes(rgb: np.ndarray) -> np.ndarray:
    """The Solvay copy has 1-px pure-red face boxes drawn on a greyscale photo.
    Replace them by the mean of their non-red neighbours; returns greyscale RGB."""
    r, g = rgb[..., 0].astype(np.int32), rgb[..., 1].astype(np.int32)
    red = (r - g) > 80
    grey = rgb[..., 1].astype(np.float64)
    grey[red] = np.nan
    for _ in range(4):
        holes = np.isnan(grey)
        if not holes.any():
            break
        p = np.pad(grey, 1, constant_values=np.nan)
        nb = np.stack([p[1 + dy: p.shape[0] - 1 + dy, 1 + dx: p.shape[1] - 1 + dx]
                       for dy in (-1, 0, 1) for dx in (-1, 0, 1) if dy or dx])
        valid = ~np.isnan(nb)
        cnt = valid.sum(axis=0)
        mean = np.where(cnt > 0, np.nansum(nb, axis=0) / np.maximum(cnt, 1), np.nan)
        grey = np.where(holes, mean, grey)
    grey = np.clip(np.round(grey), 0, 255).astype(np.uint8)
    return np.repeat(grey[..., None], 3, axis=2)


def bilinear(img: np.ndarray, sx: np.ndarray, sy: np.ndarray) -> np.ndarray:
    h, w = img.shape[:2]
    sx = np.clip(sx, 0, w - 1.001)
    sy = np.clip(sy, 0, h - 1.001)
    x0 = np.floor(sx).astype(np.int64)
    y0 = np.floor(sy).astype(np.int64)
    fx = (sx - x0)[..., None]
    fy = (sy - y0)[..., None]
    a = img[y0, x0]
    b = img[y0, x0 + 1]
    c = img[y0 + 1, x0]
    d = img[y0 + 1, x0 + 1]
    return (a * (1 - fx) + b * fx) * (1 - fy) + (c * (1 - fx) + d * fx) * fy


def smoothstep(e0: float, e1: float, x: np.ndarray) -> np.ndarray:
    t = np.clip((x - e0) / (e1 - e0), 0.0, 1.0)
    return t * t * (3 - 2 * t)
