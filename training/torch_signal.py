"""The signal contract (docs/SIGNAL.md) in differentiable PyTorch, for training: the STFT with the
streaming priming, compression, the inverse STFT, and the part of a finite clip that is scored.
training/signal.py is the numpy reference; tests check that the two agree.

Audio is left-padded with PAD = 352 samples (the streaming STFT's priming, docs/SIGNAL.md) so that
640 F samples give exactly 4 F frames and chunk f's frames end with video frame f.
"""

from __future__ import annotations

import torch

from .signal import COMPRESS_EXPONENT, HOP_LENGTH, N_BINS, N_FFT, STREAM_PAD, WIN_LENGTH

PAD = STREAM_PAD  # 352


def stft_t(x: torch.Tensor) -> torch.Tensor:
    """[B, n] -> complex [B, T, 257] per the signal contract, after PAD zeros on the left."""
    x = torch.nn.functional.pad(x, (PAD, 0))
    s = torch.stft(x, n_fft=N_FFT, hop_length=HOP_LENGTH, win_length=WIN_LENGTH,
                   window=torch.hann_window(WIN_LENGTH, dtype=x.dtype, device=x.device), center=False, return_complex=True)
    return s.transpose(1, 2)


def compress_t(s: torch.Tensor, p: float = COMPRESS_EXPONENT) -> torch.Tensor:
    mag = s.abs()
    return s * torch.where(mag > 0, mag.clamp_min(1e-12) ** (p - 1), torch.zeros_like(mag))


def to_2ch(s: torch.Tensor) -> torch.Tensor:
    return torch.stack([s.real, s.imag], dim=1).float()  # [B, 2, T, F]


def _window_padded(dtype=torch.float32, device=None) -> torch.Tensor:
    w = torch.hann_window(WIN_LENGTH, dtype=dtype, device=device)
    off = (N_FFT - WIN_LENGTH) // 2
    return torch.nn.functional.pad(w, (off, N_FFT - WIN_LENGTH - off))


def istft_t(spec: torch.Tensor, length: int) -> torch.Tensor:
    """Differentiable inverse of `stft_t` BEFORE removing the PAD: complex [..., T, 257] ->
    [..., length] (irfft, synthesis window, overlap-add, division by the overlap-added squared
    window where it is > 1e-8, as training/signal.py `istft`)."""
    lead = spec.shape[:-2]
    T = spec.shape[-2]
    x = spec.reshape(-1, T, N_BINS)
    w = _window_padded(x.real.dtype, x.device)
    frames = torch.fft.irfft(x, n=N_FFT, dim=-1) * w  # [N, T, 512]
    total = N_FFT + HOP_LENGTH * (T - 1)
    fold = lambda f: torch.nn.functional.fold(  # noqa: E731
        f.transpose(1, 2), output_size=(1, total), kernel_size=(1, N_FFT), stride=(1, HOP_LENGTH))[:, 0, 0]
    y = fold(frames)
    env = fold((w * w).expand(1, T, N_FFT))
    y = torch.where(env > 1e-8, y / env.clamp_min(1e-8), torch.zeros_like(y))
    if total < length:
        y = torch.nn.functional.pad(y, (0, length - total))
    return y[:, :length].reshape(*lead, length)


def estimates_time(est: torch.Tensor, n: int) -> torch.Tensor:
    """Masked spectra -> time signals aligned with the sources (PAD removed), [..., n]."""
    return istft_t(est, n + PAD)[..., PAD:]


def final_part(x: torch.Tensor) -> torch.Tensor:
    """The samples of a finite clip whose STFT frames are all in: all but the last PAD (352).
    Those last samples are covered only by the tails of the last frames' windows, where the iSTFT
    divides by a near-zero window envelope: for any mask but the identity they blow up (x650 five
    samples before the end). A stream never outputs them before the next frames arrive, so the
    loss and the evaluation score only the final part."""
    return x[..., : x.shape[-1] - PAD]
