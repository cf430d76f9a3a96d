"""Training-loss pieces: need torch (run with `make test-training`); skipped when torch is missing."""

from __future__ import annotations

import numpy as np
import pytest

torch = pytest.importorskip("torch")

from training import metrics as M  # noqa: E402
from training import signal as S  # noqa: E402
from training import train as T  # noqa: E402
from training.model import Separator  # noqa: E402


def test_istft_matches_numpy_reference_and_inverts():
    g = torch.Generator().manual_seed(0)
    x = torch.randn(2, 3200, generator=g, dtype=torch.float64)
    X = T.stft_t(x)
    y = T.estimates_time(X, 3200)
    ref = S.istft(X[1].numpy(), length=3200 + T.PAD)[T.PAD:]
    assert np.max(np.abs(ref - y[1].numpy())) < 1e-6
    # all but the last 57 samples (no later frame covers them yet) come back
    assert torch.allclose(y[:, :-57], x[:, :-57], atol=1e-6)


def test_si_sdr_matches_metrics():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(800)
    y = s + 0.3 * rng.standard_normal(800)
    got = float(T.si_sdr_t(torch.from_numpy(y), torch.from_numpy(s)))
    assert got == pytest.approx(float(M.si_sdr(y, s, zero_mean=True)), abs=1e-4)


def test_pit_loss_ignores_target_order():
    torch.manual_seed(0)
    m = Separator("audio").eval()
    mix = torch.randn(3, 1920) * 0.1
    tgt = torch.randn(3, 2, 1920) * 0.05
    ok = torch.ones(3, 2, dtype=torch.bool)
    with torch.no_grad():
        a, sa = T.batch_loss(m, mix, tgt, None, ok)
        b, sb = T.batch_loss(m, mix, tgt.flip(1), None, ok)
    assert torch.allclose(a, b, atol=1e-5) and torch.allclose(sa, sb, atol=1e-5)


def test_av_loss_talking_and_silent():
    torch.manual_seed(0)
    m = Separator("av")
    mix = torch.randn(2, 1920) * 0.1
    tgt = torch.stack([torch.randn(1920) * 0.05, torch.zeros(1920)])
    rois = torch.rand(2, 3, 1, 48, 48)
    loss, sdr = T.batch_loss(m, mix, tgt, rois, torch.tensor([True, False]))
    assert torch.isfinite(loss) and torch.isfinite(sdr[0]) and torch.isnan(sdr[1])
    loss.backward()
    assert all(torch.isfinite(p.grad).all() for p in m.parameters() if p.grad is not None)
