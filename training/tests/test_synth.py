"""Data synthesis checks (numpy only). Faces come from ../shared/data/faces; skipped without it."""

from __future__ import annotations

import shutil

import numpy as np
import pytest

from training.synth import faces as F
from training.synth import scene as S

pytestmark = pytest.mark.skipif(not (F.FACES_DIR / "solvay_1927_29faces.png").is_file(),
                                reason=f"face photos not found in {F.FACES_DIR}")


def fake_voices(n=4):
    """Deterministic speech-like test signals (no espeak needed): AM-modulated harmonic tones."""
    rng = np.random.default_rng(99)
    out = []
    for v in range(n):
        utts = []
        for _ in range(3):
            t = np.arange(int(rng.integers(8000, 24000))) / S.SR
            x = sum(np.sin(2 * np.pi * (120 + 40 * v) * h * t) / h for h in range(1, 6))
            x *= 0.5 + 0.5 * np.sin(2 * np.pi * 4 * t) ** 2
            utts.append(x / np.sqrt(np.mean(x ** 2)))
        out.append((f"fake-{v}", utts))
    return out


CFG = S.SynthConfig(seed=7, clip_seconds=1.0)


def test_same_seed_same_scene():
    voices, faces = fake_voices(), F.load_faces("train")
    a = S.make_scene(CFG, "train", 5, voices, faces)
    b = S.make_scene(CFG, "train", 5, voices, faces)
    for k in a:
        np.testing.assert_array_equal(a[k], b[k], err_msg=k)
    c = S.make_scene(CFG, "train", 6, voices, faces)
    assert not np.array_equal(a["mixture"], c["mixture"])


def test_mixture_is_sum_of_sources_and_noise():
    voices, faces = fake_voices(), F.load_faces("train")
    for i in range(5):
        s = S.make_scene(CFG, "train", i, voices, faces)
        np.testing.assert_array_equal(s["mixture"], s["sources"].sum(axis=0) + s["noise"])
        assert s["speaking"].any()
        assert not np.any(s["sources"][~s["speaking"]])  # silent / empty slots have no voice
        assert np.all(s["rois"][~s["present"]] == 0)


def test_snr_as_requested():
    voices, faces = fake_voices(), F.load_faces("train")
    for i in range(8):
        cfg = S.SynthConfig(seed=11, clip_seconds=1.0, snr_db=(-5.0 + 3 * i, -5.0 + 3 * i))
        s = S.make_scene(cfg, "train", i, voices, faces)
        speech = s["sources"].astype(np.float64).sum(axis=0)
        snr = 10 * np.log10(np.mean(speech ** 2) / np.mean(s["noise"].astype(np.float64) ** 2))
        assert snr == pytest.approx(-5.0 + 3 * i, abs=0.01)
        assert float(s["snr_db"]) == pytest.approx(-5.0 + 3 * i)


def test_held_out_faces_never_in_training_scenes():
    split = F.load_split()
    held = {f["id"] for faces in split["held_out"].values() for f in faces}
    train_ids = set(F.face_ids("train"))
    val_ids = set(F.face_ids("val"))
    assert not (train_ids & held) and not (val_ids & held) and not (train_ids & val_ids)
    assert set(F.face_ids("test")) == held
    max_x = split["rule"]["training_crop_max_x_exclusive"]
    for f in F.load_faces("train") + F.load_faces("val"):
        assert f.origin[0] + f.grey.shape[1] <= max_x  # no held-out pixels in the crop
    voices, faces = fake_voices(), F.load_faces("train")
    for i in range(10):
        s = S.make_scene(CFG, "train", i, voices, faces)
        for k in s["face_index"][s["present"]]:
            assert faces[k].face_id in train_ids


def test_shards_round_trip(tmp_path, monkeypatch):
    monkeypatch.setattr(S, "split_voices", lambda cfg, split, log=print: fake_voices())
    cfg = S.SynthConfig(seed=3, clip_seconds=1.0, scenes={"train": 5}, scenes_per_shard=2)
    info = S.synth_split(cfg, "train", tmp_path, log=lambda m: None)
    assert info["scenes"] == 5 and len(info["shards"]) == 3
    data = S.load_shards(tmp_path / "train")
    assert data["mixture"].shape == (5, cfg.n_samples)
    assert data["rois"].shape == (5, S.MAX_FACES, cfg.n_frames, F.ROI_SIZE, F.ROI_SIZE)
    assert set(data["face_ids"]) <= set(F.face_ids("train"))
    again = S.make_scene(cfg, "train", 3, fake_voices(), F.load_faces("train"))
    np.testing.assert_array_equal(data["mixture"][3], again["mixture"])


def test_mouth_opens_with_speech():
    face = F.load_faces("train")[0]
    rng = np.random.default_rng(0)
    closed = F.render_mouth_rois(face, np.zeros(3), rng, augment=False).astype(float)
    opened = F.render_mouth_rois(face, np.ones(3), rng, augment=False).astype(float)
    assert closed.shape == (3, F.ROI_SIZE, F.ROI_SIZE)
    assert np.abs(opened - closed).mean() > 2.0  # the animated mouth changes the ROI visibly


@pytest.mark.skipif(shutil.which("espeak-ng") is None, reason="espeak-ng not installed")
def test_espeak_pool_deterministic():
    from training.synth import speech as SP

    a = SP.tts_pool(5, 2, 1)
    b = SP.tts_pool(5, 2, 1)
    assert len(a) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])
