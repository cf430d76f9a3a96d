"""Does a model fit its own training voices better than held-out ones? `python -m training fit
--config training/configs/cpu.toml` (numpy + ONNX Runtime, like `evaluate`; writes nothing).

It scores the shipped pair (or `--model`, with its baseline) on the first `--shards` shard(s) of
every split the config's data directory holds: the training splits (voices and faces the models
were trained on, in fixed scenes rather than the dynamic mixtures training draws) beside `val`
and `test`, with the ideal ratio mask of the same scenes as the ceiling (training/oracle.py).

How to read it: if the training-voice rows sit well above val, the gap to a target is
generalization (more voices, regularization); if they sit level with val or below it, the model
does not fit even what it has seen, and the gap is capacity and training compute. Each split's
IRM row says how hard its scenes are in themselves.
"""

from __future__ import annotations

from pathlib import Path

from .config import ROOT, data_dir
from .evaluate import score
from .onnx_run import OnnxSeparator
from .oracle import score_oracles
from .synth.scene import load_shard_files, shard_paths

SPLITS = ("train", "train_festival", "stack", "train_more", "val", "test")


def first_shards(cfg: dict, split: str, shards: int = 1) -> dict:
    """The first `shards` shards (250 scenes each) of a synthesized split."""
    data, _ = load_shard_files(shard_paths(data_dir(cfg) / split)[:shards])
    return data


def fit_rows(models: dict[str, OnnxSeparator], data: dict) -> dict:
    """{"scenes": n, "irm_2spk": dB, <model name>: {"2spk": dB, "3spk": dB}} for one set of scenes."""
    row: dict = {"scenes": int(len(data["mixture"])), "irm_2spk": round(score_oracles(data)["si_sdri"]["IRM"], 3)}
    for name, model in models.items():
        by = score(model, data)["by_talkers"]
        row[name] = {g: round(by[g]["si_sdri"], 3) for g in ("2spk", "3spk") if g in by}
    return row


def fit_check(cfg: dict, model: str | Path = ROOT / "models" / "separator.onnx",
              baseline: str | Path = ROOT / "models" / "separator-audio.onnx", shards: int = 1) -> dict:
    models = {"av": OnnxSeparator(model), "audio": OnnxSeparator(baseline)}
    out = {"model": str(model), "baseline": str(baseline), "shards": shards, "splits": {}}
    for split in SPLITS:
        if not (data_dir(cfg) / split).is_dir():
            continue
        data = first_shards(cfg, split, shards)
        out["splits"][split] = fit_rows(models, data)
        print(f"[fit] {split}: {out['splits'][split]}", flush=True)
    if not out["splits"]:
        raise FileNotFoundError(f"no split of {data_dir(cfg)} to score: run `python -m training synth` first")
    return out
