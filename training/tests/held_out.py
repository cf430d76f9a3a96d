"""Freshly synthesized held-out scenes for the tests of the shipped models (not a test module):
the first scenes of the `test` split (unseen espeak-ng variants, held-out faces), as
models/MODELS.md's table uses them. Needs espeak-ng (`make setup`)."""

from __future__ import annotations

import shutil

import pytest

from training.config import ROOT, load, synth_config


def held_out_scenes(n: int) -> list[dict]:
    if shutil.which("espeak-ng") is None:
        pytest.fail("espeak-ng is missing: `make setup` installs it (scripts/apt-packages.txt)")
    from training.synth import faces as F
    from training.synth import scene as S

    cfg = synth_config(load(ROOT / "training" / "configs" / "cpu.toml"))
    voices = S.split_voices(cfg, "test", log=lambda m: None)
    faces = F.load_faces(S.face_split("test"))
    return [S.make_scene(cfg, "test", i, voices, faces) for i in range(n)]
