"""training/scene_postfilter.py's filter (numpy only): disjoint estimates pass unchanged, and a
voice leaking into another face's estimate is pushed down there."""

from __future__ import annotations

import numpy as np

from training.scene_postfilter import postfilter


def test_disjoint_estimates_pass_and_leakage_is_reduced():
    rng = np.random.default_rng(0)
    a = rng.standard_normal((5, 8)) + 1j * rng.standard_normal((5, 8))
    b = rng.standard_normal((5, 8)) + 1j * rng.standard_normal((5, 8))
    a[:, 4:] = 0
    b[:, :4] = 0
    X = a + b
    out = postfilter(np.stack([a, b]), X, 1.0, residual=True)
    assert np.allclose(out, np.stack([a, b]))
    # Face 0's estimate also carries 10 % of voice b; face 1 claims those bins far more strongly.
    leaky = np.stack([a + 0.1 * b, b])
    out = postfilter(leaky, X, 1.0, residual=False)
    before = np.sum(np.abs(leaky[0, :, 4:]) ** 2)
    after = np.sum(np.abs(out[0, :, 4:]) ** 2)
    assert after < 0.02 * before
    assert np.allclose(out[0, :, :4], a[:, :4])
