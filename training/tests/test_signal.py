"""Checks of the numpy signal reference and the committed fixture (numpy only, no torch)."""

from __future__ import annotations

import json

import numpy as np
import pytest

from training import make_signal_fixture as fixture
from training import signal as sig


def snr_db(reference: np.ndarray, estimate: np.ndarray) -> float:
    err = np.sum((reference - estimate) ** 2)
    return float(10.0 * np.log10(np.sum(reference**2) / err)) if err > 0 else float("inf")


def test_constants():
    assert sig.N_BINS == 257
    assert sig.WINDOW_OFFSET == 56
    assert (sig.SAMPLE_RATE, sig.N_FFT, sig.WIN_LENGTH, sig.HOP_LENGTH) == (16000, 512, 400, 160)
    assert sig.COMPRESS_EXPONENT == 0.3


def test_window_is_centred_periodic_hann():
    w = sig.hann_window_padded()
    assert w.shape == (512,)
    assert np.all(w[:56] == 0.0) and np.all(w[456:] == 0.0)
    assert w[56] == 0.0  # periodic Hann starts at 0 ...
    assert w[56 + 200] == pytest.approx(1.0)  # ... peaks at n = 200 ...
    np.testing.assert_allclose(w[57:456], w[56 + 399 : 56 : -1], atol=1e-15)  # ... symmetric


@pytest.mark.parametrize("name", ["input", "stft", "compressed", "mask", "istft", "masked_istft"])
def test_reference_regenerates_committed_fixture(name):
    arrays = fixture.build_fixture()
    meta = json.loads((fixture.FIXTURE_DIR / "meta.json").read_text())
    shape = tuple(meta["files"][f"{name}.f32"])
    committed = np.fromfile(fixture.FIXTURE_DIR / f"{name}.f32", dtype="<f4").reshape(shape)
    regenerated = arrays[name]
    assert regenerated.shape == committed.shape
    scale = np.max(np.abs(committed))
    assert scale > 0
    assert np.max(np.abs(regenerated.astype(np.float64) - committed)) <= 1e-6 * scale


def test_fixture_shapes_and_size():
    arrays = fixture.build_fixture()
    frames = sig.num_frames(fixture.NUM_SAMPLES)
    assert frames == 23
    assert arrays["stft"].shape == (frames, 257, 2)
    assert arrays["istft"].shape == (fixture.NUM_SAMPLES,)
    assert (fixture.NUM_SAMPLES - sig.N_FFT) % sig.HOP_LENGTH == 0
    assert (128 + fixture.NUM_SAMPLES) % sig.HOP_LENGTH == 0
    assert sum(a.nbytes for a in arrays.values()) < 300_000


def test_stft_matches_direct_dft_of_one_frame():
    x = np.random.default_rng(1).standard_normal(512 + 160 * 3)
    spec = sig.stft(x)
    assert spec.shape == (4, 257)
    t = 2
    seg = x[160 * t : 160 * t + 512] * sig.hann_window_padded()
    n = np.arange(512)
    k = np.arange(257)[:, None]
    direct = np.sum(seg[None, :] * np.exp(-2j * np.pi * k * n / 512), axis=1)
    np.testing.assert_allclose(spec[t], direct, atol=1e-9)


def test_istft_reconstructs_away_from_edges():
    x = np.random.default_rng(2).standard_normal(16000)
    spec = sig.stft(x)
    y = sig.istft(spec, length=len(x))
    covered = sig.N_FFT + sig.HOP_LENGTH * (spec.shape[0] - 1)
    # The envelope is tiny near both ends (first/last 56 samples are not covered at all): skip
    # the window's ramp at the start and the uncovered/ramping tail at the end.
    lo, hi = sig.WINDOW_OFFSET + 2, covered - sig.WINDOW_OFFSET - 2
    assert snr_db(x[lo:hi], y[lo:hi]) > 100.0
    assert np.all(y[: sig.WINDOW_OFFSET] == 0.0)
    assert np.all(y[covered:] == 0.0)


def test_istft_length_argument():
    spec = sig.stft(np.ones(1000))
    natural = sig.N_FFT + sig.HOP_LENGTH * (spec.shape[0] - 1)
    assert sig.istft(spec).shape == (natural,)
    assert sig.istft(spec, length=100).shape == (100,)
    assert sig.istft(spec, length=natural + 7).shape == (natural + 7,)


def test_compression_round_trips_and_handles_zero():
    rng = np.random.default_rng(3)
    spec = rng.standard_normal((5, 257)) + 1j * rng.standard_normal((5, 257))
    spec[0, 0] = 0.0
    c = sig.compress(spec)
    assert c[0, 0] == 0.0
    np.testing.assert_allclose(np.abs(c), np.abs(spec) ** 0.3, rtol=1e-12)
    np.testing.assert_allclose(np.angle(c[1:]), np.angle(spec[1:]), atol=1e-12)
    np.testing.assert_allclose(sig.decompress(c), spec, rtol=1e-10, atol=1e-12)


def test_model_input_layout_and_mask():
    rng = np.random.default_rng(4)
    spec = sig.stft(rng.standard_normal(2000))
    m = sig.to_model_input(spec)
    assert m.dtype == np.float32 and m.shape == (2, spec.shape[0], 257)
    c = sig.compress(spec)
    np.testing.assert_allclose(m[0], c.real, rtol=1e-6, atol=1e-6)
    np.testing.assert_allclose(m[1], c.imag, rtol=1e-6, atol=1e-6)
    ones = np.stack([np.ones(spec.shape), np.zeros(spec.shape)])
    np.testing.assert_allclose(sig.apply_mask(ones, spec), spec)
    np.testing.assert_allclose(sig.apply_mask(np.stack([np.zeros(spec.shape)] * 2), spec), 0)
