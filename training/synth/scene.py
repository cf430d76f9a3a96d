"""Scene composition and shard writing.

One scene = `clip_seconds` of 16 kHz audio and 25 fps 48 x 48 mouth ROIs (docs/SIGNAL.md) for up to MAX_FACES face slots:
1..max_speakers talking faces (each with its own voice), optionally one visible-but-silent face,
plus coloured noise at an exact, requested SNR (sum of speech power over noise power, whole clip).
Targets are per face slot: that face's own source (zeros for a silent face).

Every scene is generated from its own RNG, seeded by (seed, split, index), so a scene does not
depend on the order or the number of scenes generated before it.
"""

from __future__ import annotations

import json
import subprocess
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np

from . import faces as F
from . import speech as SP
from .common import TRAINING_TTS_SPLITS, ordered_map

SR = 16_000
FPS = 25
SAMPLES_PER_FRAME = SR // FPS
MAX_FACES = 3
SPLIT_CODES = {"train": 0, "val": 1, "test": 2, "val_real": 3, "test_real": 4, "train_festival": 5, "stack": 6, "train_more": 7}
# TTS splits use espeak-ng voices (held-out variants for val/test); *_real splits use real recorded
# voices. Both val splits use the validation faces, both test splits the held-out faces.
TTS_SPLITS = ("val", "test", *TRAINING_TTS_SPLITS)


def face_split(split: str) -> str:
    return split.removesuffix("_real").removesuffix("_festival")


@dataclass
class SynthConfig:
    seed: int = 1234
    clip_seconds: float = 2.0
    max_speakers: int = 3
    # relative probabilities of 1, 2, 3 talkers (None: uniform over 1..max_speakers); per split
    # ({"train": [...], "val": [...]}) or one list for all splits
    speaker_weights: object = None
    p_silent_face: float = 0.3
    snr_db: tuple[float, float] = (-5.0, 20.0)
    speaker_gain_db: tuple[float, float] = (-5.0, 5.0)
    av_lead_s: tuple[float, float] = (0.0, 0.12)
    speech_rms: float = 0.05
    n_voices: int = 60
    n_heldout_voices: int = 24  # TTS voices of each of val and test
    n_festival_voices: int = 40  # festival voices (split "train_festival", training only)
    utts_per_voice: int = 6
    scenes: dict = field(default_factory=lambda: {"train": 256, "val": 32, "test": 32})
    scenes_per_shard: int = 64
    augment: bool = True

    @property
    def n_samples(self) -> int:
        return int(round(self.clip_seconds * FPS)) * SAMPLES_PER_FRAME

    @property
    def n_frames(self) -> int:
        return self.n_samples // SAMPLES_PER_FRAME


def coloured_noise(rng: np.random.Generator, n: int) -> np.ndarray:
    """Gaussian noise with a random 1/f^alpha tilt and slow amplitude modulation, unit RMS."""
    alpha = rng.uniform(0.0, 1.5)
    spec = np.fft.rfft(rng.standard_normal(n))
    f = np.arange(len(spec)) / len(spec)
    spec *= 1.0 / np.maximum(f, 1.0 / len(spec)) ** (alpha / 2)
    x = np.fft.irfft(spec, n)
    mod = 1.0 + rng.uniform(0.0, 0.5) * np.sin(2 * np.pi * rng.uniform(0.1, 2.0) * np.arange(n) / SR
                                                 + rng.uniform(0, 2 * np.pi))
    x = x * mod
    return x / (np.sqrt(np.mean(x ** 2)) + 1e-12)


def place_speech(rng: np.random.Generator, utts: list[np.ndarray], n: int) -> np.ndarray:
    """1-2 utterances of one voice at random offsets inside an n-sample clip (unit-RMS speech)."""
    y = np.zeros(n)
    k = int(rng.integers(1, 3))
    for _ in range(k):
        u = utts[int(rng.integers(len(utts)))]
        start = int(rng.integers(-len(u) // 2, max(n - SR // 4, 1)))
        a, b = max(start, 0), min(start + len(u), n)
        if b > a:
            y[a:b] += u[a - start: b - start]
    if not np.any(y):  # guarantee some speech: put the start of an utterance at the clip start
        u = utts[0]
        m = min(len(u), n)
        y[:m] = u[:m]
    return y


def make_scene(cfg: SynthConfig, split: str, index: int, voices: list, faces: list[F.Face]) -> dict:
    """voices: [(voice id, [utterances])]; faces: the split's faces."""
    rng = np.random.default_rng([cfg.seed, SPLIT_CODES[split], index])
    n, T = cfg.n_samples, cfg.n_frames
    hi = min(cfg.max_speakers, len(voices), MAX_FACES)
    w = cfg.speaker_weights
    if isinstance(w, dict):
        w = w.get(split)
    if w is None:
        n_spk = int(rng.integers(1, hi + 1))
    else:
        p = np.asarray(w, np.float64)[:hi]
        n_spk = int(rng.choice(np.arange(1, len(p) + 1), p=p / p.sum()))
    n_silent = int(n_spk < MAX_FACES and rng.random() < cfg.p_silent_face)
    n_faces = n_spk + n_silent
    voice_idx = rng.choice(len(voices), n_spk, replace=False)
    face_idx = rng.choice(len(faces), n_faces, replace=False)
    slots = rng.permutation(MAX_FACES)[:n_faces]  # which slot each face takes

    sources = np.zeros((MAX_FACES, n))
    speaking = np.zeros(MAX_FACES, bool)
    present = np.zeros(MAX_FACES, bool)
    face_index = np.full(MAX_FACES, -1, np.int32)
    voice_index = np.full(MAX_FACES, -1, np.int32)
    lead = np.zeros(MAX_FACES, np.float32)
    rois = np.zeros((MAX_FACES, T, F.ROI_SIZE, F.ROI_SIZE), np.uint8)
    for j in range(n_faces):
        s = slots[j]
        present[s], face_index[s] = True, face_idx[j]
        if j < n_spk:
            vid, utts = voices[voice_idx[j]]
            x = place_speech(rng, utts, n)
            g = 10 ** (rng.uniform(*cfg.speaker_gain_db) / 20)
            sources[s] = x * cfg.speech_rms * g
            speaking[s], voice_index[s] = True, voice_idx[j]
        lead[s] = rng.uniform(*cfg.av_lead_s)
        opening = F.envelope_openings(sources[s], T, SR, FPS, float(lead[s]), rng)
        rois[s] = F.render_mouth_rois(faces[face_idx[j]], opening, rng, augment=cfg.augment)

    speech = sources.sum(axis=0)
    snr = float(rng.uniform(*cfg.snr_db))
    noise = coloured_noise(rng, n) * np.sqrt(np.mean(speech ** 2) / 10 ** (snr / 10))
    mixture = speech + noise
    peak = np.max(np.abs(mixture))
    if peak > 0.95:  # scale everything by the same factor: SNR and the sum identity are kept
        g = 0.95 / peak
        sources, noise = sources * g, noise * g
    sources = sources.astype(np.float32)
    noise = noise.astype(np.float32)
    mixture = sources.sum(axis=0) + noise  # float32 sum: exact identity with the stored arrays
    return {
        "mixture": mixture.astype(np.float32), "sources": sources, "noise": noise, "rois": rois,
        "present": present, "speaking": speaking, "face_index": face_index,
        "voice_index": voice_index, "snr_db": np.float32(snr), "av_lead_s": lead,
    }


def espeak_version() -> str:
    try:
        out = subprocess.run(["espeak-ng", "--version"], capture_output=True, text=True).stdout
    except FileNotFoundError:
        return "missing"
    return out.split("  Data at:")[0].strip()


def split_voices(cfg: SynthConfig, split: str, log=print, workers: int = 1) -> list:
    if split == "train_festival":
        t0 = time.time()
        pool = SP.festival_pool(cfg.seed + SPLIT_CODES[split], cfg.n_festival_voices, cfg.utts_per_voice,
                                progress=lambda i, k: log(f"  festival voices {i}/{k}") if i % 10 == 0 or i == k else None,
                                workers=workers)
        log(f"  festival pool: {len(pool)} voices x {cfg.utts_per_voice} utterances in {time.time() - t0:.1f} s")
        return [(f"festival-{i}", u) for i, u in enumerate(pool)]
    if split in TTS_SPLITS:
        t0 = time.time()
        n_voices = cfg.n_voices if split in TRAINING_TTS_SPLITS else cfg.n_heldout_voices
        pool = SP.tts_pool(cfg.seed + SPLIT_CODES[split], n_voices, cfg.utts_per_voice,
                           progress=lambda i, k: log(f"  tts voices {i}/{k}") if i % 10 == 0 or i == k else None,
                           variants=SP.VARIANTS_BY_SPLIT[split], workers=workers)
        log(f"  espeak-ng pool: {len(pool)} voices x {cfg.utts_per_voice} utterances in {time.time() - t0:.1f} s")
        return [(f"tts-{split}-{i}", u) for i, u in enumerate(pool)]
    voices = SP.real_voices(split)
    log(f"  real voices for {split}: {[v for v, _ in voices]}")
    if len(voices) < 1:
        raise RuntimeError(f"no real voices found for {split} (install alsa-utils / codec2-examples)")
    return voices


_SCENE_ARGS: tuple = ()  # (cfg, split, voices, faces) for the worker processes (inherited by fork)


def _make_scene_at(index: int) -> dict:
    cfg, split, voices, faces = _SCENE_ARGS
    return make_scene(cfg, split, index, voices, faces)


def split_recipe(cfg: SynthConfig, split: str) -> dict:
    """What decides a split's scenes: the seed and every synthesis setting, the per-split ones
    (scene count, talker weights) for this split only, so that configs which differ only in other
    splits share its data. As JSON reads it back (tuples as lists)."""
    d = asdict(cfg)
    d["scenes"] = int(cfg.scenes.get(split, 0))
    w = cfg.speaker_weights
    d["speaker_weights"] = w.get(split) if isinstance(w, dict) else w
    return json.loads(json.dumps(d))


def replacement_conflict(cfg: SynthConfig, split: str, out_dir: Path) -> str | None:
    """Why synthesizing `split` into out_dir would destroy other data, or None: the folder holds a
    split made with other settings (a config that shares another's data_name and synthesizes
    with its own settings would otherwise replace that data without a word: it happened once,
    MODELS.md "v12c"). The same settings again make the same scenes, so that is no conflict."""
    path = out_dir / split / "manifest.json"
    if not path.is_file():
        return None
    try:
        old = json.loads(path.read_text())
    except (OSError, ValueError) as e:
        return f"{path}: unreadable ({e}), so it cannot be told whether its scenes match"
    new = split_recipe(cfg, split)
    # manifests from before recipes were recorded: the seed and the scene count they hold
    was = old.get("recipe") or {k: old.get(k) for k in ("seed", "scenes")}
    diff = [k for k in sorted(set(new) | set(was)) if k in was and was.get(k) != new.get(k)]
    if not diff:
        return None
    what = ", ".join(f"{k} {was.get(k)} -> {new.get(k)}" for k in diff)
    return f"{path.parent} holds {old.get('scenes')} scenes made with other settings ({what})"


def synth_split(cfg: SynthConfig, split: str, out_dir: Path, log=print, workers: int = 1) -> dict:
    """Synthesize one split into shards. workers > 1 renders in that many processes; every scene
    draws from its own seed (make_scene), so the shards are the same whatever the number."""
    global _SCENE_ARGS
    out = out_dir / split
    out.mkdir(parents=True, exist_ok=True)
    for old in out.glob("shard-*.npz"):
        old.unlink()
    voices = split_voices(cfg, split, log, workers)
    faces = F.load_faces(face_split(split))
    n_total = int(cfg.scenes.get(split, 0))
    t0 = time.time()
    shards, batch = [], []
    _SCENE_ARGS = (cfg, split, voices, faces)
    for i, scene in enumerate(ordered_map(_make_scene_at, range(n_total), workers, chunksize=4)):
        batch.append(scene)
        if len(batch) == cfg.scenes_per_shard or i == n_total - 1:
            _write_shard(out, shards, batch, i, faces, voices)
            batch = []
            el = time.time() - t0
            log(f"  {split}: {i + 1}/{n_total} scenes, {el:.1f} s ({(i + 1) * cfg.clip_seconds / max(el, 1e-9):.1f} s audio/s)")
    _SCENE_ARGS = ()
    el = time.time() - t0
    info = {"split": split, "scenes": n_total, "shards": shards, "seconds": round(el, 2),
            "face_ids": [f.face_id for f in faces], "voice_ids": [v for v, _ in voices],
            "clip_seconds": cfg.clip_seconds, "seed": cfg.seed, "espeak": espeak_version(),
            "recipe": split_recipe(cfg, split)}
    (out / "manifest.json").write_text(json.dumps(info, indent=1))
    return info


def _write_shard(out: Path, shards: list, batch: list, i: int, faces, voices) -> None:
    path = out / f"shard-{len(shards):05d}.npz"
    arrays = {k: np.stack([b[k] for b in batch]) for k in batch[0]}
    arrays["scene_index"] = np.arange(i + 1 - len(batch), i + 1, dtype=np.int32)
    arrays["face_ids"] = np.array([f.face_id for f in faces])
    arrays["voice_ids"] = np.array([v for v, _ in voices])
    np.savez(path, **arrays)
    shards.append(path.name)


def shard_paths(directory: Path) -> list[Path]:
    paths = sorted(Path(directory).glob("shard-*.npz"))
    if not paths:
        raise FileNotFoundError(f"no shards in {directory}: run `python -m training synth` first")
    return paths


def load_shards(directory: Path) -> dict:
    """All shards of one split concatenated (numpy arrays)."""
    return load_shard_files(shard_paths(directory))[0]


def _npy_header(npz, key: str, path: Path) -> tuple[tuple, np.dtype]:
    """(shape, dtype) of one array of an .npz, read from its header, not its data (`NpzFile.zip`
    is the archive; reading the arrays themselves for their lengths would read the data twice)."""
    try:
        with npz.zip.open(f"{key}.npy") as f:
            version = np.lib.format.read_magic(f)
            read = np.lib.format.read_array_header_1_0 if version == (1, 0) else np.lib.format.read_array_header_2_0
            shape, _, dtype = read(f)
    except KeyError as e:
        raise ValueError(f"{path}: no array {key!r} (shards of different synthesis versions?)") from e
    return shape, dtype


def load_shard_files(paths: list[Path]) -> tuple[dict, list[int]]:
    """Shards concatenated along scenes, and each shard's number of scenes. Every array is
    allocated once at its final size and filled shard by shard: the peak is the data plus one
    shard's array, not twice the data (the training splits are several GB, and two runs side by
    side share the machine). face_ids and voice_ids come from the first shard."""
    files = [np.load(p) for p in paths]  # NpzFile: an array is read only when asked for
    try:
        out = {"face_ids": files[0]["face_ids"], "voice_ids": files[0]["voice_ids"]}
        keys = [k for k in files[0].files if k not in ("face_ids", "voice_ids")]
        heads = {k: [_npy_header(f, k, p) for f, p in zip(files, paths)] for k in keys}
        lengths = [shape[0] for shape, _ in heads[keys[0]]]
        for k in keys:
            (shape0, dtype0) = heads[k][0]
            for (shape, dtype), p, n in zip(heads[k], paths, lengths):
                if shape[1:] != shape0[1:] or dtype != dtype0 or shape[0] != n:
                    raise ValueError(f"{p}: {k} is {dtype}{list(shape)}, {paths[0].name} has {dtype0}{list(shape0)}")
            arr = np.empty((sum(lengths), *shape0[1:]), dtype0)
            pos = 0
            for f, n in zip(files, lengths):
                arr[pos: pos + n] = f[k]
                pos += n
            out[k] = arr
    finally:
        for f in files:
            f.close()
    return out, lengths
