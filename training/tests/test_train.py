"""Training-loss pieces: need torch (run with `make test-training`); skipped when torch is missing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training import metrics as M  # noqa: E402
from training import signal as S  # noqa: E402
from training import losses as L  # noqa: E402
from training import mixing as MX  # noqa: E402
from training import model_setup as MS  # noqa: E402
from training import torch_signal as TS  # noqa: E402
from training.device_mix import DeviceUnitPool  # noqa: E402
from training.model import Separator  # noqa: E402


def test_istft_matches_numpy_reference_and_inverts():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3200, generator=g, dtype=torch.float64)
    X = TS.stft_t(x)
    y = TS.estimates_time(X, 3200)
    ref = S.istft(X[1].numpy(), length=3200 + TS.PAD)[TS.PAD:]
    assert np.max(np.abs(ref - y[1].numpy())) < 1e-6
    # all but the last 57 samples (no later frame covers them yet) come back
    assert torch.allclose(y[:, :-57], x[:, :-57], atol=1e-6)


def test_si_sdr_matches_metrics():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(800)
    y = s + 0.3 * rng.standard_normal(800)
    got = float(L.si_sdr_t(torch.from_numpy(y), torch.from_numpy(s)))
    assert got == pytest.approx(float(M.si_sdr(y, s, zero_mean=True)), abs=1e-4)


def test_pit_loss_ignores_target_order():
    torch.manual_seed(0)
    m = Separator("audio").eval()
    mix = torch.randn(3, 1920) * 0.1
    tgt = torch.randn(3, 2, 1920) * 0.05
    ok = torch.ones(3, 2, dtype=torch.bool)
    with torch.no_grad():
        a, sa = L.batch_loss(m, mix, tgt, None, ok)
        b, sb = L.batch_loss(m, mix, tgt.flip(1), None, ok)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(sa, sb, atol=1e-5)


def test_av_loss_talking_and_silent():
    torch.manual_seed(0)
    m = Separator("av")
    mix = torch.randn(2, 1920) * 0.1
    tgt = torch.stack([torch.randn(1920) * 0.05, torch.zeros(1920)])
    rois = torch.rand(2, 3, 1, 48, 48)
    loss, sdr = L.batch_loss(m, mix, tgt, rois, torch.tensor([True, False]))
    assert torch.isfinite(loss) and torch.isfinite(sdr[0]) and torch.isnan(sdr[1])
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)


def test_pit_pair_takes_the_better_pairing():
    g = torch.Generator().manual_seed(1)
    s0, s1 = torch.randn(2, 1600, generator=g), torch.randn(2, 1600, generator=g)
    n = 0.1 * torch.randn(2, 1600, generator=g)
    right = L.pit_pair(s0 + n, s1 + n, s0, s1)
    assert torch.allclose(right, L.pit_pair(s1 + n, s0 + n, s0, s1))
    assert (right > 15).all() and (L.pit_pair(s0, s1, s0, s1) > 60).all()


def _talking_and_silent_batch():
    """Two 3-frame examples: a talking face, then a silent one (mix, tgt, rois, talking)."""
    mix = torch.randn(2, 1920) * 0.1
    tgt = torch.stack([torch.randn(1920) * 0.05, torch.zeros(1920)])
    return mix, tgt, torch.rand(2, 3, 1, 48, 48), torch.tensor([True, False])


def test_select_loss_has_the_pit_term_for_talking_faces():
    """AV with select: pit_weight adds the internal outputs' PIT SI-SDR (faces that talk only)."""
    torch.manual_seed(0)
    m = Separator("av", select=True)
    mix, tgt, rois, talking = _talking_and_silent_batch()
    with torch.no_grad():
        base, _ = L.batch_loss(m, mix, tgt, rois, talking)
        withpit, _ = L.batch_loss(m, mix, tgt, rois, talking, pit_weight=0.5)
        est, X, _, internal = L.forward_batch(m, mix, rois, with_aux=True)
        yi = TS.final_part(TS.estimates_time(internal, mix.shape[-1]))
        x, t = TS.final_part(mix), TS.final_part(tgt)
        pit0 = L.pit_pair(yi[0:1, 0], yi[0:1, 1], t[0:1], x[0:1] - t[0:1])
    assert torch.allclose(withpit, base - 0.5 * pit0.sum() / 2, atol=1e-4)
    loss, _ = L.batch_loss(m, mix, tgt, rois, talking, aux_weight=0.5, pit_weight=0.5)
    loss.backward()
    assert m.sel.weight.grad.abs().sum() > 0 and torch.isfinite(m.head.weight.grad).all()


def test_distillation_adds_the_teacher_term_and_trains_only_the_student():
    """train.distill_from (v9d): SI-SDR against a frozen teacher's estimate, for talking faces only,
    is subtracted x distill_weight; the teacher gets no gradient."""
    torch.manual_seed(0)
    m, teacher = Separator("av", select=True), Separator("av", select=True).eval()
    for p_ in teacher.parameters():
        p_.requires_grad_(False)
    mix, tgt, rois, talking = _talking_and_silent_batch()
    with torch.no_grad():
        base, _ = L.batch_loss(m, mix, tgt, rois, talking)
        with_t, _ = L.batch_loss(m, mix, tgt, rois, talking, teacher=teacher, distill_weight=0.7)
        y = TS.final_part(TS.estimates_time(L.forward_batch(m, mix, rois)[0], mix.shape[-1]))
        yt = TS.final_part(TS.estimates_time(L.forward_batch(teacher, mix, rois)[0], mix.shape[-1]))
        d = L.si_sdr_t(y, yt)
    assert torch.allclose(with_t, base - 0.7 * d[0] / 2, atol=1e-4)
    assert abs(float(with_t - base)) > 1e-3  # the term is there (two different random models)
    loss, _ = L.batch_loss(m, mix, tgt, rois, talking, teacher=teacher, distill_weight=0.7)
    loss.backward()
    assert m.head.weight.grad.abs().sum() > 0
    assert all(p_.grad is None for p_ in teacher.parameters())


def test_distillation_config_errors_name_the_culprit(tmp_path):
    cfg = {"name": "x", "train": {"distill_from": "no-such-config.toml"}}
    with pytest.raises(FileNotFoundError, match="no-such-config.toml"):
        MS.load_teacher(cfg, "av", "cpu")
    with pytest.raises(ValueError, match="only an AV model"):
        MS.load_teacher(cfg, "audio", "cpu")
    assert MS.load_teacher({"name": "x", "train": {}}, "av", "cpu") == (None, 0.0)


def _fake_scenes(n_scenes=4, n=3200, T_=5, seed=0):
    """Scenes in the shard layout: 3 slots, slot 2 a silent face, distinct voices per slot."""
    rng = np.random.default_rng(seed)
    src = (rng.standard_normal((n_scenes, 3, n)) * 0.05).astype(np.float32)
    src[:, 2] = 0.0
    rois = rng.integers(0, 256, (n_scenes, 3, T_, 48, 48), dtype=np.uint8)
    # frame f's ROI carries the frame index of its audio in a corner, so the test can check sync
    for f in range(T_):
        rois[:, :, f, 0, 0] = f
        src[:, :2, f * (n // T_)] = 10.0 + f  # a marker sample at each frame start
    present = np.ones((n_scenes, 3), bool)
    speaking = np.array([[True, True, False]] * n_scenes)
    voice = np.tile(np.array([0, 1, -1], np.int32), (n_scenes, 1)) + np.arange(n_scenes)[:, None] * 2
    voice[:, 2] = -1
    return {"sources": src, "rois": rois, "present": present, "speaking": speaking, "voice_index": voice}


def test_dynamic_mixing_keeps_audio_and_mouth_in_sync():
    data = _fake_scenes()
    pool = MX.UnitPool(data, {"snr_db": [100.0, 100.0], "speaker_gain_db": [0.0, 0.0]})
    rng = np.random.default_rng(1)
    mix, tgt, rois, talking = pool.batch(rng, 32, "av", [1.0, 0.0, 0.0], p_silent=0.0)
    assert mix.shape == (32, 3200) and rois.shape == (32, 5, 1, 48, 48) and bool(talking.all())
    for b in range(32):
        # the frame whose ROI says "frame 0" is the frame whose audio starts with marker 10.0
        f0 = int(np.nonzero(np.round(rois[b, :, 0, 0, 0].numpy() * 255) == 0)[0][0])
        assert float(tgt[b, f0 * 640]) == pytest.approx(10.0, abs=1e-4)
    # one talker, noise at 100 dB SNR: the mixture is the target
    assert torch.allclose(mix, tgt, atol=1e-3)


def test_voice_warp_keeps_audio_and_mouth_in_sync():
    """train.voice_warp: a unit resampled by f keeps its ROIs on the same time map, so the frame
    whose ROI says "frame k" is the frame where marker k sounds (to within the half frame that
    choosing one source frame per output frame allows)."""
    data = _fake_scenes(n=16000, T_=25)
    pool = MX.UnitPool(data, {}, voice_warp=(0.85, 1.15))
    a, r = data["sources"][0, 0], data["rois"][0, 0]
    same_a, same_r = pool.warp(a, r, 1.0)
    np.testing.assert_allclose(same_a, a, atol=1e-6)
    np.testing.assert_array_equal(same_r, r)
    for f in (0.85, 0.93, 1.07, 1.15):
        wa, wr = pool.warp(a, r, f)
        for k in range(1, int(25 / f) - 1):
            t_marker = k * 640 / f  # where source sample k * 640 lands
            frames = np.nonzero(wr[:, 0, 0] == k)[0]
            frames = frames[(frames + 1) * f < 25]  # not where the read wraps round to the start
            if len(frames) == 0:  # f > 1 skips some source frames
                continue
            mid = (frames.mean() + 0.5) * 640
            assert abs(mid - t_marker) <= 640 * max(f, 1 / f), (f, k)
        # resampled: the marker peak lands at its new time, its height kept by the interpolation
        k = 3
        i = int(round(k * 640 / f))
        assert float(wa[i - 1: i + 2].max()) > 0.4 * (10.0 + k)  # a one-sample spike, read between samples


def test_voice_warp_is_numpys_periodic_interpolation_bit_for_bit():
    """UnitPool.warp writes np.interp(t f, t, a, period=n) out for speed: the batches (and so a
    run resumed across the change) must be exactly the same."""
    data = _fake_scenes(n=16000, T_=25)
    pool = MX.UnitPool(data, {}, voice_warp=(0.85, 1.15))
    rng = np.random.default_rng(11)
    a = rng.standard_normal(16000).astype(np.float32)
    t = np.arange(16000, dtype=np.float64)
    for f in [0.85, 1.0, 1.15, 0.9999999, 1.0000001, *rng.uniform(0.85, 1.15, 50)]:
        np.testing.assert_array_equal(pool.warp(a, data["rois"][0, 0], f)[0],
                                      np.interp(t * f, t, a, period=16000).astype(np.float32))


def test_voice_warp_changes_only_the_voices():
    """With a factor range of [1, 1] the batches are exactly those without the warp: the factors
    come from their own generator, not the one that draws units, shifts, gains and noise."""
    data = _fake_scenes(n=16000, T_=25)
    plain = MX.UnitPool(data, {"snr_db": [10.0, 10.0]})
    unit = MX.UnitPool(data, {"snr_db": [10.0, 10.0]}, voice_warp=(1.0, 1.0), seed=3)
    warped = MX.UnitPool(data, {"snr_db": [10.0, 10.0]}, voice_warp=(0.9, 1.1), seed=3)
    a = plain.batch(np.random.default_rng(4), 6, "av", [0.0, 1.0, 0.0], 0.0, step=7)
    b = unit.batch(np.random.default_rng(4), 6, "av", [0.0, 1.0, 0.0], 0.0, step=7)
    c = warped.batch(np.random.default_rng(4), 6, "av", [0.0, 1.0, 0.0], 0.0, step=7)
    for x, y in zip(a, b):
        torch.testing.assert_close(x, y, atol=1e-6, rtol=0)
    assert not torch.allclose(a[1], c[1], atol=1e-3)
    with pytest.raises(ValueError, match="voice_warp"):
        MX.UnitPool(data, {}, voice_warp=(1.2, 0.8))


def test_prefetched_batches_depend_only_on_the_step():
    """train.loader_workers: worker processes mix each step's batch from that step's own seed, so
    the batches are the same for any number of workers and come back in step order."""
    pool = MX.UnitPool(_fake_scenes(), {})
    args = (pool, 5, 4, "av", [1.0, 1.0, 0.0], 0.2, 0)
    one, three = MX.Prefetcher(1, args, first_step=10), MX.Prefetcher(3, args, first_step=10)
    try:
        for step in range(10, 16):
            a, b = one.get(step), three.get(step)
            for x, y in zip(a, b):
                np.testing.assert_array_equal(x, y)
        assert not np.array_equal(one.get(16)[0], one.get(17)[0])
    finally:
        one.close()
        three.close()


def test_dynamic_mixing_distinct_voices_and_silent_targets():
    data = _fake_scenes(n_scenes=6)
    pool = MX.UnitPool(data, {"snr_db": [0.0, 0.0], "speaker_gain_db": [0.0, 0.0]})
    rng = np.random.default_rng(2)
    mix, tgt, rois, talking = pool.batch(rng, 64, "av", [0.0, 1.0, 0.0], p_silent=0.5)
    silent = ~talking.numpy()
    assert 16 < silent.sum() < 48
    assert float(tgt[torch.from_numpy(silent)].abs().max()) == 0.0
    # noise at 0 dB: the mixture's power is about twice its speech power (never equal: two voices)
    mix_a, tgt_a, _, ok = pool.batch(rng, 8, "audio", [1.0, 1.0, 0.0], p_silent=0.0)
    assert tgt_a.shape == (8, 2, 3200) and bool(ok.all())
    assert not any(torch.equal(tgt_a[b, 0], tgt_a[b, 1]) for b in range(8))


def test_aux_target_follows_the_next_chunk():
    tgt = torch.zeros(1, 640 * 4)
    tgt[0, 640 * 2: 640 * 3] = 1.0  # only chunk 2 is loud
    mix = tgt + 0.01
    e = L.chunk_energy_target(tgt, mix)
    assert e.shape == (1, 4)
    assert int(e[0].argmax()) == 1  # the mouth of chunk 1 announces the sound of chunk 2
    assert float(e[0, 0]) == pytest.approx(-4.0, abs=0.01)


def test_training_splits_merge_with_distinct_voices(tmp_path, monkeypatch):
    for split, n in (("train", 4), ("train_festival", 6)):
        d = _fake_scenes(n_scenes=n)
        (tmp_path / split).mkdir()
        np.savez(tmp_path / split / "shard-00000.npz", mixture=d["sources"].sum(1), **d,
                 face_ids=np.array(["f"]), voice_ids=np.array(["v"]))
    monkeypatch.setattr(MX, "data_dir", lambda cfg: tmp_path)
    data = MX.load_training_data({"train": {"train_splits": ["train", "train_festival"]}})
    assert data["sources"].shape[0] == 10
    v = data["voice_index"]
    assert (v[:, 2] == -1).all()  # silent faces keep "no voice"
    first, second = set(v[:4, :2].ravel()), set(v[4:, :2].ravel())
    assert first and second and not first & second


# --- train.mix_on_device: the same dynamic mixing as tensor ops (training/device_mix.py) ---

def test_device_mixing_keeps_audio_and_mouth_in_sync():
    pool = DeviceUnitPool(MX.UnitPool(_fake_scenes(), {"snr_db": [100.0, 100.0], "speaker_gain_db": [0.0, 0.0]}))
    gen = torch.Generator().manual_seed(1)
    mix, tgt, rois, talking = pool.batch(gen, 32, "av", [1.0, 0.0, 0.0], p_silent=0.0)
    assert mix.shape == (32, 3200) and rois.shape == (32, 5, 1, 48, 48) and bool(talking.all())
    shifts = set()
    for b in range(32):
        f0 = int(np.nonzero(np.round(rois[b, :, 0, 0, 0].numpy() * 255) == 0)[0][0])
        assert float(tgt[b, f0 * 640]) == pytest.approx(10.0, abs=1e-4)
        shifts.add(f0)
    assert len(shifts) >= 3  # the shifts vary
    assert torch.allclose(mix, tgt, atol=1e-3)


def test_device_mixing_voices_silent_faces_and_snr():
    data = _fake_scenes(n_scenes=6)
    pool = DeviceUnitPool(MX.UnitPool(data, {"snr_db": [10.0, 10.0], "speaker_gain_db": [-5.0, 5.0]}))
    gen = torch.Generator().manual_seed(2)
    mix, tgt, rois, talking = pool.batch(gen, 64, "av", [0.0, 1.0, 0.0], p_silent=0.5)
    silent = ~talking
    assert 16 < int(silent.sum()) < 48
    assert float(tgt[silent].abs().max()) == 0.0
    # a silent face's ROIs are a silent unit's (slot 2 of the fake scenes), not the talker's
    for b in np.nonzero(silent.numpy())[0][:5]:
        r = np.round(rois[b, :, 0].numpy() * 255).astype(np.uint8)
        assert any(np.array_equal(r, np.roll(data["rois"][s, 2], k, axis=0)) for s in range(6) for k in range(5))
    # two talkers of different voices, noise at exactly 10 dB below the speech
    mix_a, tgt_a, none, ok = pool.batch(gen, 16, "audio", [1.0, 1.0, 0.0], p_silent=0.0)
    assert none is None and tgt_a.shape == (16, 2, 3200) and bool(ok.all())
    assert not any(torch.equal(tgt_a[b, 0], tgt_a[b, 1]) for b in range(16))
    speech = tgt_a.sum(1)
    snr = 10 * torch.log10(speech.pow(2).sum(-1) / (mix_a - speech).pow(2).sum(-1))
    assert torch.allclose(snr, torch.full_like(snr, 10.0), atol=1e-3)
    # gains within +-5 dB of the unit's own level
    src_rms = float(np.sqrt(np.mean(data["sources"][:, :2] ** 2)))
    rms = tgt_a.pow(2).mean(-1).sqrt() / src_rms
    assert float(rms.min()) > 10 ** (-5.5 / 20) and float(rms.max()) < 10 ** (5.5 / 20)


def test_device_noise_matches_the_numpy_noise():
    """Unit RMS, and on average the same spectral tilt as synth.scene.coloured_noise."""
    from training.synth.scene import coloured_noise

    pool = DeviceUnitPool(MX.UnitPool(_fake_scenes(n=16000, T_=25), {}))
    x = pool.coloured_noise(torch.Generator().manual_seed(3), 400).double()
    assert torch.allclose(x.pow(2).mean(-1), torch.ones(400, dtype=torch.float64), atol=1e-4)
    rng = np.random.default_rng(3)
    y = np.stack([coloured_noise(rng, 16000) for _ in range(400)])

    def tilt(z):  # dB of power below 500 Hz over power above 4 kHz, averaged
        p = np.abs(np.fft.rfft(z, axis=-1)) ** 2
        return float(np.mean(10 * np.log10(p[:, 1:500].mean(-1) / p[:, 4000:].mean(-1))))

    assert tilt(x.numpy()) == pytest.approx(tilt(y), abs=1.5)


def test_roi_augmentation_is_one_camera_per_sequence():
    """train.roi_augment: each sequence gets its own camera (brightness, contrast, gamma,
    sharpness), the same for all its frames; 8-bit values in [0, 1]; reproducible from the seed."""
    from training.roi_augment import augment_rois

    g = torch.Generator().manual_seed(0)
    base = torch.rand(1, 1, 1, 48, 48, generator=g) * 0.6 + 0.2
    rois = base.expand(64, 10, 1, 48, 48).contiguous()  # the same still frame everywhere
    out = augment_rois(rois, torch.Generator().manual_seed(5), low_res=False)
    assert out.shape == rois.shape and float(out.min()) >= 0.0 and float(out.max()) <= 1.0
    assert torch.equal(torch.round(out * 255) / 255, out)
    assert torch.equal(out, augment_rois(rois, torch.Generator().manual_seed(5), low_res=False))
    means = out.mean(dim=(2, 3, 4))  # [sequence, frame]
    contrast = out.std(dim=(2, 3, 4))
    # across sequences the camera moves the picture a lot; within one it stays (noise only)
    assert float(means.std(dim=0).mean()) > 0.05 and float(means.std(dim=1).max()) < 0.005
    assert float(contrast.std(dim=0).mean()) > 0.03 and float(contrast.std(dim=1).max()) < 0.005
    # and the mouth is still the mouth: every output correlates with its input picture
    x = (base - base.mean()).flatten()
    corr = [float(torch.dot(x, (o - o.mean()).flatten()) / (x.norm() * (o - o.mean()).norm())) for o in out[:, 0]]
    assert min(corr) > 0.5


def test_roi_augmentation_far_faces_lose_detail(monkeypatch):
    """roi_augment's low-resolution camera: P_LOW_RES of the sequences lose fine detail (the mean
    pixel-to-pixel difference), the others are untouched (the other camera steps set neutral)."""
    from training import roi_augment as A

    g = torch.Generator().manual_seed(0)
    fine = torch.round(torch.rand(1, 1, 48, 48, generator=g) * 255) / 255
    detail = lambda x: x.diff(dim=-1).abs().mean(dim=(-3, -2, -1))  # noqa: E731
    assert float(detail(A._low_res(fine, 3.0))) < 0.5 * float(detail(fine))
    for name, neutral in (("GAMMA", (1.0, 1.0)), ("SHARPEN", (0.0, 0.0)), ("CONTRAST", (1.0, 1.0)),
                          ("BRIGHTNESS", 0.0), ("NOISE", 0.0)):
        monkeypatch.setattr(A, name, neutral)
    rois = fine[None].expand(400, 2, 1, 48, 48).contiguous()
    out = A.augment_rois(rois, torch.Generator().manual_seed(1))
    changed = (out - rois).abs().amax(dim=(1, 2, 3, 4)) > 1e-6
    assert abs(float(changed.float().mean()) - A.P_LOW_RES) < 0.1
    assert torch.equal(out[~changed], rois[~changed])
    assert float(detail(out[changed]).max()) < 0.8 * float(detail(fine))


def test_device_voice_warp_is_the_numpy_warp():
    """train.voice_warp on the device: the same time maps as UnitPool.warp (audio by linear
    interpolation, circular; ROIs re-indexed), for factors either side of 1."""
    data = _fake_scenes(n=16000, T_=25)
    cpu = MX.UnitPool(data, {}, voice_warp=(0.88, 1.12))
    dev = DeviceUnitPool(cpu)
    a, r = data["sources"][1, 0], data["rois"][1, 0]
    for f in (0.88, 0.97, 1.0, 1.05, 1.12):
        a_cpu, r_cpu = cpu.warp(a, r, f)
        i0, i1, w, frames = dev.warp_indices(torch.tensor([f], dtype=torch.float64))
        x = torch.from_numpy(a)
        a_dev = x[i0[0]] * (1 - w[0]) + x[i1[0]] * w[0]
        assert torch.allclose(a_dev, torch.from_numpy(a_cpu), atol=1e-5)
        assert np.array_equal(r[frames[0].numpy()], r_cpu)


def test_device_mixing_with_voice_warp_keeps_the_mouth_on_the_voice():
    """With the warp on, talker 0's ROIs follow its audio's time map. Source frame k's audio
    starts with a marker of height 10 * 3^k; output frame j shows source frame k exactly when
    that marker is read within frame j's first half (i f crosses the frame start in (j - 1/2, j + 1/2])."""
    data = _fake_scenes(n=6400, T_=10)  # enough frames for a factor to move a frame boundary
    hop = 640
    for k in range(10):
        data["sources"][:, :2, k * hop] = 10.0 * 3 ** k  # told apart after interpolation's 0.7-1.2x
    pool = DeviceUnitPool(MX.UnitPool(data, {"snr_db": [100.0, 100.0], "speaker_gain_db": [0.0, 0.0]},
                                     voice_warp=(0.9, 1.1)))
    mix, tgt, rois, talking = pool.batch(torch.Generator().manual_seed(4), 32, "av", [1.0, 0.0, 0.0], p_silent=0.0)
    moved = 0
    for b in range(32):
        shown = np.round(rois[b, :, 0, 0, 0].numpy() * 255).astype(int)  # source frame per output frame
        x = tgt[b].numpy()
        for j, k in enumerate(shown):
            # the last marker read at or before frame j's middle (markers are >= hop / 1.1 apart)
            at = np.nonzero(np.abs(x) > 2.0)[0]
            last = at[at <= (j + 0.5) * hop + 1].max(initial=-1)
            if last < 0:  # frame 0's marker wrapped to the end (a circular read)
                last = at.max()
            pair = np.take(x, [last - 1, last], mode="wrap")
            spike = float(pair[np.abs(pair) > 1.0].sum())
            assert 0.7 * 10 * 3 ** k < spike < 1.2 * 10 * 3 ** k, (b, j, k, spike)
        moved += int(not np.array_equal(shown, (shown[0] + np.arange(10)) % 10))
    assert moved > 0  # some factor moved a frame boundary
