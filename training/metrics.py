"""Separation metrics (numpy).

Definitions (s = reference, y = estimate, x = mixture; signals are NOT mean-removed here,
following the usual SI-SDR paper form with zero-mean inputs; call with zero-mean signals or pass
`zero_mean=True`):

* SI-SDR(y, s) = 10 log10(|a s|^2 / |a s - y|^2),  a = <y, s> / |s|^2   (scale-invariant SDR,
  Le Roux et al. 2019; equal to SI-SNR).
* SI-SDRi(y, s, x) = SI-SDR(y, s) - SI-SDR(x, s): improvement over leaving the mixture as is.
* SDR(y, s) = 10 log10(|s|^2 / |s - y|^2): plain signal-to-distortion ratio, no scale allowed
  (not BSSEval's SDR, which allows a 512-tap filter).
* SDRi(y, s, x) = SDR(y, s) - SDR(x, s).
* Face->voice assignment accuracy: for each face slot with a talking ground-truth voice, the
  estimate is "assigned correctly" when its SI-SDR (as defined above, without mean removal) is
  highest against that face's own source among all sources in the scene; accuracy = correct /
  evaluated slots.
"""

from __future__ import annotations

import numpy as np

EPS = 1e-12


def _prep(y, s, zero_mean):
    y = np.asarray(y, dtype=np.float64)
    s = np.asarray(s, dtype=np.float64)
    if y.shape != s.shape:
        raise ValueError(f"shapes differ: {y.shape} vs {s.shape}")
    if zero_mean:
        y = y - y.mean(axis=-1, keepdims=True)
        s = s - s.mean(axis=-1, keepdims=True)
    return y, s


def si_sdr(y, s, zero_mean: bool = False) -> np.ndarray:
    y, s = _prep(y, s, zero_mean)
    a = np.sum(y * s, axis=-1, keepdims=True) / (np.sum(s * s, axis=-1, keepdims=True) + EPS)
    t = a * s
    return 10 * np.log10((np.sum(t * t, axis=-1) + EPS) / (np.sum((t - y) ** 2, axis=-1) + EPS))


def sdr(y, s) -> np.ndarray:
    y, s = _prep(y, s, False)
    return 10 * np.log10((np.sum(s * s, axis=-1) + EPS) / (np.sum((s - y) ** 2, axis=-1) + EPS))


def si_sdri(y, s, x, zero_mean: bool = False) -> np.ndarray:
    return si_sdr(y, s, zero_mean) - si_sdr(x, s, zero_mean)


def sdri(y, s, x) -> np.ndarray:
    return sdr(y, s) - sdr(x, s)


def assigned_correctly(estimates, sources, talking) -> np.ndarray:
    """Per face slot (estimates, sources: [slots, n]; talking: [slots] bool): True where the slot
    talks and its estimate is closest (SI-SDR) to its own source among the talking ones."""
    sources = np.asarray(sources)
    talking = np.asarray(talking, bool)
    out = np.zeros(len(talking), bool)
    for k in np.nonzero(talking)[0]:
        scores = [si_sdr(estimates[k], sources[j]) if talking[j] else -np.inf for j in range(len(sources))]
        out[k] = int(np.argmax(scores)) == k
    return out


def assignment_accuracy(estimates, sources, talking) -> float:
    """estimates, sources: [slots, n]; talking: [slots] bool. See the module docstring."""
    talking = np.asarray(talking, bool)
    if not talking.any():
        return float("nan")
    return float(assigned_correctly(estimates, sources, talking)[talking].mean())
