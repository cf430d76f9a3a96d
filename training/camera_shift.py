"""Validation faces seen through other cameras: a model-selection check for faces unlike the
training photo that does not touch the held-out faces (training/faces_split.json forbids using
them for selection).

All training and validation faces come from one blurred 1927 photo; the held-out astronaut is a
sharp, bright modern one. `shift_cameras` gives each visible face of a split one of three fixed
cameras (by scene and slot, so every model sees the same inputs): brighter with more contrast,
sharpened, and far away (fewer pixels). `python -m training evaluate --split val --camera shift`
scores a model on them. Fixed transforms, no randomness: they are a yardstick, not augmentation
(training/roi_augment.py draws from wider families at random).
"""

from __future__ import annotations

import numpy as np
from PIL import Image

from .synth.common import blur3

CAMERAS = ("bright", "sharp", "far")


def camera(rois: np.ndarray, name: str) -> np.ndarray:
    """One face's ROI sequence uint8 [T, H, W] through the named camera."""
    x = rois.astype(np.float64) / 255.0
    if name == "bright":  # a brighter exposure with more contrast (mean grey ~100 -> ~150)
        x = (x ** 0.6 - 0.5) * 1.2 + 0.5
    elif name == "sharp":  # a sharper lens: unsharp mask
        x = x + 1.5 * (x - blur3(x))
    elif name == "far":  # 2.5x fewer pixels per side, enlarged back by the crop
        h, w = x.shape[-2:]
        small = (round(w / 2.5), round(h / 2.5))
        x = np.stack([np.asarray(Image.fromarray(f.astype(np.float32)).resize(small, Image.BOX)
                                 .resize((w, h), Image.BILINEAR)) for f in x])
    else:
        raise ValueError(f"unknown camera {name!r} (one of {', '.join(CAMERAS)})")
    return np.clip(np.round(x * 255.0), 0, 255).astype(np.uint8)


def by_face(rois: np.ndarray, transforms) -> np.ndarray:
    """rois uint8 [scenes, slots, T, H, W] -> slot k of scene s through transforms[(s + k) % n]:
    fixed by scene and slot, so every model sees the same inputs (also crop_geometry's yardstick)."""
    out = rois.copy()
    for s in range(rois.shape[0]):
        for k in range(rois.shape[1]):
            out[s, k] = transforms[(s + k) % len(transforms)](rois[s, k])
    return out


def shift_cameras(rois: np.ndarray) -> np.ndarray:
    """rois uint8 [scenes, slots, T, H, W] -> slot k of scene s through CAMERAS[(s + k) % 3]."""
    return by_face(rois, [lambda r, c=c: camera(r, c) for c in CAMERAS])
