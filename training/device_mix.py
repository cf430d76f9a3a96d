"""Dynamic mixing on the training device (train.mix_on_device = true): the GPU recipe's batches.

`mixing.UnitPool` mixes in numpy, one example at a time, in loader processes. On a GPU that is the
bottleneck: a batch of 128 AV examples takes ~0.25 s of one core to mix and ~47 MB to pickle across
a pipe, while the model's step takes tens of milliseconds. `DeviceUnitPool` keeps every training
unit (a face's source and its mouth ROIs) on the device once and mixes whole batches with tensor
ops. It draws from the same distribution as `UnitPool` (see that class for what a unit is):
  * a number of talkers per example from `weights`, units of DIFFERENT voices;
  * each unit circularly shifted by a whole number of video frames (audio and ROIs together),
    re-gained by a uniform dB gain;
  * coloured noise (a 1/f^alpha tilt, alpha in [0, 1.5], slow sinusoidal amplitude modulation)
    at a uniform SNR;
  * with train.voice_warp, each talking unit read f times as fast (f uniform in [lo, hi]; its
    audio by linear interpolation, its ROIs re-indexed to the same time map), as `UnitPool.warp`;
  * AV: the target is talker 0, or with probability p_silent a silent face's ROIs (target zeros);
    audio: the targets are talkers 0 and 1.
The random numbers come from a torch.Generator on the device, so the batches differ from
UnitPool's for the same seed (a fresh run's choice, not a replay of the CPU runs' batches).
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .signal import SAMPLE_RATE


class DeviceUnitPool:
    """The units of a `mixing.UnitPool` (its unit numbering, voices, talking/silent split and
    ranges), copied to `device` once."""

    def __init__(self, pool, device: str = "cpu"):
        s, k = pool.scene, pool.slot
        self.device = device
        self.sources = torch.from_numpy(pool.sources[s, k]).to(device)  # [U, n]
        self.rois = torch.from_numpy(pool.rois[s, k]).to(device)  # [U, T, H, W] u8
        self.voice = torch.from_numpy(pool.voice.astype(np.int64)).to(device)
        self.talking = torch.from_numpy(pool.talking).to(device)
        self.silent = torch.from_numpy(pool.silent).to(device)
        self.snr_db, self.gain_db = pool.snr_db, pool.gain_db
        self.n, self.T, self.hop = pool.n, pool.T, pool.hop
        self.voice_warp = pool.voice_warp
        # the sample and frame axes, once (every batch indexes with them)
        self._samples = torch.arange(self.n, device=device)
        self._frames = torch.arange(self.T, device=device)
        if len(torch.unique(self.voice[self.talking])) < 3:
            raise ValueError("DeviceUnitPool: the training data needs talking units of at least 3 voices")

    def _uniform(self, gen, shape, lo: float, hi: float) -> torch.Tensor:
        return lo + (hi - lo) * torch.rand(shape, generator=gen, device=self.device)

    def _talkers(self, gen, bs: int, count: int) -> torch.Tensor:
        """[bs, count] talking units; within a row all of different voices (redrawn until so)."""
        nt = len(self.talking)
        u = self.talking[torch.randint(nt, (bs, count), generator=gen, device=self.device)]
        for j in range(1, count):
            while True:
                clash = (self.voice[u[:, j:j + 1]] == self.voice[u[:, :j]]).any(dim=1)
                if not bool(clash.any()):
                    break
                redraw = self.talking[torch.randint(nt, (bs,), generator=gen, device=self.device)]
                u[:, j] = torch.where(clash, redraw, u[:, j])
        return u

    def _rolled_audio(self, units: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """sources[units] rolled right by shifts x hop samples (np.roll): [..., n]."""
        idx = (self._samples - (shifts * self.hop)[..., None]) % self.n
        return torch.gather(self.sources[units], -1, idx)

    def _rolled_rois(self, units: torch.Tensor, shifts: torch.Tensor) -> torch.Tensor:
        """rois[units] rolled by shifts frames: [B, T, H, W] u8."""
        idx = (self._frames[None] - shifts[:, None]) % self.T
        r = self.rois[units]
        return torch.gather(r, 1, idx[:, :, None, None].expand_as(r))

    def warp_indices(self, f: torch.Tensor):
        """`UnitPool.warp`'s time maps for factors f [...]: sample i reads the source at i f,
        circularly (i0, i1 = its neighbours, w = i1's weight, each [..., n]); video frame j shows
        the source frame holding the middle of its span (frames [..., T])."""
        pos = torch.remainder(self._samples.double() * f[..., None].double(), self.n)
        i0 = pos.floor()
        w = (pos - i0).float()
        i0 = i0.long() % self.n
        mid = self._frames.double() + 0.5
        frames = torch.floor(mid * f[..., None].double()).long() % self.T
        return i0, (i0 + 1) % self.n, w, frames

    def coloured_noise(self, gen, bs: int) -> torch.Tensor:
        """[bs, n] unit-RMS noise, as synth.scene.coloured_noise."""
        x = torch.randn((bs, self.n), generator=gen, device=self.device)
        spec = torch.fft.rfft(x)
        nf = spec.shape[-1]
        f = torch.arange(nf, device=self.device) / nf
        alpha = self._uniform(gen, (bs, 1), 0.0, 1.5)
        spec = spec / torch.clamp(f, min=1.0 / nf)[None] ** (alpha / 2)
        x = torch.fft.irfft(spec, self.n)
        depth = self._uniform(gen, (bs, 1), 0.0, 0.5)
        rate = self._uniform(gen, (bs, 1), 0.1, 2.0)
        phase = self._uniform(gen, (bs, 1), 0.0, 2 * math.pi)
        t = torch.arange(self.n, device=self.device) / SAMPLE_RATE
        x = x * (1.0 + depth * torch.sin(2 * math.pi * rate * t[None] + phase))
        return x / (x.pow(2).mean(-1, keepdim=True).sqrt() + 1e-12)

    def batch(self, gen: torch.Generator, bs: int, kind: str, weights, p_silent: float,
              max_talkers: int | None = None):
        """The tensors of `UnitPool.batch`, on the device: AV (mix [B, n], tgt [B, n],
        rois [B, T, 1, H, W] in [0, 1], talking [B]); audio (mix, tgt [B, 2, n], None, talking [B, 2])."""
        w = torch.tensor(weights, dtype=torch.float64)[: (max_talkers or len(weights))].clone()
        if kind == "audio":
            w[:1] = 0.0  # the baseline needs two voices
        K = len(w)
        n_talk = torch.multinomial((w / w.sum()).float().to(self.device), bs, replacement=True,
                                   generator=gen) + 1  # [B]
        units = self._talkers(gen, bs, K)
        shifts = torch.randint(self.T, (bs, K), generator=gen, device=self.device)
        gains = 10 ** (self._uniform(gen, (bs, K), *self.gain_db) / 20)
        active = torch.arange(K, device=self.device)[None] < n_talk[:, None]
        parts = self._rolled_audio(units, shifts) * (gains * active)[..., None]  # [B, K, n]
        frames = None
        if self.voice_warp is not None:
            i0, i1, w, frames = self.warp_indices(self._uniform(gen, (bs, K), *self.voice_warp))
            parts = torch.gather(parts, -1, i0) * (1 - w) + torch.gather(parts, -1, i1) * w
        speech = parts.sum(1)
        snr = self._uniform(gen, (bs, 1), *self.snr_db)
        noise = self.coloured_noise(gen, bs) * (speech.pow(2).mean(-1, keepdim=True) / 10 ** (snr / 10)).sqrt()
        mix = speech + noise
        if kind == "audio":
            return mix, parts[:, :2].clone(), None, torch.ones(bs, 2, dtype=torch.bool, device=self.device)
        # a silent face instead of talker 0's (its own unit and shift); none if no unit is silent
        silent = torch.zeros(bs, dtype=torch.bool, device=self.device)
        roi_units, roi_shift = units[:, 0], shifts[:, 0]
        if len(self.silent):
            silent = self._uniform(gen, (bs,), 0.0, 1.0) < p_silent
            pick = self.silent[torch.randint(len(self.silent), (bs,), generator=gen, device=self.device)]
            roi_units = torch.where(silent, pick, roi_units)
            roi_shift = torch.where(silent, torch.randint(self.T, (bs,), generator=gen, device=self.device), roi_shift)
        rois = self._rolled_rois(roi_units, roi_shift)
        if frames is not None:  # talker 0's mouth on its audio's time map; a silent face unwarped
            keep = self._frames.expand(bs, self.T)
            idx = torch.where(silent[:, None], keep, frames[:, 0])
            rois = torch.gather(rois, 1, idx[:, :, None, None].expand_as(rois))
        rois = rois.float().div_(255.0)[:, :, None]
        tgt = parts[:, 0] * (~silent)[:, None]
        return mix, tgt, rois, ~silent
