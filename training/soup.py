"""Weight averaging ("model soup"): `python -m training soup --config training/configs/<x>.toml
[--kind audio]`.

Models fine-tuned from the same weights can often be averaged element-wise, and the average keeps
some of each one's strengths without any training. The config's `[soup]` lists the members, each
a table with a weight (the weights must add up to 1) and either
  run = "<name>"                     a training run (`--kind audio`: its twin <name>-audio), or
  onnx = "models/separator.onnx"     an exported file (`--kind audio`: onnx_audio), optionally
  sha256 = "..."                     pinned (`--kind audio`: sha256_audio).
Every member must have the config's `[model]`. The average is written as the config's own run
(training/runs/<name>[-audio]/model.pt), so `export`, `evaluate` and `diagnose` work on it as on
any run. A parameter that a member's file lacks (the AV model's training-only head) is averaged
over the members that have it, and starts fresh where none has it. One member of weight 1 turns
an ONNX file into a run (a GPU lease starts from it: the device's PyTorch exports differently, so
`init_from_onnx` is done here, scripts/gpu-train.sh).
"""

from __future__ import annotations

from pathlib import Path

import torch

from .config import run_dir
from .onnx_import import import_onnx


def _member_weights(cfg: dict, member: dict, kind: str, make_model) -> tuple[dict, set[str], str]:
    """(state dict, names it does not really hold, what it is) of one member."""
    if "run" in member:
        name = member["run"] + ("-audio" if kind == "audio" else "")
        path = run_dir({"name": name}) / "model.pt"
        if not path.is_file():
            raise FileNotFoundError(f"soup: the member run {path} does not exist")
        return torch.load(path, map_location="cpu", weights_only=False)["model"], set(), str(path)
    if "onnx" in member:
        key = "onnx_audio" if kind == "audio" else "onnx"
        if key not in member:
            raise ValueError(f"soup: a member with onnx = {member['onnx']!r} needs {key} for a {kind} model")
        sha_key = "sha256_audio" if kind == "audio" else "sha256"
        model = make_model(cfg)
        fresh = import_onnx(model, cfg, member[key], member.get(sha_key), f"soup member {key}")
        return model.state_dict(), set(fresh), member[key]
    raise ValueError(f"soup: a member needs run = ... or onnx = ... (got {sorted(member)})")


def soup(cfg: dict, log=print) -> Path:
    from .model_setup import make_model

    members = cfg.get("soup", {}).get("members")
    if not members:
        raise ValueError(f"{cfg['name']}: [soup] members needs at least one entry")
    weights = [float(m.get("weight", 0.0)) for m in members]
    if min(weights) <= 0 or abs(sum(weights) - 1.0) > 1e-6:
        raise ValueError(f"{cfg['name']}: soup weights {weights} must be > 0 and add up to 1")
    kind = cfg["model"].get("kind", "av")
    total: dict[str, torch.Tensor] = {}
    mass: dict[str, float] = {}
    reference = make_model(cfg).state_dict()
    for member, w in zip(members, weights):
        sd, lacks, what = _member_weights(cfg, member, kind, make_model)
        if set(sd) != set(reference) or any(sd[k].shape != reference[k].shape for k in reference):
            raise ValueError(f"soup: {what} does not have this config's [model] shapes")
        for k, v in sd.items():
            if k in lacks:
                continue
            total[k] = total.get(k, 0.0) + w * v.double()
            mass[k] = mass.get(k, 0.0) + w
        log(f"[soup] {what}: weight {w}")
    out_sd = {k: (total[k] / mass[k]).to(reference[k].dtype) if k in total else reference[k] for k in reference}
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    torch.save({"model": out_sd, "config": cfg, "step": 0}, out / "model.pt.tmp")
    (out / "model.pt.tmp").replace(out / "model.pt")
    log(f"[soup] saved {out / 'model.pt'}")
    return out / "model.pt"
