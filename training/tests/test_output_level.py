"""The separator's output level and the daemon's speaking decision, from the Python side
(training/calibrate.py, training/speaking.py; CI: no PyTorch).

The daemon knows the shipped model's output gain by its sha256 (src/model/face_separator.rs
`KNOWN_OUTPUT_GAINS`) and decides who speaks with the constants of src/stream/speech.rs; these
tests read both from the Rust sources, so the two sides cannot drift apart silently.
"""

from __future__ import annotations

import hashlib
import re

import numpy as np
import pytest

from training import metrics as M
from training.calibrate import least_squares_gain_db, write_gain
from training.config import ROOT
from training.onnx_run import PAD, OnnxSeparator
from training.speaking import _bridge, decide
from training.tests.held_out import held_out_scenes

SEPARATOR = ROOT / "models" / "separator.onnx"
N_SCENES = 24


def rust_known_gains() -> dict[str, float]:
    text = (ROOT / "src" / "model" / "face_separator.rs").read_text()
    block = text.split("const KNOWN_OUTPUT_GAINS", 1)[1].split("];", 1)[0]
    return {sha: float(g) for sha, g in re.findall(r'"([0-9a-f]{64})",\s*([-0-9.]+)', block)}


def rust_speech_constants() -> dict[str, float]:
    text = (ROOT / "src" / "stream" / "speech.rs").read_text()
    return {k: float(v) for k, v in re.findall(r"pub const (\w+): \w+ = (-?[0-9.]+);", text)}


def test_least_squares_gain():
    rng = np.random.default_rng(0)
    s = rng.standard_normal(16000)
    assert least_squares_gain_db(0.1 * s, s) == pytest.approx(20.0)
    assert least_squares_gain_db(2.0 * s, s) == pytest.approx(-6.0206, abs=1e-3)
    assert np.isnan(least_squares_gain_db(np.zeros(10), np.ones(10)))
    assert np.isnan(least_squares_gain_db(-s, s))


def test_write_gain_stores_metadata(tmp_path):
    import onnx

    path = tmp_path / "m.onnx"
    path.write_bytes(SEPARATOR.read_bytes())
    write_gain(path, 12.345)
    props = {p.key: p.value for p in onnx.load(str(path)).metadata_props}
    assert props["output_gain_db"] == "12.35"
    assert props["model_kind"] == "av"  # the rest is kept


@pytest.fixture(scope="module")
def scenes():
    return held_out_scenes(N_SCENES)


def test_the_daemon_gain_puts_held_out_voices_at_their_level(scenes):
    """The gain the daemon applies to the shipped model (known by sha256, measured on `val`)
    brings the talking faces of held-out test scenes to within a few dB of their own voices."""
    sha = hashlib.sha256(SEPARATOR.read_bytes()).hexdigest()
    gains = rust_known_gains()
    assert sha in gains, "src/model/face_separator.rs KNOWN_OUTPUT_GAINS lacks the shipped model's sha256"
    scale = 10 ** (gains[sha] / 20)
    m = OnnxSeparator(SEPARATOR)
    off = []
    for sc in scenes:
        x = sc["mixture"].astype(np.float64)
        for k in np.nonzero(sc["present"] & sc["speaking"])[0]:
            y = scale * m.separate(x[None], sc["rois"][k][None])[0, :-PAD]
            src = sc["sources"][k, :-PAD].astype(np.float64)
            if M.si_sdr(y, src, zero_mean=True) > 0.0:
                off.append(least_squares_gain_db(y, src))
    off = np.array(off)
    print(f"{len(off)} faces: remaining gain to their voice's level, median {np.median(off):+.2f} dB, "
          f"quartiles {np.percentile(off, 25):+.2f} / {np.percentile(off, 75):+.2f} dB")
    assert len(off) >= 10
    assert abs(np.median(off)) <= 3.0
    assert np.percentile(off, 75) - np.percentile(off, 25) <= 10.0


def test_python_replay_is_the_rust_rule():
    """training/speaking.py's `decide` with speech.rs's constants behaves as speech.rs's own unit
    test says: two voiced chunks start speech, a 200 ms pause does not end it, 320 ms does."""
    c = rust_speech_constants()
    assert {"ONSET_CHUNKS", "HANGOVER_CHUNKS", "ACTIVE_DBFS", "SHARE_DB", "BELOW_LOUDEST_DB"} <= c.keys()
    loud = 1e-3
    voice = np.array([loud, 0, loud, loud] + [0] * 5 + [loud] * 3 + [0] * 10, dtype=np.float64)
    flags = decide(voice, np.full(len(voice), loud), voice, c["ACTIVE_DBFS"], c["SHARE_DB"],
                   int(c["ONSET_CHUNKS"]), int(c["HANGOVER_CHUNKS"]), c["BELOW_LOUDEST_DB"])
    changes = np.flatnonzero(np.diff(np.concatenate([[False], flags]).astype(int)))
    assert list(changes) == [3, 19]


def test_truth_bridges_short_pauses_only():
    a = np.array([1, 0, 0, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1], dtype=bool)
    assert list(_bridge(a, 3).astype(int)) == [1, 1, 1, 1, 0, 0, 0, 0, 0, 0, 0, 0, 0, 1]
