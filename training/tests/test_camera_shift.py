"""The fixed cameras of `evaluate --camera shift` (training/camera_shift.py): each does what its
name says, deterministically, and a split's faces get all three."""

from __future__ import annotations

import numpy as np
import pytest

from training.camera_shift import CAMERAS, camera, shift_cameras


def _face(seed: int = 0) -> np.ndarray:
    """A smooth 'mouth' (a dark ellipse on a mid-grey gradient) with fine texture, uint8 [T, 48, 48]."""
    rng = np.random.default_rng(seed)
    v, u = np.mgrid[0:48, 0:48] / 47.0
    frames = []
    for t in range(6):
        open_ = 0.05 + 0.04 * t
        img = 90 + 40 * v - 60 * (((u - 0.5) / 0.3) ** 2 + ((v - 0.6) / open_) ** 2 < 1)
        frames.append(img + rng.normal(0, 6, img.shape))
    return np.clip(np.round(frames), 0, 255).astype(np.uint8)


def _detail(x: np.ndarray) -> float:
    return float(np.abs(np.diff(x.astype(np.float64), axis=-1)).mean())


def test_each_camera_does_what_it_says():
    x = _face()
    bright, sharp, far = (camera(x, c) for c in ("bright", "sharp", "far"))
    assert bright.mean() > x.mean() + 30 and bright.std() > x.std()
    assert _detail(sharp) > 1.5 * _detail(x)
    assert _detail(far) < 0.6 * _detail(x)
    for y in (bright, sharp, far):
        assert y.shape == x.shape and y.dtype == np.uint8
        # the mouth is still where it was: the picture correlates with the original
        assert np.corrcoef(x.ravel().astype(float), y.ravel().astype(float))[0, 1] > 0.8
    with pytest.raises(ValueError, match="unknown camera"):
        camera(x, "fisheye")


def test_a_split_gets_all_three_cameras_deterministically():
    rois = np.stack([np.stack([_face(s * 3 + k) for k in range(3)]) for s in range(4)])  # [4, 3, T, 48, 48]
    a, b = shift_cameras(rois), shift_cameras(rois)
    assert np.array_equal(a, b)
    used = {CAMERAS[(s + k) % 3] for s in range(4) for k in range(3)}
    assert used == set(CAMERAS)
    for s in range(4):
        for k in range(3):
            assert np.array_equal(a[s, k], camera(rois[s, k], CAMERAS[(s + k) % 3]))
