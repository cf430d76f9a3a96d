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
    monkeypatch.setattr(S, "split_voices", lambda cfg, split, log=print, workers=1: fake_voices())
    cfg = S.SynthConfig(seed=3, clip_seconds=1.0, scenes={"train": 5}, scenes_per_shard=2)
    info = S.synth_split(cfg, "train", tmp_path, log=lambda m: None)
    # worker processes render the same shards
    S.synth_split(cfg, "train", tmp_path / "par", log=lambda m: None, workers=2)
    par = S.load_shards(tmp_path / "par" / "train")
    assert info["scenes"] == 5 and len(info["shards"]) == 3
    data = S.load_shards(tmp_path / "train")
    assert data["mixture"].shape == (5, cfg.n_samples)
    assert data["rois"].shape == (5, S.MAX_FACES, cfg.n_frames, F.ROI_SIZE, F.ROI_SIZE)
    assert set(data["face_ids"]) <= set(F.face_ids("train"))
    again = S.make_scene(cfg, "train", 3, fake_voices(), F.load_faces("train"))
    np.testing.assert_array_equal(data["mixture"][3], again["mixture"])
    for k in data:
        np.testing.assert_array_equal(par[k], data[k], err_msg=k)


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
    b = SP.tts_pool(5, 2, 1, workers=2)  # worker processes speak the same utterances
    assert len(a) == 2
    for x, y in zip(a, b):
        np.testing.assert_array_equal(x[0], y[0])


def test_heldout_tts_voices_are_unseen_variants():
    from training.synth import speech as SP

    splits = SP.VARIANTS_BY_SPLIT
    assert not set(splits["train"]) & (set(splits["val"]) | set(splits["test"]))
    assert not set(splits["val"]) & set(splits["test"])
    # the stacking voices: unseen by the separators and disjoint from val and test
    assert not set(splits["stack"]) & (set(splits["train"]) | set(splits["val"]) | set(splits["test"]))
    assert set(F.face_ids(S.face_split("stack"))) == set(F.face_ids("train"))
    # v10's extra training voices: outside every other split, with the training faces
    others = set().union(*(set(v) for k, v in splits.items() if k != "train_more"))
    assert not set(splits["train_more"]) & others
    assert set(F.face_ids(S.face_split("train_more"))) == set(F.face_ids("train"))
    rng = np.random.default_rng(0)
    for _ in range(50):
        assert SP.random_voice(rng, splits["test"]).voice.split("+")[1] in splits["test"]


@pytest.mark.skipif(shutil.which("text2wave") is None, reason="festival not installed")
def test_festival_voices_speak_deterministically():
    from training.synth import speech as SP

    a = SP.festival_pool(3, 2, 1, words=["seven", "green", "apples", "today"])
    b = SP.festival_pool(3, 2, 1, words=["seven", "green", "apples", "today"])
    assert len(a) == 2
    for x, y in zip(a, b):
        assert len(x[0]) > SP.SR // 2  # at least half a second of speech
        assert abs(np.sqrt(np.mean(x[0] ** 2)) - 1.0) < 1e-6
        np.testing.assert_array_equal(x[0], y[0])


def test_split_faces_and_codes():
    from training.synth import scene as S

    assert S.face_split("train_festival") == "train"
    assert S.face_split("test_real") == "test" and S.face_split("val") == "val"
    assert len(set(S.SPLIT_CODES.values())) == len(S.SPLIT_CODES)


def test_rois_are_the_contract_crop_of_the_animated_face():
    """Closed mouth, no augmentation: the stored ROI is training/mouth_crop.py's crop of the
    photo with CenterFace's box and landmarks (the run-time crop), within rounding."""
    from PIL import Image

    from training.mouth_crop import mouth_crop

    photo = np.asarray(Image.open(F.FACES_DIR / "astronaut.png").convert("RGB"))
    lms = F.load_landmarks()
    for face in F.load_faces("test")[:3]:
        if not face.face_id.startswith("astronaut"):
            from training.synth.common import inpaint_red_boxes

            photo = inpaint_red_boxes(np.asarray(Image.open(F.FACES_DIR / "solvay_1927_29faces.png").convert("RGB")))
        e = lms[face.face_id]
        ref = mouth_crop(photo, e["bbox"], e["landmarks"])
        got = F.render_mouth_rois(face, np.zeros(2), np.random.default_rng(0), augment=False)
        assert got.shape == (2, 48, 48)
        assert np.max(np.abs(got[0] / 255.0 - ref)) <= 0.5 / 255 + 1e-6, face.face_id


def test_landmarks_cover_every_face():
    lms = F.load_landmarks()
    split = F.load_split()
    ids = [f["id"] for f in split["training"]["solvay_1927_29faces.png"]]
    ids += [f["id"] for faces in split["held_out"].values() for f in faces]
    assert set(ids) == set(lms)
    for fid in ids:
        x0, y0, x1, y1 = lms[fid]["bbox"]
        lm = np.asarray(lms[fid]["landmarks"])
        assert lm.shape == (5, 2)
        assert np.all((lm[:, 0] > x0) & (lm[:, 0] < x1) & (lm[:, 1] > y0) & (lm[:, 1] < y1)), fid
        assert lm[0, 0] < lm[1, 0] and lm[3, 0] < lm[4, 0]  # left before right (image left)
        assert lm[3, 1] > lm[2, 1] > lm[0, 1]  # mouth below nose below eyes


def test_landmarks_json_reproduces_for_the_astronaut():
    ort = pytest.importorskip("onnxruntime")
    from training.synth import landmarks as L

    if not L.MODEL.is_file():
        pytest.skip("models/centerface.onnx missing")
    so = ort.SessionOptions()
    so.log_severity_level = 3
    sess = ort.InferenceSession(str(L.MODEL), so, providers=["CPUExecutionProvider"])
    dets = L.detect(sess, L.photo_rgb("astronaut.png"), 1)
    want = F.load_landmarks()["astronaut-0"]
    assert len(dets) == 1
    np.testing.assert_allclose(dets[0]["bbox"], want["bbox"], atol=0.01)
    np.testing.assert_allclose(dets[0]["landmarks"], want["landmarks"], atol=0.01)


def test_decode_mirrors_rust_unit_case():
    """The same synthetic heads as src/vision/decode.rs one_peak_decodes_to_box_and_landmarks."""
    from training.synth import landmarks as L

    w = h = 4
    hm = np.zeros((1, 1, h, w), np.float32)
    hm[0, 0, 1, 1], hm[0, 0, 1, 2] = 0.9, 0.8
    scale = np.zeros((1, 2, h, w), np.float32)
    scale[0, 0, 1, 1] = np.log(2.0)
    off = np.zeros((1, 2, h, w), np.float32)
    lms = np.zeros((1, 10, h, w), np.float32)
    lms[0, 0, 1, 1], lms[0, 1, 1, 1] = 0.5, 0.25
    d = L.decode(hm, scale, off, lms)
    assert len(d) == 1
    np.testing.assert_allclose(d[0]["bbox"], [4.0, 2.0, 8.0, 10.0])
    np.testing.assert_allclose(d[0]["landmarks"][0], [5.0, 6.0])


def test_speaker_weights():
    voices, faces = fake_voices(), F.load_faces("train")
    cfg = S.SynthConfig(seed=5, clip_seconds=0.4, speaker_weights={"train": [0.0, 1.0, 0.0]})
    for i in range(4):
        assert S.make_scene(cfg, "train", i, voices, faces)["speaking"].sum() == 2


def test_shards_load_as_their_concatenation_and_a_misfit_is_named(tmp_path):
    rng = np.random.default_rng(0)
    shards = [{"mixture": rng.standard_normal((n, 40)).astype(np.float32),
               "rois": rng.integers(0, 255, (n, 3, 2, 4, 4), dtype=np.uint8),
               "scene_index": np.arange(n, dtype=np.int32)} for n in (3, 5, 2)]
    for i, a in enumerate(shards):
        np.savez(tmp_path / f"shard-{i:05d}.npz", face_ids=np.array(["f"]), voice_ids=np.array(["v"]), **a)
    got, lengths = S.load_shard_files(S.shard_paths(tmp_path))
    assert lengths == [3, 5, 2]
    for k in shards[0]:
        assert got[k].dtype == shards[0][k].dtype
        assert np.array_equal(got[k], np.concatenate([a[k] for a in shards]))
    assert list(got["face_ids"]) == ["f"]
    # a shard from another synthesis (other ROI size) is refused, by name
    bad = dict(shards[1], rois=np.zeros((5, 3, 2, 6, 6), np.uint8))
    np.savez(tmp_path / "shard-00001.npz", face_ids=np.array(["f"]), voice_ids=np.array(["v"]), **bad)
    with pytest.raises(ValueError, match=r"shard-00001\.npz: rois"):
        S.load_shards(tmp_path)
    with pytest.raises(FileNotFoundError, match="no shards"):
        S.load_shards(tmp_path / "empty")


def test_synthesis_refuses_to_replace_other_data(tmp_path, monkeypatch, capsys):
    """A config that shares another's data folder but not its settings must not overwrite its
    scenes (training/data/cpu lost 4 splits that way once); the same settings may (the same
    scenes again), as may other splits' counts, and --replace overrides."""
    import json

    from training import __main__ as CLI
    from training import config as C

    monkeypatch.setattr(S, "split_voices", lambda cfg, split, log=print, workers=1: fake_voices())
    cfg = S.SynthConfig(seed=3, clip_seconds=1.0, scenes={"train": 3, "val": 2}, scenes_per_shard=2)
    S.synth_split(cfg, "train", tmp_path, log=lambda m: None)
    assert S.replacement_conflict(cfg, "train", tmp_path) is None
    other_split_only = S.SynthConfig(seed=3, clip_seconds=1.0, scenes={"train": 3, "val": 96}, scenes_per_shard=2)
    assert S.replacement_conflict(other_split_only, "train", tmp_path) is None
    msg = S.replacement_conflict(S.SynthConfig(seed=4, clip_seconds=1.0, scenes={"train": 3}), "train", tmp_path)
    assert str(tmp_path / "train") in msg and "seed 3 -> 4" in msg and "scenes_per_shard 2 -> 64" in msg
    # a manifest from before recipes: its seed and scene count decide
    legacy = tmp_path / "legacy" / "val"
    legacy.mkdir(parents=True)
    (legacy / "manifest.json").write_text(json.dumps({"split": "val", "scenes": 96, "seed": 2468}))
    assert S.replacement_conflict(S.SynthConfig(seed=2468, scenes={"val": 96}), "val", tmp_path / "legacy") is None
    assert "scenes 96 -> 8" in S.replacement_conflict(S.SynthConfig(seed=2468, scenes={"val": 8}), "val", tmp_path / "legacy")
    # the command refuses before it writes anything, naming the folder and the way out
    shards = sorted((tmp_path / "train").glob("shard-*.npz"))
    before = [p.read_bytes() for p in shards]
    cfg_path = tmp_path / "tiny.toml"
    cfg_path.write_text('name = "tiny"\nseed = 4\n[synth]\nclip_seconds = 1.0\nscenes = { train = 3 }\n')
    monkeypatch.setattr(C, "data_dir", lambda cfg: tmp_path)
    assert CLI.main(["synth", "--config", str(cfg_path)]) == 2
    err = capsys.readouterr().err
    assert str(tmp_path / "train") in err and "data_name" in err and "--replace" in err
    assert [p.read_bytes() for p in sorted((tmp_path / "train").glob("shard-*.npz"))] == before
    assert CLI.main(["synth", "--config", str(cfg_path), "--replace"]) == 0
    assert json.loads((tmp_path / "train" / "manifest.json").read_text())["recipe"]["seed"] == 4
