"""Training batches: examples of the fixed synthesized scenes, dynamic mixing of fresh scenes from
their units (`UnitPool`), and loader processes that make them ahead of the training step
(`Prefetcher`).

AV model: one example = (scene, face slot): input = the mixture + that slot's mouth ROIs,
target = that face's own source (zeros for a visible-but-silent face). Audio-only baseline: one
example = a scene with at least two talking faces, its targets two of the voices.
"""

from __future__ import annotations

import collections
import multiprocessing

import numpy as np
import torch

from .config import data_dir
from .synth.scene import load_shard_files, shard_paths


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
        # np.interp(t f, t, a, period=n) written out: the same float64 operations (so the same
        # values, bit for bit), without its sort and copies of the sample grid (3x faster; ~100 ms
        # of a 16-example step)
        x = np.mod(self._t * f, self.n)
        i0 = x.astype(np.int64)
        i1 = i0 + 1
        i1[i1 == self.n] = 0
        a64 = a.astype(np.float64)
        a2 = ((a64[i1] - a64[i0]) * (x - i0) + a64[i0]).astype(np.float32)
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
