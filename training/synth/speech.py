"""Speech sources: espeak-ng utterances for TRAINING, real recordings for validation/test ONLY.

Training speech is text-to-speech from espeak-ng voice variants reading random word sequences
(always the built-in vocabulary below, see `word_list`). Real recorded voices (alsa-utils,
codec2-examples, ../shared/data/speech) are never used for training: `real_voices(split)` hands
out disjoint sets for "val" and "test".
"""

from __future__ import annotations

import subprocess
import tempfile
import wave
from dataclasses import dataclass
from functools import partial
from pathlib import Path

import numpy as np

from ..config import SHARED
from .common import ordered_map, resample_fft

SR = 16_000
ROOT = Path(__file__).resolve().parents[2]
SHARED_SPEECH = SHARED / "data" / "speech"

BUILTIN_WORDS = """
the a one two three four five six seven eight nine ten red green blue yellow black white morning
evening night day week year time table chair window door house garden river mountain valley city
street market library school office kitchen paper letter number question answer reason problem
story music picture weather rain snow wind sun cloud summer winter spring autumn water coffee bread
apple orange lemon dinner lunch breakfast friend mother father brother sister teacher doctor driver
farmer painter walk talk run jump read write open close start stop bring carry travel listen watch
remember forget follow finish explain arrive leave happy quiet quick slow early late bright dark
small large heavy light warm cold simple strange careful gentle honest modern ancient northern
southern please thanks always never often maybe perhaps again soon today tomorrow yesterday before
after under over between inside outside around along through across behind beside very really
""".split()

# espeak-ng English voices and variants (+m1..m7 male, +f1..f5 female, a few others).
BASE_VOICES = ["en", "en-us", "en-gb-scotland", "en-gb-x-rp", "en-029", "en-gb-x-gbclan"]
VARIANTS = ["m1", "m2", "m3", "m4", "m5", "m6", "m7", "f1", "f2", "f3", "f4", "f5",
            "klatt", "klatt2", "croak", "whisper"]
# Disjoint variant sets per split: held-out voices are unseen variants, not just unseen pitches.
VARIANTS_BY_SPLIT = {
    "train": ["m1", "m2", "m4", "m5", "m7", "f1", "f3", "f5", "klatt", "croak", "whisper"],
    "val": ["m6", "f4"],
    "test": ["m3", "f2", "klatt2"],
    # voices no separator trained on, for training what sits on top of trained separators (v8L's
    # fusion head): their errors there are those of unseen voices, as on val and test
    "stack": ["m8", "klatt3", "klatt4", "Andy", "Annie", "adam", "anika", "linda", "steph", "travis",
              "victor", "shelby", "paul", "david", "john", "robert", "benjamin", "caleb", "belinda",
              "norbert", "quincy", "zac", "max", "edward", "iven", "grandma", "michel"],
    # more training voices (v10): the remaining human-sounding variants espeak-ng 1.51 ships (not
    # the robot, demonic, announcer or fast-test ones), outside every split above
    "train_more": ["Alex", "Alicia", "Andrea", "antonio", "aunty", "boris", "Denis", "Diogo", "ed",
                   "edward2", "Gene", "Gene2", "gustave", "Henrique", "Hugo", "iven2", "iven3", "iven4",
                   "Jacky", "kaukovalta", "Lee", "marcelo", "Marco", "Mario", "Michael", "miguel", "Mike",
                   "Nguyen", "pablo", "pedro", "RicishayMax", "RicishayMax2", "RicishayMax3", "rob",
                   "steph2", "steph3", "Storm", "Tweaky", "AnxiousAndy", "whisperf", "grandpa", "klatt5",
                   "klatt6", "sandro"],
}


def word_list() -> list[str]:
    # Fixed, whatever the machine has installed: every committed figure comes from scenes made
    # with this list, and `make eval` re-synthesizes missing test splits (an earlier version took
    # /usr/share/dict/words when present; no machine that made the figures had it).
    return list(BUILTIN_WORDS)


@dataclass(frozen=True)
class VoiceSpec:
    voice: str  # espeak-ng voice name with variant, e.g. "en-us+f3"
    speed: int  # words per minute
    pitch: int  # 0..99

    @property
    def key(self) -> str:
        return f"{self.voice}|s{self.speed}|p{self.pitch}"


def random_voice(rng: np.random.Generator, variants: list[str] | None = None) -> VoiceSpec:
    variants = variants or VARIANTS
    base = BASE_VOICES[rng.integers(len(BASE_VOICES))]
    var = variants[rng.integers(len(variants))]
    return VoiceSpec(f"{base}+{var}", int(rng.integers(130, 206)), int(rng.integers(20, 80)))


def random_sentence(rng: np.random.Generator, words: list[str], lo: int = 4, hi: int = 12) -> str:
    n = int(rng.integers(lo, hi + 1))
    return " ".join(words[i] for i in rng.integers(0, len(words), n))


def read_wav_any(path: Path) -> tuple[np.ndarray, int]:
    """16-bit PCM WAV (any channel count, first channel kept) as float64 in [-1, 1)."""
    with wave.open(str(path), "rb") as w:
        if w.getsampwidth() != 2:
            raise ValueError(f"{path}: only 16-bit PCM is read here")
        ch, sr = w.getnchannels(), w.getframerate()
        x = np.frombuffer(w.readframes(w.getnframes()), dtype="<i2").astype(np.float64) / 32768.0
    return x.reshape(-1, ch)[:, 0].copy(), sr


def trim_and_fade(y: np.ndarray, rel_thr: float = 0.02) -> np.ndarray:
    """Trim leading/trailing silence (below rel_thr x peak) keeping 10 ms, then 5 ms fades."""
    peak = np.max(np.abs(y)) if len(y) else 0.0
    if peak <= 0:
        return y[:0]
    idx = np.nonzero(np.abs(y) > rel_thr * peak)[0]
    keep = int(0.010 * SR)
    y = y[max(idx[0] - keep, 0): idx[-1] + keep + 1].copy()
    fade = min(int(0.005 * SR), len(y) // 2)
    if fade > 0:
        ramp = np.linspace(0.0, 1.0, fade, endpoint=False)
        y[:fade] *= ramp
        y[-fade:] *= ramp[::-1]
    return y


def espeak(text: str, voice: VoiceSpec, tmpdir: Path) -> np.ndarray:
    """One utterance: espeak-ng -> 16 kHz float64, trimmed, faded, unit RMS."""
    wav = tmpdir / "u.wav"
    subprocess.run(["espeak-ng", "-v", voice.voice, "-s", str(voice.speed), "-p", str(voice.pitch),
                    "-w", str(wav), text], check=True, capture_output=True)
    x, sr = read_wav_any(wav)
    return to_unit_utterance(x, sr)


def to_unit_utterance(x: np.ndarray, sr: int, speed: float = 1.0) -> np.ndarray:
    """A synthesizer's output at `sr` -> 16 kHz float64, trimmed, faded, unit RMS. speed != 1
    resamples as if the recording had sr * speed samples per second (a speed perturbation)."""
    pad = sr // 10
    y = resample_fft(np.concatenate([np.zeros(pad), x, np.zeros(pad)]), int(round(sr * speed)), SR)
    y = trim_and_fade(y)
    return y / (np.sqrt(np.mean(y ** 2)) + 1e-12)


def _speak_job(job) -> np.ndarray:
    speak, text, voice = job
    with tempfile.TemporaryDirectory() as tmp:
        return speak(text, voice, Path(tmp))


def _pool(seed: int, n_voices: int, utts_per_voice: int, words, progress, draw_voice, speak, workers: int = 1):
    """pool[v][u] for voices drawn by draw_voice(rng) (distinct keys), each utterance spoken by
    speak(text, voice, tmpdir); utterances under 0.2 s and voices left without any are dropped.
    workers > 1 speaks in that many processes: the voices and texts are drawn first, in the same
    order, so the pool is the same whatever the number of workers."""
    rng = np.random.default_rng(seed)
    words = words if words is not None else word_list()
    voices, seen = [], set()
    while len(voices) < n_voices:
        v = draw_voice(rng)
        if v.key not in seen:
            seen.add(v.key)
            voices.append(v)
    jobs = [(speak, random_sentence(rng, words), v) for v in voices for _ in range(utts_per_voice)]
    pool, utts = [], []
    for u in ordered_map(_speak_job, jobs, workers, chunksize=utts_per_voice):
        utts.append(u)
        if len(utts) == utts_per_voice:
            pool.append([x for x in utts if len(x) > SR // 5])
            utts = []
            if progress:
                progress(len(pool), len(voices))
    return [p for p in pool if p]


def tts_pool(seed: int, n_voices: int, utts_per_voice: int, words: list[str] | None = None,
             progress=None, variants: list[str] | None = None, workers: int = 1) -> list[list[np.ndarray]]:
    """pool[v][u]: utterance u of voice v (unit RMS). Deterministic for a seed and espeak version.
    variants: the espeak-ng variants to draw voices from (default: all)."""
    return _pool(seed, n_voices, utts_per_voice, words, progress,
                 partial(random_voice, variants=variants), espeak, workers)


# festival (Debian festival + festvox-kallpc16k + festvox-us-slt-hts): two base voices, varied
# by speaking rate (Duration_Stretch), the diphone voice's mean pitch, and a speed perturbation
# (resampling: pitch and formants move together, as for a differently sized speaker). Used for
# training volume only: with two base voices there is no festival voice left to hold out.
FESTIVAL_VOICES = {"kal": "(voice_kal_diphone)", "slt": "(voice_cmu_us_slt_arctic_hts)"}


@dataclass(frozen=True)
class FestivalVoice:
    base: str  # key of FESTIVAL_VOICES
    stretch: float  # Duration_Stretch (> 1 is slower)
    f0: int  # target mean pitch in Hz for the diphone voice (0: the voice's own)
    speed: float  # speed perturbation factor

    @property
    def key(self) -> str:
        return f"festival-{self.base}|d{self.stretch:.2f}|f{self.f0}|s{self.speed:.2f}"


def random_festival_voice(rng: np.random.Generator) -> FestivalVoice:
    base = sorted(FESTIVAL_VOICES)[rng.integers(len(FESTIVAL_VOICES))]
    f0 = int(rng.integers(90, 200)) if base == "kal" else 0
    return FestivalVoice(base, round(float(rng.uniform(0.85, 1.25)), 2), f0, round(float(rng.uniform(0.88, 1.12)), 2))


def festival(text: str, voice: FestivalVoice, tmpdir: Path) -> np.ndarray:
    """One utterance: festival's text2wave -> 16 kHz float64, speed-perturbed, trimmed, unit RMS.
    The text goes through a file, never through the Scheme command line."""
    txt, wav = tmpdir / "u.txt", tmpdir / "u.wav"
    txt.write_text(text + "\n")
    cmd = ["text2wave", "-eval", FESTIVAL_VOICES[voice.base],
           "-eval", f"(Parameter.set 'Duration_Stretch {voice.stretch})"]
    if voice.f0:
        cmd += ["-eval", f"(set! int_lr_params '((target_f0_mean {voice.f0}) (target_f0_std {voice.f0 // 6}) "
                         "(model_f0_mean 170) (model_f0_std 34)))"]
    subprocess.run(cmd + [str(txt), "-o", str(wav)], check=True, capture_output=True)
    x, sr = read_wav_any(wav)
    return to_unit_utterance(x, sr, voice.speed)


def festival_pool(seed: int, n_voices: int, utts_per_voice: int, words: list[str] | None = None,
                  progress=None, workers: int = 1) -> list[list[np.ndarray]]:
    """pool[v][u] like `tts_pool`, from festival voices."""
    return _pool(seed, n_voices, utts_per_voice, words, progress, random_festival_voice, festival, workers)

# Real recorded voices: (path, sample rate for raw files, speaker id). Validation and test get
# disjoint speakers. codec2 .raw files are 8 kHz s16le (band-limited to 4 kHz after resampling).
CODEC2 = Path("/usr/share/codec2")
ALSA = Path("/usr/share/sounds/alsa")
REAL_VOICES = {
    "val_real": [
        ("alsa-female", [ALSA / f"{n}.wav" for n in ("Front_Center", "Front_Left", "Front_Right",
                                                      "Rear_Center", "Rear_Left", "Rear_Right",
                                                      "Side_Left", "Side_Right")]),
        ("codec2-hts1", [CODEC2 / "raw" / "hts1.raw"]),
        ("codec2-hts2", [CODEC2 / "raw" / "hts2.raw"]),
        ("codec2-forig", [CODEC2 / "raw" / "forig.raw"]),
        ("codec2-cq_ref", [CODEC2 / "raw" / "cq_ref.raw"]),
    ],
    "test_real": [
        ("arctic-male", [SHARED_SPEECH / "arctic_a0007_male_16k.wav"]),
        ("codec2-speech_orig_16k", [CODEC2 / "raw" / "speech_orig_16k.wav"]),
        ("codec2-morig", [CODEC2 / "raw" / "morig.raw"]),
        ("codec2-mmt1", [CODEC2 / "raw" / "mmt1.raw"]),
        ("codec2-kristoff", [CODEC2 / "raw" / "kristoff.raw"]),
        ("codec2-g3plx", [CODEC2 / "raw" / "g3plx.raw"]),
    ],
}


def _load_real(path: Path) -> np.ndarray:
    if path.suffix == ".raw":
        x = np.fromfile(path, dtype="<i2").astype(np.float64) / 32768.0
        sr = 8000
    else:
        x, sr = read_wav_any(path)
    return resample_fft(x, sr, SR)


def real_voices(split: str) -> list[tuple[str, list[np.ndarray]]]:
    """[(speaker id, [utterance segments at 16 kHz, unit RMS])] for "val_real" or "test_real". A
    missing recording is an error naming it: a split built without it would be other scenes."""
    if split not in REAL_VOICES:
        raise ValueError(f"real voices exist only for val/test, not {split!r}")
    out = []
    for spk, paths in REAL_VOICES[split]:
        segs = []
        for p in paths:
            if not p.is_file():
                raise FileNotFoundError(
                    f"{split}: recording {p} of speaker {spk} is missing (install the Debian packages of "
                    "scripts/apt-packages.txt; ../shared/data/speech for the shared clips)")
            y = trim_and_fade(_load_real(p))
            # cut long recordings into <= 4 s pieces so one scene does not hold a whole file
            step = 4 * SR
            for a in range(0, len(y), step):
                s = y[a: a + step]
                if len(s) > SR // 2 and np.sqrt(np.mean(s ** 2)) > 1e-4:
                    segs.append(s / np.sqrt(np.mean(s ** 2)))
        if segs:
            out.append((spk, segs))
    return out
