"""Checks of the numpy mouth crop and its committed fixture (numpy + pillow only)."""

from __future__ import annotations

import json

import numpy as np
from PIL import Image

from training import make_mouth_fixture as fx
from training.mouth_crop import ROI_SIZE, crop_geometry, mouth_crop

FACE = [20.0, 20.0, 80.0, 90.0]
EYES = [[40.0, 40.0], [60.0, 40.0], [50.0, 50.0]]


def test_fixture_reproduces():
    rgb = np.asarray(Image.open(fx.FRAME).convert("RGB"))
    committed = json.loads((fx.FIXTURE_DIR / "mouth_crop.json").read_text())
    crop = mouth_crop(rgb, committed["bbox"], committed["landmarks"])
    assert crop.shape == (ROI_SIZE, ROI_SIZE)
    assert np.max(np.abs(crop.ravel() - np.asarray(committed["crop"]))) < 1e-5


def test_side_clamped_and_centred():
    centre, side, angle = crop_geometry(FACE, EYES + [[49.0, 60.0], [51.0, 60.0]])
    assert np.isclose(side, 0.35 * 60) and angle == 0.0
    centre, side, _ = crop_geometry(FACE, EYES + [[40.0, 60.0], [60.0, 60.0]])
    assert np.allclose(centre, [50.0, 60.0]) and np.isclose(side, 36.0)


def test_uniform_frame_gives_uniform_crop():
    rgb = np.full((100, 100, 3), 200, np.uint8)
    crop = mouth_crop(rgb, FACE, EYES + [[40.0, 60.0], [60.0, 60.0]])
    assert np.allclose(crop, 200 / 255, atol=1e-6)


def test_rotation_follows_the_eye_line():
    # A horizontal bar through the mouth, rotated 90 degrees together with the landmarks, gives
    # the same crop: the crop is in face coordinates, not image coordinates.
    rgb = np.zeros((100, 100, 3), np.uint8)
    rgb[58:62, 30:70] = 255
    lm = EYES + [[40.0, 60.0], [60.0, 60.0]]
    upright = mouth_crop(rgb, FACE, lm)
    rot = np.ascontiguousarray(np.rot90(rgb, k=-1))  # clockwise: (x, y) -> (99 - y, x) in pixels
    lm_rot = [[100.0 - y, x] for x, y in lm]
    face_rot = [10.0, 20.0, 80.0, 80.0]  # only the width matters: keep it 60 like FACE's
    turned = mouth_crop(rot, face_rot[:2] + [face_rot[0] + 60.0, 80.0], lm_rot)
    assert np.max(np.abs(upright - turned)) < 1e-6
