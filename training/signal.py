"""Numpy reference of the avsepd signal contract (docs/SIGNAL.md).

This module is the executable definition the Rust code in ``src/dsp/`` is checked against, via the
fixture written by ``training.make_signal_fixture``. Everything is computed in float64 so that the
reference is never the limiting factor when the float32 Rust implementation is compared with it.

The contract in short: 16 kHz mono; frame t covers samples [160 t, 160 t + 512); a periodic Hann
window of 400 samples centred in the 512-sample frame (offsets 56..456); real FFT of 512, no scaling.
This equals ``torch.stft(x, n_fft=512, hop_length=160, win_length=400,
window=torch.hann_window(400), center=False)``.
"""

from __future__ import annotations

import numpy as np

SAMPLE_RATE = 16_000
N_FFT = 512
WIN_LENGTH = 400
HOP_LENGTH = 160
N_BINS = N_FFT // 2 + 1
COMPRESS_EXPONENT = 0.3
# torch.stft pads a shorter window centrally: left pad (512 - 400) // 2 = 56.
WINDOW_OFFSET = (N_FFT - WIN_LENGTH) // 2
# iSTFT: samples whose overlap-added squared window is not above this are set to 0.
ENVELOPE_EPS = 1e-8
# Zeros the streaming STFT is primed with (its delay): a signal left-padded with them gives exactly
# 4 F frames for 640 F samples, frame 4 f + 3 ending with video frame f.
STREAM_PAD = N_FFT - HOP_LENGTH  # 352
# STFT frames per streaming model call (DESIGN.md "Streaming model call": 40 ms, one video frame).
CHUNK_FRAMES = 4


def hann_window_padded() -> np.ndarray:
    """Periodic Hann window of WIN_LENGTH samples, zero-padded centrally to N_FFT (float64)."""
    n = np.arange(WIN_LENGTH, dtype=np.float64)
    hann = 0.5 - 0.5 * np.cos(2.0 * np.pi * n / WIN_LENGTH)
    window = np.zeros(N_FFT, dtype=np.float64)
    window[WINDOW_OFFSET : WINDOW_OFFSET + WIN_LENGTH] = hann
    return window


def num_frames(length: int) -> int:
    """Frames a center=False STFT yields for `length` samples (0 when shorter than one frame)."""
    if length < N_FFT:
        return 0
    return 1 + (length - N_FFT) // HOP_LENGTH


def stft(x: np.ndarray) -> np.ndarray:
    """STFT of a 1-D signal, center=False: complex128 array of shape [frames, N_BINS]."""
    x = np.asarray(x, dtype=np.float64)
    if x.ndim != 1:
        raise ValueError(f"stft expects a 1-D signal, got shape {x.shape}")
    frames = num_frames(len(x))
    if frames == 0:
        return np.zeros((0, N_BINS), dtype=np.complex128)
    starts = np.arange(frames) * HOP_LENGTH
    segments = x[starts[:, None] + np.arange(N_FFT)[None, :]]
    return np.fft.rfft(segments * hann_window_padded()[None, :], n=N_FFT, axis=-1)


def istft(spec: np.ndarray, length: int | None = None) -> np.ndarray:
    """Inverse of `stft`: irfft (1/N included), synthesis window, overlap-add, envelope division.

    The natural output length is N_FFT + HOP_LENGTH * (frames - 1); `length` truncates or
    zero-pads to the requested number of samples. Samples where the overlap-added squared window
    is <= ENVELOPE_EPS (the first WINDOW_OFFSET samples, for instance) are 0.
    """
    spec = np.asarray(spec)
    if spec.ndim != 2 or spec.shape[1] != N_BINS:
        raise ValueError(f"istft expects [frames, {N_BINS}], got shape {spec.shape}")
    frames = spec.shape[0]
    window = hann_window_padded()
    total = N_FFT + HOP_LENGTH * (frames - 1) if frames > 0 else 0
    out = np.zeros(total, dtype=np.float64)
    envelope = np.zeros(total, dtype=np.float64)
    if frames > 0:
        time = np.fft.irfft(spec.astype(np.complex128), n=N_FFT, axis=-1) * window[None, :]
        for t in range(frames):
            start = t * HOP_LENGTH
            out[start : start + N_FFT] += time[t]
            envelope[start : start + N_FFT] += window * window
    nonzero = envelope > ENVELOPE_EPS
    out = np.where(nonzero, out / np.where(nonzero, envelope, 1.0), 0.0)
    if length is not None:
        if length <= total:
            out = out[:length]
        else:
            out = np.concatenate([out, np.zeros(length - total)])
    return out


def stream_stft(x: np.ndarray) -> np.ndarray:
    """The STFT a stream sees: `x` after STREAM_PAD priming zeros, [len(x) / HOP_LENGTH, N_BINS]
    for a length that is a multiple of the hop."""
    return stft(np.concatenate([np.zeros(STREAM_PAD), np.asarray(x, dtype=np.float64)]))


def stream_istft(spec: np.ndarray, length: int) -> np.ndarray:
    """Inverse of `stream_stft`: `length` samples aligned with the input (priming removed)."""
    return istft(spec, length + STREAM_PAD)[STREAM_PAD:]


def compress(spec: np.ndarray, exponent: float = COMPRESS_EXPONENT) -> np.ndarray:
    """|X|^exponent * e^{i angle X}; exactly 0 where |X| == 0."""
    spec = np.asarray(spec, dtype=np.complex128)
    mag = np.abs(spec)
    positive = mag > 0.0
    scale = np.where(positive, np.power(np.where(positive, mag, 1.0), exponent - 1.0), 0.0)
    return spec * scale


def decompress(spec: np.ndarray, exponent: float = COMPRESS_EXPONENT) -> np.ndarray:
    """Inverse of `compress`: |Y|^(1/exponent) * e^{i angle Y}."""
    return compress(spec, 1.0 / exponent)


def to_model_input(spec: np.ndarray) -> np.ndarray:
    """Compressed spectrum as float32 [2, frames, N_BINS] (channel 0 real, 1 imaginary).

    The model's batch dimension is not added here: stack along a new axis 0 for [batch, 2, T, F].
    """
    c = compress(spec)
    return np.stack([c.real, c.imag]).astype(np.float32)


def apply_mask(mask_2ch: np.ndarray, spec: np.ndarray) -> np.ndarray:
    """Complex mask (model output [2, frames, N_BINS]) times the UNcompressed mixture spectrum."""
    mask_2ch = np.asarray(mask_2ch, dtype=np.float64)
    if mask_2ch.ndim != 3 or mask_2ch.shape[0] != 2:
        raise ValueError(f"mask must be [2, frames, {N_BINS}], got shape {mask_2ch.shape}")
    mask = mask_2ch[0] + 1j * mask_2ch[1]
    if mask.shape != spec.shape:
        raise ValueError(f"mask {mask.shape} and spectrum {spec.shape} differ")
    return mask * np.asarray(spec, dtype=np.complex128)


def to_interleaved(spec: np.ndarray) -> np.ndarray:
    """Complex [frames, N_BINS] as float32 [frames, N_BINS, 2] (re, im): the fixture layout."""
    return np.stack([spec.real, spec.imag], axis=-1).astype(np.float32)


def from_interleaved(data: np.ndarray) -> np.ndarray:
    """Inverse of `to_interleaved` (float64 result)."""
    data = np.asarray(data, dtype=np.float64)
    return data[..., 0] + 1j * data[..., 1]
