"""Training loop (PyTorch, CPU by default): `python -m training train --config ...`.

AV model: one example = (scene, face slot): input = compressed mixture STFT + that slot's mouth
ROIs, target = that face's own source (zeros for a visible-but-silent face).
Audio-only baseline: one example = a scene with at least two talking faces; its two outputs are
matched to two of the scene's voices by permutation-invariant training (PIT: the assignment with
the lower loss is the one trained).

Audio is left-padded with PAD = 352 samples (the streaming STFT's priming, docs/SIGNAL.md) so that
640 F samples give exactly 4 F frames and chunk f's frames end with video frame f.

Loss (train.loss = "sisdr", the default): the masked STFT is taken back to the time domain with a
differentiable iSTFT (`istft_t`, the same synthesis as training/signal.py) and scored by negative
SI-SDR (zero-mean) against the target, in dB; a silent face's output is scored by its energy
relative to the mixture, 10 log10(|y|^2 / |x|^2 + 1e-3) x silent_weight (pushes it towards
-30 dB). (v1's compressed-spectrum MSE, train.loss = "spec", is gone: it did not separate.)
Curriculum (train.curriculum_steps): before that step only scenes with at most 2 talking faces
are drawn. Checkpoint (model, optimiser, RNG, step, history) every train.ckpt_every steps to
training/runs/<name>/ckpt.pt; a rerun resumes from it. Log: training/runs/<name>/log.txt.
"""

from __future__ import annotations

import collections
import json
import math
import multiprocessing
import time
from pathlib import Path

import numpy as np
import torch

from .config import ROOT, data_dir, run_dir
from .config import load as load_config
from .crop_geometry import geometry_ranges
from .device_mix import DeviceUnitPool
from .model import Separator, count_params, flops_per_second, widen_state_dict
from .roi_augment import augment_geometry, augment_rois
from .synth.scene import load_shard_files, load_shards, shard_paths
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


def make_model(cfg: dict) -> Separator:
    m = cfg["model"]
    if m.get("kind") == "fused_head":  # v8L: two trained runs, frozen, and a head to train
        from .fusion_head import make_learned_fused

        return make_learned_fused(cfg)
    if m.get("arch", "chunk_gru") == "dualpath":  # v13 (experiment): training/band_model.py
        from .band_model import BandSeparator

        return BandSeparator(m.get("kind", "av"), int(m.get("dim", 48)), int(m.get("blocks", 3)),
                             int(m.get("visual_dim", 64)), bool(m.get("select", True)), bool(m.get("roi_norm", True)))
    if m.get("arch", "chunk_gru") != "chunk_gru":
        raise ValueError(f"model.arch = {m['arch']!r}: \"chunk_gru\" (Separator) or \"dualpath\" (BandSeparator)")
    return Separator(m.get("kind", "av"), m.get("hidden", 384), m.get("visual_dim", 64), m.get("frame_dim", 192),
                     m.get("gru_layers", 2), m.get("post_blocks", 0), m.get("post_width", 512),
                     bool(m.get("select", False)) and m.get("kind", "av") == "av", int(m.get("band_head", 0)),
                     bool(m.get("roi_norm", False)), int(m.get("lookahead", 0)), m.get("gru_hidden"))


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


def si_sdr_t(y: torch.Tensor, s: torch.Tensor, eps: float = 1e-8) -> torch.Tensor:
    """Zero-mean SI-SDR in dB over the last axis (training/metrics.py with zero_mean=True)."""
    y = y - y.mean(dim=-1, keepdim=True)
    s = s - s.mean(dim=-1, keepdim=True)
    a = (y * s).sum(-1, keepdim=True) / ((s * s).sum(-1, keepdim=True) + eps)
    t = a * s
    return 10 * torch.log10(((t * t).sum(-1) + eps) / (((t - y) ** 2).sum(-1) + eps))


def examples(data: dict, kind: str = "av", max_talkers: int | None = None) -> np.ndarray:
    """AV: (scene, slot) pairs with a visible face. Audio: (scene, slot a, slot b) with the first
    two talking slots of scenes with >= 2 talkers. max_talkers: only scenes with at most that many."""
    n_talk = data["speaking"].sum(axis=1)
    ok = np.ones(len(n_talk), bool) if max_talkers is None else n_talk <= max_talkers
    if kind == "av":
        s, k = np.nonzero(data["present"] & ok[:, None])
        return np.stack([s, k], axis=1)
    rows = []
    for s in np.nonzero(ok & (n_talk >= 2))[0]:
        k = np.nonzero(data["speaking"][s])[0]
        rows.append([s, k[0], k[1]])
    return np.array(rows, dtype=np.int64).reshape(-1, 3)


def batch_tensors(data: dict, pairs: np.ndarray, device: str = "cpu"):
    return tuple(None if v is None else v.to(device) for v in _batch_tensors(data, pairs))


def _batch_tensors(data: dict, pairs: np.ndarray):
    """AV: mix [B, n], tgt [B, n], rois [B, chunks, 1, 48, 48], talking [B].
    Audio: mix [B, n], tgt [B, 2, n], None, talking [B, 2]."""
    s = pairs[:, 0]
    mix = torch.from_numpy(data["mixture"][s])
    if pairs.shape[1] == 3:
        tgt = torch.from_numpy(np.stack([data["sources"][s, pairs[:, 1]], data["sources"][s, pairs[:, 2]]], 1))
        return mix, tgt, None, torch.ones(len(s), 2, dtype=torch.bool)
    k = pairs[:, 1]
    tgt = torch.from_numpy(data["sources"][s, k])
    rois = torch.from_numpy(data["rois"][s, k].astype(np.float32) / 255.0)[:, :, None]
    return mix, tgt, rois, torch.from_numpy(data["speaking"][s, k])


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


class UnitPool:
    """Dynamic mixing: every (scene, face slot) of the training scenes is a self-consistent unit
    (that face's source and the mouth ROIs rendered from it; a silent face's source is zeros).
    `batch` draws fresh mixtures of units from different voices, each circularly shifted by a
    whole number of video frames (audio and ROIs together, so they stay in sync) and re-gained,
    plus fresh coloured noise at a random SNR.

    Voice warp (train.voice_warp = [lo, hi], off by default): every talking unit is resampled by a
    factor f uniform in [lo, hi] (f > 1 reads it faster: pitch, formants and tempo all go up by f),
    its ROIs re-indexed to the same time map, so the mouth stays in sync. The training voices are
    11 espeak-ng variants; the held-out ones are other variants, i.e. other formant sets, and
    resampling moves the formants. The factors come from their own generator, seeded by the step,
    so the rest of a batch (units, shifts, gains, noise) is the one the same step draws without it."""

    def __init__(self, data: dict, synth: dict, voice_warp: tuple[float, float] | None = None, seed: int = 0):
        s, k = np.nonzero(data["present"])
        self.sources, self.rois = data["sources"], data["rois"]
        self.scene, self.slot = s, k
        self.voice = data["voice_index"][s, k]
        talk = data["speaking"][s, k]
        self.talking, self.silent = np.nonzero(talk)[0], np.nonzero(~talk)[0]
        self.snr_db = tuple(synth.get("snr_db", (-5.0, 20.0)))
        self.gain_db = tuple(synth.get("speaker_gain_db", (-5.0, 5.0)))
        self.n = self.sources.shape[-1]
        self.T = self.rois.shape[2]
        self.hop = self.n // self.T
        if voice_warp is not None and not 0.5 <= voice_warp[0] <= voice_warp[1] <= 2.0:
            raise ValueError(f"train.voice_warp = {list(voice_warp)}: need 0.5 <= lo <= hi <= 2.0")
        self.voice_warp, self.seed = voice_warp, int(seed)
        self._t, self._frames = np.arange(self.n, dtype=np.float64), np.arange(self.T) + 0.5  # warp's time axes, once

    def warp(self, a: np.ndarray, r: np.ndarray, f: float) -> tuple[np.ndarray, np.ndarray]:
        """A unit read f times as fast, circularly (the unit is already a circular shift): output
        sample i is the source at i f (linear interpolation), output frame j the source frame that
        holds the middle of frame j's time span."""
        a2 = np.interp(self._t * f, self._t, a, period=self.n).astype(np.float32)
        idx = np.floor(self._frames * f).astype(np.int64) % self.T
        return a2, r[idx]

    def _unit(self, u: int, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
        s, k = self.scene[u], self.slot[u]
        shift = int(rng.integers(self.T))
        a = np.roll(self.sources[s, k], shift * self.hop)
        a = a * np.float32(10 ** (rng.uniform(*self.gain_db) / 20))
        return a, np.roll(self.rois[s, k], shift, axis=0)

    def _talkers(self, rng: np.random.Generator, count: int) -> list[int]:
        chosen, voices = [], set()
        while len(chosen) < count:
            u = int(self.talking[rng.integers(len(self.talking))])
            if self.voice[u] not in voices:
                chosen.append(u)
                voices.add(self.voice[u])
        return chosen

    def batch(self, rng: np.random.Generator, bs: int, kind: str, weights, p_silent: float,
              max_talkers: int | None = None, step: int = 0):
        """Same tensors as `_batch_tensors`: AV (mix, tgt, rois, talking); audio (mix, tgt [B, 2, n],
        None, talking [B, 2]). `step` seeds the voice warp's factors (when it is on)."""
        from .synth.scene import coloured_noise

        w = np.asarray(weights, np.float64)[: (max_talkers or len(weights))].copy()
        if kind == "audio":
            w[:1] = 0.0  # the baseline needs two voices
        w /= w.sum()
        mix = np.zeros((bs, self.n), np.float32)
        tgt = np.zeros((bs, self.n) if kind == "av" else (bs, 2, self.n), np.float32)
        rois = np.zeros((bs, self.T, self.rois.shape[-2], self.rois.shape[-1]), np.float32)
        talking = np.ones(bs if kind == "av" else (bs, 2), bool)
        wrng = np.random.default_rng([self.seed, 13, step]) if self.voice_warp else None
        for b in range(bs):
            n_talk = int(rng.choice(np.arange(1, len(w) + 1), p=w))
            parts = [self._unit(u, rng) for u in self._talkers(rng, n_talk)]
            if wrng is not None:
                parts = [self.warp(a, r, float(wrng.uniform(*self.voice_warp))) for a, r in parts]
            speech = np.sum([p[0] for p in parts], axis=0)
            snr = rng.uniform(*self.snr_db)
            noise = coloured_noise(rng, self.n) * np.sqrt(np.mean(speech ** 2) / 10 ** (snr / 10))
            mix[b] = speech + noise
            if kind == "audio":
                tgt[b] = np.stack([parts[0][0], parts[1][0]])
            elif rng.random() < p_silent and len(self.silent):
                _, r = self._unit(int(self.silent[rng.integers(len(self.silent))]), rng)
                rois[b], talking[b] = r, False
            else:
                tgt[b], rois[b] = parts[0][0], parts[0][1]
        if kind == "audio":
            return torch.from_numpy(mix), torch.from_numpy(tgt), None, torch.from_numpy(talking)
        return (torch.from_numpy(mix), torch.from_numpy(tgt), torch.from_numpy(rois / 255.0)[:, :, None],
                torch.from_numpy(talking))


def lr_at(step: int, t: dict) -> float:
    base, warm, steps = float(t.get("lr", 1e-3)), int(t.get("warmup", 200)), int(t.get("steps", 300))
    floor = float(t.get("lr_min_frac", 0.05))
    if step < warm:
        return base * (step + 1) / warm
    p = min((step - warm) / max(steps - warm, 1), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def val_metrics(model: Separator, val: dict, vex: np.ndarray, silent_weight: float,
                bs: int = 16, device: str = "cpu") -> dict:
    """Mean loss and mean SI-SDRi (dB) of talking targets over the validation examples, overall and
    on 2-talker scenes. SI-SDRi here uses zero-mean SI-SDR of the mixture as the reference."""
    model.eval()
    ls, imps, imps2 = [], [], []
    with torch.no_grad():
        for i in range(0, len(vex), bs):
            ex = vex[i:i + bs]
            mix, tgt, rois, talking = batch_tensors(val, ex, device)
            l_, sdr = batch_loss(model, mix, tgt, rois, talking, silent_weight)
            ls.append(float(l_) * len(ex))
            if model.kind == "av":
                base = si_sdr_t(final_part(mix), final_part(tgt))
                imp = (sdr - base)[talking]
                two = torch.from_numpy(val["speaking"][ex[:, 0]].sum(1) == 2).to(device)[talking]
            else:
                m_f, t_f = final_part(mix), final_part(tgt)
                base = 0.5 * (si_sdr_t(m_f, t_f[:, 0]) + si_sdr_t(m_f, t_f[:, 1]))
                imp = sdr - base
                two = torch.from_numpy(val["speaking"][ex[:, 0]].sum(1) == 2).to(device)
            imps += imp.tolist()
            imps2 += imp[two].tolist()
    model.train()
    return {"loss": sum(ls) / len(vex), "si_sdri": float(np.mean(imps)) if imps else float("nan"),
            "si_sdri_2spk": float(np.mean(imps2)) if imps2 else float("nan")}


def load_training_data(cfg: dict) -> dict:
    """The training splits (`train.train_splits`, default ["train"]) as one data dict. Voice
    indices are per split, so each split's are offset past the previous ones' (dynamic mixing
    must never take two units of one voice as different talkers)."""
    per_split = [shard_paths(data_dir(cfg) / s) for s in cfg["train"].get("train_splits", ["train"])]
    out, lengths = load_shard_files([p for paths in per_split for p in paths])
    del out["face_ids"], out["voice_ids"]
    shard_scenes, start, offset = iter(lengths), 0, 0
    for paths in per_split:
        n = sum(next(shard_scenes) for _ in paths)
        seg = out["voice_index"][start: start + n]  # a view: offset in place
        seg[seg >= 0] += offset
        offset, start = int(seg.max()) + 1, start + n
    return out


def mixed_batch(units: "UnitPool", rng, step: int, bs: int, kind: str, mix_w, p_silent: float, cur_steps: int):
    """One step's dynamic mixture (at most 2 talkers during the curriculum)."""
    return units.batch(rng, bs, kind, mix_w, p_silent, max_talkers=2 if step <= cur_steps else None, step=step)


_BATCH_ARGS: tuple = ()  # what the batch-making worker processes need (inherited by fork)


def _batch_at(step: int):
    """Worker process: the dynamic mixture batch of one step, from that step's own seed (so the
    batches do not depend on which worker makes them, or when)."""
    units, seed, bs, kind, mix_w, p_silent, cur_steps = _BATCH_ARGS
    out = mixed_batch(units, np.random.default_rng([seed, 7, step]), step, bs, kind, mix_w, p_silent, cur_steps)
    # numpy across the pipe: pickling a tensor runs torch's parallel copy, and an OpenMP pool
    # inherited by fork from a parent that used several threads hangs
    return tuple(None if v is None else v.numpy() for v in out)


class Prefetcher:
    """Dynamic-mixture batches made ahead by `workers` processes (a GPU trains faster than one
    core mixes), at most `2 x workers` steps ahead, delivered in step order."""

    def __init__(self, workers: int, args: tuple, first_step: int):
        global _BATCH_ARGS
        _BATCH_ARGS = args
        self.procs = multiprocessing.get_context("fork").Pool(workers)
        self.pending: collections.deque = collections.deque()
        self.next_step = first_step
        for _ in range(2 * workers):
            self._submit()

    def _submit(self) -> None:
        self.pending.append((self.next_step, self.procs.apply_async(_batch_at, (self.next_step,))))
        self.next_step += 1

    def get(self, step: int):
        s, res = self.pending.popleft()
        assert s == step, (s, step)
        self._submit()
        return res.get()

    def close(self) -> None:
        self.procs.terminate()


def train(cfg: dict) -> dict:
    t = cfg["train"]
    torch.set_num_threads(int(t.get("threads", 1)))
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    logf = (out / "log.txt").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    if not (out / "ckpt.pt").is_file():  # a fresh run: a bad starting file fails now, not after the data
        check_init_file(cfg)
    data = load_training_data(cfg)
    val = load_shards(data_dir(cfg) / "val")
    device = t.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # every batch has the same shapes
    model = make_model(cfg).to(device)
    kind = model.kind
    loss = t.get("loss", "sisdr")
    if loss != "sisdr":
        raise ValueError(f"train.loss = {loss!r}: only \"sisdr\" is supported")
    silent_weight = float(t.get("silent_weight", 0.3))
    aux_weight = float(t.get("aux_weight", 0.0))
    pit_weight = float(t.get("pit_weight", 0.0))
    teacher, distill_weight = load_teacher(cfg, kind, device)
    warp = t.get("voice_warp")
    if warp is not None and not t.get("dynamic_mix", False):
        raise ValueError("train.voice_warp needs train.dynamic_mix = true")
    units = (UnitPool(data, cfg.get("synth", {}), tuple(float(x) for x in warp) if warp else None, cfg["seed"])
             if t.get("dynamic_mix", False) else None)
    # train.mix_on_device: the same dynamic mixing as tensor ops on the training device (a GPU
    # outruns the numpy loader processes), training/device_mix.py
    dev_units = DeviceUnitPool(units, device) if units and t.get("mix_on_device") else None
    mix_w = t.get("mix_talkers", [1.0, 3.0, 1.0])
    roi_aug = bool(t.get("roi_augment", False))  # training/roi_augment.py
    roi_low_res = bool(t.get("roi_low_res", True))  # (exp-face trained without it)
    roi_geometry = bool(t.get("roi_geometry", False))  # training/crop_geometry.py (v14)
    geo_ranges = geometry_ranges(t.get("roi_geometry_ranges"))  # v14's unless the config widens them (v15)
    p_silent = float(t.get("p_silent_target", 0.15))
    ex_all = examples(data, kind)
    ex_cur = examples(data, kind, max_talkers=2)
    vex = examples(val, kind)[: int(t.get("val_examples", 10 ** 9))]
    opt = torch.optim.Adam(model.parameters(), lr=float(t.get("lr", 1e-3)))
    steps, bs, every = int(t.get("steps", 300)), int(t.get("batch_size", 16)), int(t.get("log_every", 20))
    ckpt_every = int(t.get("ckpt_every", every))
    cur_steps = int(t.get("curriculum_steps", 0))
    history = {"step": [], "train_loss": [], "val_loss": [], "val_si_sdri": [], "val_si_sdri_2spk": [],
               "seconds": []}
    # train.minutes: a time budget instead of a step count (a GPU lease): after `probe` steps the
    # step count is fixed from the measured speed, and the schedule follows it
    # (timed over steps warm+1 .. warm+probe: the first steps pay for CUDA's start-up)
    minutes = float(t.get("minutes", 0.0))
    warm, probe = 10, 30
    start, elapsed0 = 0, 0.0
    ck_path = out / "ckpt.pt"
    if ck_path.is_file():
        ck = torch.load(ck_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"].cpu())
        start, history, elapsed0 = ck["step"], ck["history"], ck.get("seconds", 0.0)
        if minutes and "steps" in ck:
            steps = t["steps"] = ck["steps"]
        log(f"[train] resumed from {ck_path} at step {start}")
    log(f"[train] {kind} model: {count_params(model)} params, "
        f"{(model.flops() if hasattr(model, 'flops') else flops_per_second(model)) / 1e6:.0f} MFLOP per s of audio; {len(ex_all)} train examples "
        f"({len(ex_cur)} with <= 2 talkers, {len(data['mixture'])} scenes), {len(vex)} val examples; "
        f"loss {loss}, lr {t.get('lr', 1e-3)}, batch {bs}, steps {steps}, curriculum {cur_steps}, "
        f"dynamic mixing {'on: %d talking + %d silent units' % (len(units.talking), len(units.silent)) if units else 'off'}"
        f"{' (mixed on the device)' if dev_units is not None else ''}, "
        f"aux weight {aux_weight}{', ROI camera augmentation' if roi_aug else ''}{', crop geometry augmentation %s' % geo_ranges if roi_geometry else ''}"
        f"{', voice warp %s' % list(warp) if warp else ''}"
        f"{', distilled from %s (weight %g)' % (t['distill_from'], distill_weight) if teacher is not None else ''}")

    def save(step: int, seconds: float) -> None:
        tmp = out / "ckpt.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "history": history,
                    "seconds": seconds, "config": cfg, "steps": steps}, tmp)
        tmp.replace(ck_path)
        # model.pt too is replaced atomically: another run may start from it while this one trains
        # (on the CPU: a GPU run's weights load anywhere, with or without map_location)
        cpu_sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"model": cpu_sd, "config": cfg, "step": step}, out / "model.pt.tmp")
        (out / "model.pt.tmp").replace(out / "model.pt")
        (out / "history.json").write_text(json.dumps(history, indent=1))

    if start == 0:
        init_weights(model, t, cfg, device, log)
        v = val_metrics(model, val, vex, silent_weight, device=device)
        log(f"[train] step 0 val_loss {v['loss']:.4f} val_si_sdri {v['si_sdri']:.2f} dB "
            f"(2 talkers {v['si_sdri_2spk']:.2f} dB)")
        for k, x in (("step", 0), ("train_loss", float("nan")), ("val_loss", v["loss"]),
                     ("val_si_sdri", v["si_sdri"]), ("val_si_sdri_2spk", v["si_sdri_2spk"]), ("seconds", 0.0)):
            history[k].append(x)
    t0, run = time.time() - elapsed0, []
    t_last = time.time()
    workers = int(t.get("loader_workers", 0))
    prefetch = (Prefetcher(workers, (units, cfg["seed"], bs, kind, mix_w, p_silent, cur_steps), start + 1)
                if workers > 0 and units is not None and dev_units is None else None)
    gen = None
    if dev_units is not None:  # a resumed run continues with a generator seeded by its step
        gen = torch.Generator(device).manual_seed(int(cfg["seed"]) * 1_000_003 + start)
    timed = bool(minutes) and start < warm + probe  # a time budget whose step count is not fixed yet
    step, t_probe, t_begin = start, time.time(), time.time()
    while step < steps:
        step += 1
        if timed and step == start + warm + 1:
            t_probe = time.time()
        if timed and step == start + warm + probe + 1:
            per_step = (time.time() - t_probe) / probe
            left = minutes * 60 - (time.time() - t_begin)
            steps = t["steps"] = max(step, step + int(left / per_step))
            log(f"[train] {per_step * 1000:.0f} ms per step: {steps} steps fit in {minutes:g} minutes")
        pool = ex_cur if step <= cur_steps and len(ex_cur) else ex_all
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1, t)
        if dev_units is not None:
            mix, tgt, rois, talking = dev_units.batch(gen, bs, kind, mix_w, p_silent,
                                                      max_talkers=2 if step <= cur_steps else None)
        elif prefetch is not None:
            mix, tgt, rois, talking = (None if v is None else torch.from_numpy(v).to(device)
                                       for v in prefetch.get(step))
        elif units is not None:
            mix, tgt, rois, talking = (None if v is None else v.to(device) for v in mixed_batch(
                units, rng, step, bs, kind, mix_w, p_silent, cur_steps))
        else:
            mix, tgt, rois, talking = batch_tensors(data, pool[rng.integers(0, len(pool), bs)], device)
        if roi_geometry and rois is not None:  # the crop placed off per sequence (before the camera)
            rois = augment_geometry(rois, torch.Generator(rois.device).manual_seed(int(cfg["seed"]) * 6007 + step),
                                    geo_ranges)
        if roi_aug and rois is not None:  # a new camera per sequence, seeded by the step (resumable)
            rois = augment_rois(rois, torch.Generator(rois.device).manual_seed(int(cfg["seed"]) * 7919 + step),
                                low_res=roi_low_res)
        l_, _ = batch_loss(model, mix, tgt, rois, talking, silent_weight, aux_weight, pit_weight,
                           teacher, distill_weight)
        opt.zero_grad()
        l_.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(t.get("clip", 5.0)))
        opt.step()
        run.append(l_.item())
        if step % every == 0 or step == steps:
            v = val_metrics(model, val, vex, silent_weight, device=device)
            tl = float(np.mean(run))
            run = []
            el = time.time() - t0
            for k, x in (("step", step), ("train_loss", tl), ("val_loss", v["loss"]),
                         ("val_si_sdri", v["si_sdri"]), ("val_si_sdri_2spk", v["si_sdri_2spk"]), ("seconds", el)):
                history[k].append(x)
            eta = (time.time() - t_last) / every * (steps - step)
            t_last = time.time()
            log(f"[train] step {step}/{steps} lr {lr_at(step - 1, t):.2e} train_loss {tl:.4f} "
                f"val_loss {v['loss']:.4f} val_si_sdri {v['si_sdri']:.2f} dB "
                f"(2 talkers {v['si_sdri_2spk']:.2f} dB) ({el:.0f} s, ~{eta / 60:.0f} min left)")
        if step % ckpt_every == 0 or step == steps:
            save(step, time.time() - t0)
    if prefetch is not None:
        prefetch.close()
    if start >= steps:
        log(f"[train] already at step {start} >= {steps}")
    log(f"[train] saved {out / 'model.pt'}")
    return history


def load_teacher(cfg: dict, kind: str, device: str):
    """train.distill_from (v9d): the config file (in the training config's folder) of a trained AV
    model, fused ones included, that the run learns from besides the ground truth, and
    train.distill_weight (default 1). Why: the fused v8 models beat the AV model alone on
    validation by ~0.3 dB at twice its cost; a student of the AV model's size may keep part of
    that at its own cost. Returns (None, 0.0) without distill_from."""
    t = cfg["train"]
    name = t.get("distill_from")
    if not name:
        return None, 0.0
    if kind != "av":
        raise ValueError("train.distill_from: only an AV model learns from a teacher")
    path = ROOT / "training" / "configs" / name
    if not path.is_file():
        raise FileNotFoundError(f"train.distill_from: no config {path}")
    teacher = load_model(load_config(path))
    if teacher.kind != "av":
        raise ValueError(f"train.distill_from: {path} is a {teacher.kind} model, not an AV one")
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    weight = float(t.get("distill_weight", 1.0))
    if weight <= 0:
        raise ValueError(f"train.distill_weight = {weight}: must be > 0")
    return teacher, weight


def onnx_init_key(kind: str) -> str:
    """The setting that names an ONNX starting file for this kind of model."""
    return "init_from_onnx_audio" if kind == "audio" else "init_from_onnx"


def check_init_file(cfg: dict) -> None:
    """train.init_from_onnx[_audio]: the file exists and has its pinned sha256 (cheap; the import
    itself, in `init_weights`, needs the model and checks again)."""
    from .onnx_import import check_onnx_file

    t, key = cfg["train"], onnx_init_key(cfg["model"].get("kind", "av"))
    if t.get(key):
        check_onnx_file(t[key], t.get(f"{key}_sha256"), f"train.{key}")
    if t.get("init_visual_from_onnx"):  # v13
        check_onnx_file(t["init_visual_from_onnx"], t.get("init_visual_from_onnx_sha256"), "train.init_visual_from_onnx")


def import_start_file(model, t: dict, cfg: dict, log) -> bool:
    """train.init_from_onnx[_audio] (+ _sha256): fill the model from that exported file; False
    when the config names none."""
    key = onnx_init_key(model.kind)
    if not t.get(key):
        return False
    from .onnx_import import import_onnx

    fresh = import_onnx(model, cfg, t[key], t.get(f"{key}_sha256"), f"train.{key}")
    log(f"[train] weights imported from {t[key]}" + (f" (fresh: {', '.join(fresh)})" if fresh else ""))
    return True


def init_weights(model: Separator, t: dict, cfg: dict, device: str, log) -> None:
    """A fresh run's starting weights, from other runs (a fresh optimiser and schedule):
    train.init_select_from {audio, av}: an AV model with select from an audio-only run's separator
      and an AV run's visual encoder (without "av": random visual weights), see `init_select`;
    train.init_from: the named run (`--kind audio` runs: its audio-only twin <init_from>-audio, or
      train.init_from_audio); long runs that span sessions start from the shipped run. Layers the
      source lacks may only be v4's per-frame blocks, v5's band head or v7's look-ahead layers, which
      start as the identity (a zero contribution); a source with a narrower GRU is widened into
      this model's without changing its masks (`widen_state_dict`, v7w);
    train.init_optional: a missing source run starts from scratch instead of failing;
    train.init_from_onnx (`--kind audio`: train.init_from_onnx_audio): an exported model file of
      this configuration, e.g. the shipped models/separator.onnx (`training/onnx_import.py`); it
      takes precedence over init_from. <key>_sha256 pins the file (a run that must start from one
      particular model, not from whatever was shipped since). Training-only layers the file lacks start fresh."""
    def source(name: str):
        path = run_dir({"name": name}) / "model.pt"
        if path.is_file():
            return path, torch.load(path, map_location=device, weights_only=False)["model"]
        if t.get("init_optional"):
            log(f"[train] {path} does not exist: starting from scratch (train.init_optional)")
            return path, None
        raise FileNotFoundError(f"train: the source run {path} does not exist")

    if getattr(model, "arch", None) == "dualpath":
        init_dualpath(model, t, cfg, source, log)
        return
    if t.get("init_select_from"):
        srcs = t["init_select_from"]
        (pa, audio_sd), (pv, av_sd) = source(srcs["audio"]), (source(srcs["av"]) if "av" in srcs else (None, None))
        if audio_sd is not None:
            init_select(model, audio_sd, av_sd)
            log(f"[train] separator initialised from {pa}, visual encoder from {pv if av_sd is not None else 'random weights'}")
        return
    if import_start_file(model, t, cfg, log):
        return
    if not t.get("init_from"):
        return
    name = t["init_from"] + (f"-{model.kind}" if cfg.get("run_name") else "")
    if model.kind == "audio" and t.get("init_from_audio"):
        name = t["init_from_audio"]
    path, sd = source(name)
    if sd is None:
        return
    sd_width = sd["gru.weight_hh_l0"].shape[1]
    if model.gru_hidden != sd_width:  # v7w: a wider GRU than the source's
        sd = widen_state_dict(model, sd)
        log(f"[train] GRU widened from {sd_width} to {model.gru_hidden} units, the masks unchanged")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or any(not k.startswith(("post.", "band.", "ahead.")) for k in missing):
        raise ValueError(f"train.init_from: {path} does not fit this model (missing {missing}, unexpected {unexpected})")
    log(f"[train] weights initialised from {path}" + (f" ({len(missing)} new tensors)" if missing else ""))


# what a dual-path AV model has and its audio-only source lacks: they start fresh (FiLM and the
# selection at zero, so the AV model first separates exactly as its source)
_DUALPATH_AV_ONLY = ("vis.", "vis_fc.", "aux.", "sel.")


def init_dualpath(model, t: dict, cfg: dict, source, log) -> None:
    """A dual-path model's starting weights (v13):
    train.init_from: a dual-path run of the same size (for an AV model also an audio-only one:
      band encoder, blocks and the two masks have the same shapes; FiLM, visual encoder and
      selection start fresh);
    train.init_visual_from_onnx (+ _sha256, pinned) with train.init_visual_config: the visual
      encoder of an exported chunk-GRU AV model (the same 4 convolutions and projection), so a
      fresh separator gets a face reader that has already learnt mouths;
    train.init_from_onnx[_audio] (+ _sha256): an exported dual-path model of this configuration
      (a run that must survive the machine, e.g. a GPU lease's start), as for Separator."""
    if import_start_file(model, t, cfg, log):
        return
    if t.get("init_from"):
        name = t["init_from"] + (f"-{model.kind}" if cfg.get("run_name") else "")
        path, sd = source(name)
        if sd is not None:
            missing, unexpected = model.load_state_dict(sd, strict=False)
            bad = [k for k in missing if not (k.startswith(_DUALPATH_AV_ONLY) or ".film." in k)]
            if unexpected or bad:
                raise ValueError(f"train.init_from: {path} does not fit this model (missing {bad}, unexpected {unexpected})")
            log(f"[train] weights initialised from {path}" + (f" ({len(missing)} new tensors)" if missing else ""))
    if t.get("init_visual_from_onnx"):
        if model.kind != "av":
            raise ValueError("train.init_visual_from_onnx: only an AV model has a visual encoder")
        from .onnx_import import import_onnx

        vcfg = load_config(ROOT / "training" / "configs" / t["init_visual_config"])
        donor = make_model(vcfg)
        import_onnx(donor, vcfg, t["init_visual_from_onnx"], t.get("init_visual_from_onnx_sha256"),
                    "train.init_visual_from_onnx")
        own = dict(model.named_parameters())
        with torch.no_grad():
            for k, v in donor.state_dict().items():
                if k.startswith(("vis.", "vis_fc.")):
                    if own[k].shape != v.shape:
                        raise ValueError(f"train.init_visual_from_onnx: {k} is {tuple(v.shape)} there, {tuple(own[k].shape)} here")
                    own[k].copy_(v)
        log(f"[train] visual encoder imported from {t['init_visual_from_onnx']}")


def init_select(model: Separator, audio_sd: dict, av_sd: dict | None) -> None:
    """Initialise an AV model with select from an audio-only model's weights (encoders, GRU,
    decoder and its two masks: the same shapes) and an AV model's visual encoder. The GRU's input
    columns for the visual features start at zero, so the new model first separates exactly as the
    audio-only one, and the face only has to learn which output is its voice (the selection
    starts at a third each)."""
    if not model.select:
        raise ValueError("init_select needs a model with select")
    sd = model.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            if k.startswith(("vis.", "vis_fc.", "aux.")):
                if av_sd is None:
                    continue
                src = av_sd[k]
            elif k.startswith("sel."):
                continue
            elif k == "gru.weight_ih_l0":
                v.zero_()
                v[:, : model.hidden].copy_(audio_sd[k])
                continue
            else:
                src = audio_sd[k]
            if src.shape != v.shape:
                raise ValueError(f"init_select: {k} is {tuple(src.shape)} in the source, {tuple(v.shape)} here")
            v.copy_(src)


def load_model(cfg: dict) -> Separator:
    if cfg["model"].get("kind") == "fused":  # v8: two trained runs, no weights of its own
        from .fusion import load_fused

        return load_fused(cfg)
    if cfg["model"].get("kind") == "fused_head" and int(cfg["train"].get("steps", 1)) == 0:
        return make_model(cfg).eval()  # v8S: the head's step-0 rule, no run of its own
    ck = torch.load(run_dir(cfg) / "model.pt", map_location="cpu", weights_only=False)
    model = make_model(ck["config"])
    model.load_state_dict({k: v.cpu() for k, v in ck["model"].items()})
    return model.eval()
