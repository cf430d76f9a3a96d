import numpy as np
import pytest

from training import metrics as M


def test_si_sdr_known_values():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    n = rng.standard_normal(16000)
    n -= (n @ s) / (s @ s) * s  # orthogonal to s
    n *= np.linalg.norm(s) / np.linalg.norm(n) / 10  # 20 dB below
    assert M.si_sdr(s + n, s) == pytest.approx(20.0, abs=1e-9)
    assert M.si_sdr(3.0 * (s + n), s) == pytest.approx(20.0, abs=1e-9)  # scale invariant
    assert M.sdr(s + n, s) == pytest.approx(20.0, abs=1e-9)
    assert M.sdr(2.0 * s, s) == pytest.approx(0.0, abs=1e-9)  # 10 log10(1/1)
    assert M.si_sdr(s, s) > 100


def test_improvements():
    rng = np.random.default_rng(1)
    s = rng.standard_normal(8000)
    n = rng.standard_normal(8000)
    n -= (n @ s) / (s @ s) * s
    n *= np.linalg.norm(s) / np.linalg.norm(n)  # 0 dB mixture
    x = s + n
    y = s + 0.1 * n  # 20 dB
    assert M.si_sdr(x, s) == pytest.approx(0.0, abs=1e-9)
    assert M.si_sdri(y, s, x) == pytest.approx(20.0, abs=1e-9)
    assert M.sdri(y, s, x) == pytest.approx(20.0, abs=1e-9)


def test_assignment_accuracy():
    rng = np.random.default_rng(2)
    src = rng.standard_normal((3, 4000))
    talking = np.array([True, True, False])
    assert M.assignment_accuracy(src, src, talking) == 1.0
    swapped = src[[1, 0, 2]]
    assert M.assignment_accuracy(swapped, src, talking) == 0.0
    half = np.stack([src[0], src[0], src[2]])
    assert M.assignment_accuracy(half, src, talking) == 0.5
    # per slot: a silent slot is never "assigned correctly", whatever its estimate
    assert M.assigned_correctly(half, src, talking).tolist() == [True, False, False]
    assert M.assigned_correctly(src, src, talking).tolist() == [True, True, False]
