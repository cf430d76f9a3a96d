"""Mouth crops placed a little off: what a real face detector's landmark error does to the crop.

The crop (docs/SIGNAL.md "Mouth crop") is centred on the midpoint of two detected mouth corners
and sized by their distance. CenterFace predicts landmarks at stride 4 of its input, which the
daemon downscales, so a live crop is routinely a few ROI pixels off centre and 10 % off in size,
more on a turned face whose mouth corners are foreshortened. The synthesized scenes vary this only
within one frozen draw per sequence (training/synth/faces.py), and the shipped v11s model turned
out to depend on it: on validation (2 talkers, 7.71 dB with its own crops) it reaches 6.39 dB
with every crop 4 px lower, 4.64 dB with 6 px higher and 2.54 dB at 0.8 x the size (MODELS.md
"v14 crop geometry").

Both tools here apply one similarity transform per sequence to crops already made: output pixel p
samples the input at c + R(-angle) (p - c) / scale - shift (c the crop centre), bilinearly, edges
repeated (the crop reference also repeats the edges of the frame). `shift` moves the content,
`scale` > 1 enlarges it.
  * `geometry_shift` (numpy): fixed transforms by scene and slot, a yardstick for
    `evaluate --camera geometry` (model selection on val without the held-out faces);
  * `roi_augment.augment_geometry` (torch): random transforms per training sequence from the
    ranges below, plus a little per-frame jitter (train.roi_geometry), drawn from a seeded
    generator so a resumed run draws the same.
This module needs no PyTorch: `evaluate` runs without it.
"""

from __future__ import annotations

import math

import numpy as np

from .camera_shift import by_face
from .mouth_crop import sample_bilinear

# The yardstick: (shift x, shift y in ROI pixels, scale, angle in degrees), by (scene + slot) % 8
GEOMETRIES = ((0.0, 4.0, 1.0, 0.0), (0.0, -4.0, 1.0, 0.0), (4.0, 0.0, 1.0, 0.0), (-4.0, 0.0, 1.0, 0.0),
              (0.0, 0.0, 0.9, 0.0), (0.0, 0.0, 1.12, 0.0), (0.0, 0.0, 1.0, 8.0), (0.0, 0.0, 1.0, -8.0))

# Training draws (v14's, the defaults of `train.roi_geometry`), per sequence with probability
# P_GEOMETRY: a shift uniform in +-SHIFT_PX on each axis, a scale log-uniform in SCALE, an angle
# uniform in +-ANGLE_DEG; per frame a jitter of JITTER_PX (standard deviation) on each axis. The
# yardstick's transforms lie inside these ranges: it measures robustness to the errors the model
# is meant to tolerate, on faces it never saw.
P_GEOMETRY = 0.8
SHIFT_PX = 5.0
SCALE = (0.85, 1.18)
ANGLE_DEG = 10.0
JITTER_PX = 0.5
# v15 adds ASPECT, a vertical stretch log-uniform in this range (None: off): a face turned by yaw
# has its mouth corners foreshortened by cos(yaw), and the crop, sized by their distance, shows
# the mouth taller by 1 / cos(yaw) (1.35: about 42 degrees).
ASPECT = None

# `train.roi_geometry_ranges` keys and their defaults
RANGE_KEYS = {"p": P_GEOMETRY, "shift_px": SHIFT_PX, "scale": SCALE, "angle_deg": ANGLE_DEG,
              "jitter_px": JITTER_PX, "aspect": ASPECT}


def geometry_ranges(overrides: dict | None = None) -> dict:
    """The training draws' ranges: RANGE_KEYS' defaults with `overrides` (a config table); an
    unknown key is an error that names it."""
    out = dict(RANGE_KEYS)
    for k, v in (overrides or {}).items():
        if k not in RANGE_KEYS:
            raise ValueError(f"train.roi_geometry_ranges.{k}: unknown (one of {', '.join(RANGE_KEYS)})")
        out[k] = (None if v is None else tuple(float(x) for x in v) if isinstance(v, (list, tuple))
                  else float(v))
    return out


def _source_coords(size: int, shift_x: float, shift_y: float, scale: float, angle_deg: float):
    """Input coordinates (x, y), each [size, size], that output pixel (row, col) samples."""
    c = size / 2.0
    p = np.arange(size, dtype=np.float64) + 0.5 - c
    v, u = np.meshgrid(p, p, indexing="ij")  # v: rows (y), u: columns (x)
    a = math.radians(angle_deg)
    cs, sn = math.cos(a), math.sin(a)
    x = c + (cs * u + sn * v) / scale - shift_x
    y = c + (-sn * u + cs * v) / scale - shift_y
    return x, y


def transform_crop(frames: np.ndarray, shift_x: float, shift_y: float, scale: float, angle_deg: float) -> np.ndarray:
    """uint8 [T, H, W] (H = W) through one similarity transform (module doc) -> uint8 [T, H, W]."""
    T, H, W = frames.shape
    if H != W:
        raise ValueError(f"crops are square, got {H}x{W}")
    x, y = _source_coords(W, shift_x, shift_y, scale, angle_deg)
    # the crop's own sampler (pixel centres at integer + 0.5, edges repeated)
    out = sample_bilinear(frames.astype(np.float64), x - 0.5, y - 0.5)
    return np.clip(np.round(out), 0, 255).astype(np.uint8)


def geometry_shift(rois: np.ndarray) -> np.ndarray:
    """rois uint8 [scenes, slots, T, H, W] -> slot k of scene s through GEOMETRIES[(s + k) % 8]."""
    return by_face(rois, [lambda r, g=g: transform_crop(r, *g) for g in GEOMETRIES])
