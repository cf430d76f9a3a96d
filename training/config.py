"""Configuration files (TOML, read with tomllib): training/configs/<name>.toml."""

from __future__ import annotations

import os
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The workplace's shared folder (face photos, recordings): ../shared beside the checkout, or
# $AVSEPD_SHARED where the checkout travels without it (a GPU machine: scripts/gpu-train.sh).
SHARED = Path(os.environ.get("AVSEPD_SHARED", ROOT.parent / "shared"))


def load(path: str | Path) -> dict:
    path = Path(path)
    with path.open("rb") as f:
        cfg = tomllib.load(f)
    cfg.setdefault("name", path.stem)
    cfg.setdefault("seed", 1234)
    for section in ("synth", "model", "train", "export"):
        cfg.setdefault(section, {})
    return cfg


def data_dir(cfg: dict) -> Path:
    """training/data/<data_name or name>: a config may reuse another config's synthesized data."""
    return ROOT / "training" / "data" / cfg.get("data_name", cfg["name"])


def run_dir(cfg: dict) -> Path:
    """training/runs/<name> (<name>-<kind> when `--kind` overrides the config's model kind)."""
    return ROOT / "training" / "runs" / cfg.get("run_name", cfg["name"])


def synth_config(cfg: dict):
    from .synth.scene import SynthConfig

    s = dict(cfg["synth"])
    for k in ("snr_db", "speaker_gain_db", "av_lead_s"):
        if k in s:
            s[k] = tuple(s[k])
    return SynthConfig(seed=cfg["seed"], **s)
