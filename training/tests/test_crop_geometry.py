"""Crops placed off (training/crop_geometry.py): the yardstick's transforms move, scale and turn
the content the way their parameters say, deterministically; the training augmentation
(roi_augment.augment_geometry, needs torch) computes the same map."""

from __future__ import annotations

import numpy as np
import pytest

from training.crop_geometry import GEOMETRIES, geometry_shift, transform_crop


def _blob(cx: float = 24.0, cy: float = 24.0, r: float = 6.0, T: int = 3) -> np.ndarray:
    """A bright disc on black, uint8 [T, 48, 48]."""
    v, u = np.mgrid[0:48, 0:48] + 0.5
    img = np.where((u - cx) ** 2 + (v - cy) ** 2 < r * r, 200.0, 0.0)
    return np.repeat(img[None], T, axis=0).astype(np.uint8)


def _centroid(x: np.ndarray) -> tuple[float, float]:
    w = x[0].astype(np.float64)
    v, u = np.mgrid[0:48, 0:48] + 0.5
    return float((u * w).sum() / w.sum()), float((v * w).sum() / w.sum())


def _area(x: np.ndarray) -> float:
    return float((x[0] > 100).sum())


def test_identity_leaves_the_crop_as_it_is():
    x = np.random.default_rng(0).integers(0, 256, (4, 48, 48)).astype(np.uint8)
    assert np.array_equal(transform_crop(x, 0.0, 0.0, 1.0, 0.0), x)


@pytest.mark.parametrize("sx,sy", [(4.0, 0.0), (0.0, 4.0), (-4.0, 0.0), (0.0, -4.0), (2.5, -1.5)])
def test_a_shift_moves_the_content_by_that_many_pixels(sx, sy):
    cx, cy = _centroid(transform_crop(_blob(), sx, sy, 1.0, 0.0))
    assert cx == pytest.approx(24.0 + sx, abs=0.05) and cy == pytest.approx(24.0 + sy, abs=0.05)


@pytest.mark.parametrize("scale", [0.9, 1.12, 1.5])
def test_a_scale_resizes_the_content_about_the_centre(scale):
    x = _blob(r=8.0)
    y = transform_crop(x, 0.0, 0.0, scale, 0.0)
    assert _area(y) / _area(x) == pytest.approx(scale ** 2, rel=0.06)
    assert _centroid(y) == pytest.approx((24.0, 24.0), abs=0.05)


def test_a_turn_rotates_an_off_centre_point_about_the_centre():
    x = _blob(cx=36.0, cy=24.0, r=3.0)  # 12 px right of the centre
    cx, cy = _centroid(transform_crop(x, 0.0, 0.0, 1.0, 30.0))
    # image axes (y down): the content turns clockwise on screen for a positive angle
    assert (cx - 24.0, cy - 24.0) == pytest.approx((12 * np.cos(np.radians(30)), 12 * np.sin(np.radians(30))), abs=0.15)


def test_the_yardstick_gives_every_transform_deterministically():
    rng = np.random.default_rng(1)
    rois = rng.integers(0, 256, (4, 2, 3, 48, 48)).astype(np.uint8)
    a, b = geometry_shift(rois), geometry_shift(rois)
    assert np.array_equal(a, b) and a.dtype == np.uint8
    for s in range(4):
        for k in range(2):
            assert np.array_equal(a[s, k], transform_crop(rois[s, k], *GEOMETRIES[(s + k) % len(GEOMETRIES)]))
    assert len({(s + k) % len(GEOMETRIES) for s in range(4) for k in range(2)}) == 5
    with pytest.raises(ValueError, match="square"):
        transform_crop(np.zeros((1, 48, 40), np.uint8), 0.0, 0.0, 1.0, 0.0)


def test_the_training_augmentation_computes_the_yardsticks_map():
    torch = pytest.importorskip("torch")
    from training.crop_geometry import geometry_ranges
    from training.roi_augment import augment_geometry

    x = _blob(cx=30.0, cy=20.0, r=7.0, T=2)
    rois = torch.from_numpy(x.astype(np.float32) / 255.0)[None, :, None]  # [1, T, 1, 48, 48]
    r = geometry_ranges({"p": 1.1, "jitter_px": 0.0})  # always on, no jitter: only the drawn transform
    y = augment_geometry(rois, torch.Generator().manual_seed(5), r)
    # replay the generator's draws to know the transform it chose
    g2 = torch.Generator().manual_seed(5)
    torch.rand(1, generator=g2)
    u = torch.rand(4, generator=g2).tolist()
    sx = -r["shift_px"] + 2 * r["shift_px"] * u[0]
    sy = -r["shift_px"] + 2 * r["shift_px"] * u[1]
    lo, hi = np.log(r["scale"][0]), np.log(r["scale"][1])
    scale = float(np.exp(lo + (hi - lo) * u[2]))
    ang = -r["angle_deg"] + 2 * r["angle_deg"] * u[3]
    ref = transform_crop(x, sx, sy, scale, ang)
    got = np.round(y[0, :, 0].numpy() * 255.0)
    assert np.abs(got - ref).max() <= 1.0
    assert y.shape == rois.shape


def test_the_aspect_stretches_the_content_vertically_and_leaves_v14s_draws_alone():
    torch = pytest.importorskip("torch")
    from training.crop_geometry import geometry_ranges
    from training.roi_augment import augment_geometry

    x = torch.from_numpy(_blob(r=6.0, T=1).astype(np.float32) / 255.0)[None, :, None]
    fixed = {"p": 1.1, "jitter_px": 0.0, "shift_px": 0.0, "scale": [1.0, 1.0], "angle_deg": 0.0}
    y = augment_geometry(x, torch.Generator().manual_seed(0), geometry_ranges({**fixed, "aspect": [1.4, 1.4]}))
    m = (y[0, 0, 0].numpy() > 100 / 255).astype(float)
    rows, cols = np.nonzero(m.sum(axis=1))[0], np.nonzero(m.sum(axis=0))[0]
    assert (rows.max() - rows.min() + 1) / (cols.max() - cols.min() + 1) == pytest.approx(1.4, abs=0.2)
    # without an aspect the default ranges draw exactly what v14 (exp-geo) drew
    b = torch.rand(3, 4, 1, 48, 48, generator=torch.Generator().manual_seed(9))
    a1 = augment_geometry(b, torch.Generator().manual_seed(42))
    a2 = augment_geometry(b, torch.Generator().manual_seed(42), geometry_ranges({"aspect": None}))
    assert torch.equal(a1, a2)
    with pytest.raises(ValueError, match="roi_geometry_ranges.shift"):
        geometry_ranges({"shift": 3})


def test_the_training_augmentation_is_seeded_and_moves_most_sequences():
    torch = pytest.importorskip("torch")
    from training.roi_augment import augment_geometry

    x = torch.from_numpy(_blob(T=4).astype(np.float32) / 255.0)[None, :, None].repeat(64, 1, 1, 1, 1)
    a = augment_geometry(x, torch.Generator().manual_seed(3))
    b = augment_geometry(x, torch.Generator().manual_seed(3))
    assert torch.equal(a, b)
    moved = [float((a[i] - x[i]).abs().mean()) > 0.01 for i in range(64)]
    assert 0.6 < np.mean(moved) <= 1.0  # P_GEOMETRY of them get a transform, the rest only jitter
