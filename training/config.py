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
    """A config; `base = "<other>.toml"` (beside it) starts from that config: its own top-level
    keys replace the base's, its sections are merged key by key into the base's, and the name is
    never inherited (an experiment is its control plus the keys it changes)."""
    path = Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"{path}: no such config")
    try:
        with path.open("rb") as f:
            cfg = tomllib.load(f)
    except tomllib.TOMLDecodeError as e:
        raise ValueError(f"{path}: not valid TOML: {e}") from e
    if "base" in cfg:
        base_path = path.parent / cfg.pop("base")
        if not base_path.is_file():
            raise FileNotFoundError(f"{path}: base = {base_path.name!r}: no such config {base_path}")
        merged = {k: v for k, v in load(base_path).items() if k != "name"}
        for k, v in cfg.items():
            merged[k] = {**merged[k], **v} if isinstance(v, dict) and isinstance(merged.get(k), dict) else v
        cfg = merged
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
