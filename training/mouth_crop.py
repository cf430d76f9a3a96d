"""The mouth crop, numpy reference (docs/SIGNAL.md, "Mouth crop"; src/vision/crop.rs is the same).

A square centred on the midpoint of the two CenterFace mouth corners, its x axis along the eye
line, side 1.8 x the mouth-corner distance clamped to [0.35, 0.8] x the face box width, sampled
bilinearly (edge pixels repeated) at ROI_SIZE x ROI_SIZE from BT.601 grey, divided by 255.
Coordinates are continuous pixels: pixel (i, j) covers [i, i+1) x [j, j+1).
"""

from __future__ import annotations

import numpy as np

ROI_SIZE = 48
SIDE_PER_MOUTH_WIDTH = 1.8
SIDE_MIN_FRAC = 0.35
SIDE_MAX_FRAC = 0.8
# Landmark order: left eye, right eye, nose, left mouth corner, right mouth corner.
LEFT_EYE, RIGHT_EYE, LEFT_MOUTH, RIGHT_MOUTH = 0, 1, 3, 4


def crop_geometry(bbox, landmarks) -> tuple[np.ndarray, float, float]:
    """(centre [x, y], side, angle) of the crop, float64."""
    lm = np.asarray(landmarks, dtype=np.float64)
    ml, mr, el, er = lm[LEFT_MOUTH], lm[RIGHT_MOUTH], lm[LEFT_EYE], lm[RIGHT_EYE]
    centre = (ml + mr) / 2.0
    mouth_w = float(np.hypot(*(mr - ml)))
    face_w = max(float(bbox[2]) - float(bbox[0]), 1.0)
    side = float(np.clip(SIDE_PER_MOUTH_WIDTH * mouth_w, SIDE_MIN_FRAC * face_w, SIDE_MAX_FRAC * face_w))
    angle = float(np.arctan2(er[1] - el[1], er[0] - el[0]))
    return centre, side, angle


def grey(rgb: np.ndarray) -> np.ndarray:
    """BT.601 luma of an HxWx3 uint8 image, float64."""
    rgb = rgb.astype(np.float64)
    return 0.299 * rgb[..., 0] + 0.587 * rgb[..., 1] + 0.114 * rgb[..., 2]


def mouth_crop(rgb: np.ndarray, bbox, landmarks, roi_size: int = ROI_SIZE) -> np.ndarray:
    """The [roi_size, roi_size] float32 crop in [0, 1] of one face in an HxWx3 uint8 frame."""
    return mouth_crop_grey(grey(rgb), bbox, landmarks, roi_size)


def mouth_crop_grey(g: np.ndarray, bbox, landmarks, roi_size: int = ROI_SIZE) -> np.ndarray:
    """`mouth_crop` of an already grey (BT.601 luma, 0..255, float) HxW image."""
    centre, side, angle = crop_geometry(bbox, landmarks)
    step = side / roi_size
    offs = (np.arange(roi_size, dtype=np.float64) + 0.5) * step - side / 2.0
    v, u = np.meshgrid(offs, offs, indexing="ij")
    c, s = np.cos(angle), np.sin(angle)
    x = centre[0] + u * c - v * s - 0.5
    y = centre[1] + u * s + v * c - 0.5
    return (sample_bilinear(g, x, y) / 255.0).astype(np.float32)


def sample_bilinear(g: np.ndarray, x: np.ndarray, y: np.ndarray) -> np.ndarray:
    """g [..., H, W] sampled at pixel-centre-relative coordinates (x, y) (the crop's `- 0.5`
    already applied), bilinearly, pixels outside repeating the nearest edge pixel: [..., *x.shape]."""
    h, w = g.shape[-2:]
    x0, y0 = np.floor(x), np.floor(y)
    fx, fy = x - x0, y - y0
    xi, yi = x0.astype(np.int64), y0.astype(np.int64)

    def at(yy, xx):
        return g[..., np.clip(yy, 0, h - 1), np.clip(xx, 0, w - 1)]

    top = at(yi, xi) * (1 - fx) + at(yi, xi + 1) * fx
    bot = at(yi + 1, xi) * (1 - fx) + at(yi + 1, xi + 1) * fx
    return top * (1 - fy) + bot * fy
