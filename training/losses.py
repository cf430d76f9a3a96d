"""Training losses.

Loss (train.loss = "sisdr", the only one): the masked STFT is taken back to the time domain with a
differentiable iSTFT (`torch_signal.istft_t`, the same synthesis as training/signal.py) and scored
by negative SI-SDR (zero-mean) against the target, in dB; a silent face's output is scored by its
energy relative to the mixture, 10 log10(|y|^2 / |x|^2 + 1e-3) x silent_weight (pushes it towards
-30 dB). (v1's compressed-spectrum MSE, train.loss = "spec", is gone: it did not separate.)
The audio-only baseline's two outputs are matched to two voices by permutation-invariant training
(PIT: the assignment with the lower loss is the one trained).
"""

from __future__ import annotations

import torch

from .model import Separator
from .torch_signal import compress_t, estimates_time, final_part, stft_t, to_2ch


def si_sdr_t(y: torch.Tensor, s: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero-mean SI-SDR in dB over the last axis (training/metrics.py with zero_mean=True)."""
    y = y - y.mean(dim=-1, keepdim=True)
    s = s - s.mean(dim=-1, keepdim=True)
    a = (y * s).sum(-1, keepdim=True) / ((s * s).sum(-1, keepdim=True) + eps)
    t = a * s
    return 10 * torch.log10(((t * t).sum(-1) + eps) / (((t - y) ** 2).sum(-1) + eps))


def forward_batch(model: Separator, mix: torch.Tensor, rois: torch.Tensor | None, with_aux: bool = False):
    """Masked spectra: AV [B, T, F] complex, audio [B, 2, T, F]; and the mixture STFT [B, T, F]
    (with_aux, AV: and the auxiliary energy prediction [B, chunks] and, for a model with select,
    the internal outputs' spectra [B, 2, T, F], else None)."""
    X = stft_t(mix)
    if model.kind == "av":
        mask, aux, internal = model.forward_parts(to_2ch(compress_t(X)), rois)
        est = torch.complex(mask[:, 0], mask[:, 1]) * X
        if not with_aux:
            return est, X
        if internal is not None:
            internal = torch.complex(internal[:, :, 0], internal[:, :, 1]) * X[:, None]
        return est, X, aux, internal
    mask = model.forward_sequence(to_2ch(compress_t(X)), None)
    return torch.complex(mask[:, :, 0], mask[:, :, 1]) * X[:, None], X


def chunk_energy_target(tgt: torch.Tensor, mix: torch.Tensor, chunk: int = 640) -> torch.Tensor:
    """The auxiliary target: the target's energy in the NEXT 40 ms chunk (the mouth leads the
    sound by 0-120 ms), in units of 10 dB relative to the mixture's mean power, floored at -40 dB:
    [B, chunks]."""
    B, n = tgt.shape
    e = (tgt.reshape(B, n // chunk, chunk) ** 2).mean(-1)
    ref = (mix ** 2).mean(-1, keepdim=True) + 1e-8
    lv = torch.log10(e / ref + 1e-4)
    return torch.cat([lv[:, 1:], lv[:, -1:]], dim=1)


def pit_pair(y0: torch.Tensor, y1: torch.Tensor, s0: torch.Tensor, s1: torch.Tensor) -> torch.Tensor:
    """Mean SI-SDR of two estimates against two references under the better of the 2 pairings."""
    p0 = 0.5 * (si_sdr_t(y0, s0) + si_sdr_t(y1, s1))
    p1 = 0.5 * (si_sdr_t(y1, s0) + si_sdr_t(y0, s1))
    return torch.maximum(p0, p1)


def batch_loss(model: Separator, mix, tgt, rois, talking, silent_weight: float = 0.3,
               aux_weight: float = 0.0, pit_weight: float = 0.0, teacher=None,
               distill_weight: float = 0.0) -> tuple[torch.Tensor, torch.Tensor]:
    """(loss, per-example SI-SDR of talking targets [B] or [B] best-permutation mean, detached).
    aux_weight (AV): weight of the auxiliary visual loss (MSE of `chunk_energy_target`).
    pit_weight (AV with select): weight of the internal outputs' permutation-invariant loss
    against (the face's voice, the rest of the mixture), for faces that talk.
    teacher, distill_weight (AV, v9d): a frozen AV model whose estimate of a talking face's voice
    is a second target, SI-SDR(estimate, teacher's estimate) x distill_weight (see `load_teacher`)."""
    aux = internal = None
    if model.kind == "av" and (aux_weight > 0 or pit_weight > 0):
        est, _, aux, internal = forward_batch(model, mix, rois, with_aux=True)
    else:
        est, _ = forward_batch(model, mix, rois)
    y = estimates_time(est, mix.shape[-1])
    y, tgt_f, x = final_part(y), final_part(tgt), final_part(mix)
    if model.kind == "av":
        sdr = si_sdr_t(y, tgt_f)
        sil = 10 * torch.log10((y ** 2).sum(-1) / ((x ** 2).sum(-1) + 1e-8) + 1e-3)
        tk = talking.float()
        l_ = ((-sdr * tk).sum() + silent_weight * (sil * (1 - tk)).sum()) / len(tk)
        if aux is not None and aux_weight > 0:
            l_ = l_ + aux_weight * ((aux - chunk_energy_target(tgt, mix)) ** 2).mean()
        if internal is not None and pit_weight > 0:
            yi = final_part(estimates_time(internal, mix.shape[-1]))
            pit = pit_pair(yi[:, 0], yi[:, 1], tgt_f, x - tgt_f)
            l_ = l_ - pit_weight * (pit * tk).sum() / len(tk)
        if teacher is not None and distill_weight > 0:
            with torch.no_grad():
                yt = final_part(estimates_time(forward_batch(teacher, mix, rois)[0], mix.shape[-1]))
            l_ = l_ - distill_weight * (si_sdr_t(y, yt) * tk).sum() / len(tk)
        return l_, torch.where(talking, sdr, torch.full_like(sdr, float("nan"))).detach()
    # audio-only PIT over the two permutations
    best = pit_pair(y[:, 0], y[:, 1], tgt_f[:, 0], tgt_f[:, 1])
    return -best.mean(), best.detach()
