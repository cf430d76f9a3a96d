"""A run's model: built from its config (`make_model`), loaded from a finished run (`load_model`),
given its starting weights from other runs or exported files (`init_weights`), and the teacher a
distilled run learns from (`load_teacher`).
"""

from __future__ import annotations

import torch

from .config import ROOT, run_dir
from .config import load as load_config
from .model import Separator, widen_state_dict


def make_model(cfg: dict) -> Separator:
    m = cfg["model"]
    if m.get("kind") == "fused_head":  # v8L: two trained runs, frozen, and a head to train
        from .fusion_head import make_learned_fused

        return make_learned_fused(cfg)
    if m.get("arch", "chunk_gru") == "dualpath":  # v13 (experiment): training/band_model.py
        from .band_model import BandSeparator

        return BandSeparator(m.get("kind", "av"), int(m.get("dim", 48)), int(m.get("blocks", 3)),
                             int(m.get("visual_dim", 64)), bool(m.get("select", True)), bool(m.get("roi_norm", True)))
    if m.get("arch", "chunk_gru") != "chunk_gru":
        raise ValueError(f"model.arch = {m['arch']!r}: \"chunk_gru\" (Separator) or \"dualpath\" (BandSeparator)")
    return Separator(m.get("kind", "av"), m.get("hidden", 384), m.get("visual_dim", 64), m.get("frame_dim", 192),
                     m.get("gru_layers", 2), m.get("post_blocks", 0), m.get("post_width", 512),
                     bool(m.get("select", False)) and m.get("kind", "av") == "av", int(m.get("band_head", 0)),
                     bool(m.get("roi_norm", False)), int(m.get("lookahead", 0)), m.get("gru_hidden"))


def load_teacher(cfg: dict, kind: str, device: str):
    """train.distill_from (v9d): the config file (in the training config's folder) of a trained AV
    model, fused ones included, that the run learns from besides the ground truth, and
    train.distill_weight (default 1). Why: the fused v8 models beat the AV model alone on
    validation by ~0.3 dB at twice its cost; a student of the AV model's size may keep part of
    that at its own cost. Returns (None, 0.0) without distill_from."""
    t = cfg["train"]
    name = t.get("distill_from")
    if not name:
        return None, 0.0
    if kind != "av":
        raise ValueError("train.distill_from: only an AV model learns from a teacher")
    path = ROOT / "training" / "configs" / name
    if not path.is_file():
        raise FileNotFoundError(f"train.distill_from: no config {path}")
    teacher = load_model(load_config(path))
    if teacher.kind != "av":
        raise ValueError(f"train.distill_from: {path} is a {teacher.kind} model, not an AV one")
    teacher.to(device).eval()
    for p in teacher.parameters():
        p.requires_grad_(False)
    weight = float(t.get("distill_weight", 1.0))
    if weight <= 0:
        raise ValueError(f"train.distill_weight = {weight}: must be > 0")
    return teacher, weight


def onnx_init_key(kind: str) -> str:
    """The setting that names an ONNX starting file for this kind of model."""
    return "init_from_onnx_audio" if kind == "audio" else "init_from_onnx"


def check_init_file(cfg: dict) -> None:
    """train.init_from_onnx[_audio]: the file exists and has its pinned sha256 (cheap; the import
    itself, in `init_weights`, needs the model and checks again)."""
    from .onnx_import import check_onnx_file

    t, key = cfg["train"], onnx_init_key(cfg["model"].get("kind", "av"))
    if t.get(key):
        check_onnx_file(t[key], t.get(f"{key}_sha256"), f"train.{key}")
    if t.get("init_visual_from_onnx"):  # v13
        check_onnx_file(t["init_visual_from_onnx"], t.get("init_visual_from_onnx_sha256"), "train.init_visual_from_onnx")


def import_start_file(model, t: dict, cfg: dict, log) -> bool:
    """train.init_from_onnx[_audio] (+ _sha256): fill the model from that exported file; False
    when the config names none."""
    key = onnx_init_key(model.kind)
    if not t.get(key):
        return False
    from .onnx_import import import_onnx

    fresh = import_onnx(model, cfg, t[key], t.get(f"{key}_sha256"), f"train.{key}")
    log(f"[train] weights imported from {t[key]}" + (f" (fresh: {', '.join(fresh)})" if fresh else ""))
    return True


def init_weights(model: Separator, t: dict, cfg: dict, device: str, log) -> None:
    """A fresh run's starting weights, from other runs (a fresh optimiser and schedule):
    train.init_select_from {audio, av}: an AV model with select from an audio-only run's separator
      and an AV run's visual encoder (without "av": random visual weights), see `init_select`;
    train.init_from: the named run (`--kind audio` runs: its audio-only twin <init_from>-audio, or
      train.init_from_audio); long runs that span sessions start from the shipped run. Layers the
      source lacks may only be v4's per-frame blocks, v5's band head or v7's look-ahead layers, which
      start as the identity (a zero contribution); a source with a narrower GRU is widened into
      this model's without changing its masks (`widen_state_dict`, v7w);
    train.init_optional: a missing source run starts from scratch instead of failing;
    train.init_from_onnx (`--kind audio`: train.init_from_onnx_audio): an exported model file of
      this configuration, e.g. the shipped models/separator.onnx (`training/onnx_import.py`); it
      takes precedence over init_from. <key>_sha256 pins the file (a run that must start from one
      particular model, not from whatever was shipped since). Training-only layers the file lacks start fresh."""
    def source(name: str):
        path = run_dir({"name": name}) / "model.pt"
        if path.is_file():
            return path, torch.load(path, map_location=device, weights_only=False)["model"]
        if t.get("init_optional"):
            log(f"[train] {path} does not exist: starting from scratch (train.init_optional)")
            return path, None
        raise FileNotFoundError(f"train: the source run {path} does not exist")

    if getattr(model, "arch", None) == "dualpath":
        init_dualpath(model, t, cfg, source, log)
        return
    if t.get("init_select_from"):
        srcs = t["init_select_from"]
        (pa, audio_sd), (pv, av_sd) = source(srcs["audio"]), (source(srcs["av"]) if "av" in srcs else (None, None))
        if audio_sd is not None:
            init_select(model, audio_sd, av_sd)
            log(f"[train] separator initialised from {pa}, visual encoder from {pv if av_sd is not None else 'random weights'}")
        return
    if import_start_file(model, t, cfg, log):
        return
    if not t.get("init_from"):
        return
    name = t["init_from"] + (f"-{model.kind}" if cfg.get("run_name") else "")
    if model.kind == "audio" and t.get("init_from_audio"):
        name = t["init_from_audio"]
    path, sd = source(name)
    if sd is None:
        return
    sd_width = sd["gru.weight_hh_l0"].shape[1]
    if model.gru_hidden != sd_width:  # v7w: a wider GRU than the source's
        sd = widen_state_dict(model, sd)
        log(f"[train] GRU widened from {sd_width} to {model.gru_hidden} units, the masks unchanged")
    missing, unexpected = model.load_state_dict(sd, strict=False)
    if unexpected or any(not k.startswith(("post.", "band.", "ahead.")) for k in missing):
        raise ValueError(f"train.init_from: {path} does not fit this model (missing {missing}, unexpected {unexpected})")
    log(f"[train] weights initialised from {path}" + (f" ({len(missing)} new tensors)" if missing else ""))


# what a dual-path AV model has and its audio-only source lacks: they start fresh (FiLM and the
# selection at zero, so the AV model first separates exactly as its source)
_DUALPATH_AV_ONLY = ("vis.", "vis_fc.", "aux.", "sel.")


def init_dualpath(model, t: dict, cfg: dict, source, log) -> None:
    """A dual-path model's starting weights (v13):
    train.init_from: a dual-path run of the same size (for an AV model also an audio-only one:
      band encoder, blocks and the two masks have the same shapes; FiLM, visual encoder and
      selection start fresh);
    train.init_visual_from_onnx (+ _sha256, pinned) with train.init_visual_config: the visual
      encoder of an exported chunk-GRU AV model (the same 4 convolutions and projection), so a
      fresh separator gets a face reader that has already learnt mouths;
    train.init_from_onnx[_audio] (+ _sha256): an exported dual-path model of this configuration
      (a run that must survive the machine, e.g. a GPU lease's start), as for Separator."""
    if import_start_file(model, t, cfg, log):
        return
    if t.get("init_from"):
        name = t["init_from"] + (f"-{model.kind}" if cfg.get("run_name") else "")
        path, sd = source(name)
        if sd is not None:
            missing, unexpected = model.load_state_dict(sd, strict=False)
            bad = [k for k in missing if not (k.startswith(_DUALPATH_AV_ONLY) or ".film." in k)]
            if unexpected or bad:
                raise ValueError(f"train.init_from: {path} does not fit this model (missing {bad}, unexpected {unexpected})")
            log(f"[train] weights initialised from {path}" + (f" ({len(missing)} new tensors)" if missing else ""))
    if t.get("init_visual_from_onnx"):
        if model.kind != "av":
            raise ValueError("train.init_visual_from_onnx: only an AV model has a visual encoder")
        from .onnx_import import import_onnx

        vcfg = load_config(ROOT / "training" / "configs" / t["init_visual_config"])
        donor = make_model(vcfg)
        import_onnx(donor, vcfg, t["init_visual_from_onnx"], t.get("init_visual_from_onnx_sha256"),
                    "train.init_visual_from_onnx")
        own = dict(model.named_parameters())
        with torch.no_grad():
            for k, v in donor.state_dict().items():
                if k.startswith(("vis.", "vis_fc.")):
                    if own[k].shape != v.shape:
                        raise ValueError(f"train.init_visual_from_onnx: {k} is {tuple(v.shape)} there, {tuple(own[k].shape)} here")
                    own[k].copy_(v)
        log(f"[train] visual encoder imported from {t['init_visual_from_onnx']}")


def init_select(model: Separator, audio_sd: dict, av_sd: dict | None) -> None:
    """Initialise an AV model with select from an audio-only model's weights (encoders, GRU,
    decoder and its two masks: the same shapes) and an AV model's visual encoder. The GRU's input
    columns for the visual features start at zero, so the new model first separates exactly as the
    audio-only one, and the face only has to learn which output is its voice (the selection
    starts at a third each)."""
    if not model.select:
        raise ValueError("init_select needs a model with select")
    sd = model.state_dict()
    with torch.no_grad():
        for k, v in sd.items():
            if k.startswith(("vis.", "vis_fc.", "aux.")):
                if av_sd is None:
                    continue
                src = av_sd[k]
            elif k.startswith("sel."):
                continue
            elif k == "gru.weight_ih_l0":
                v.zero_()
                v[:, : model.hidden].copy_(audio_sd[k])
                continue
            else:
                src = audio_sd[k]
            if src.shape != v.shape:
                raise ValueError(f"init_select: {k} is {tuple(src.shape)} in the source, {tuple(v.shape)} here")
            v.copy_(src)


def load_model(cfg: dict) -> Separator:
    if cfg["model"].get("kind") == "fused":  # v8: two trained runs, no weights of its own
        from .fusion import load_fused

        return load_fused(cfg)
    if cfg["model"].get("kind") == "fused_head" and int(cfg["train"].get("steps", 1)) == 0:
        return make_model(cfg).eval()  # v8S: the head's step-0 rule, no run of its own
    ck = torch.load(run_dir(cfg) / "model.pt", map_location="cpu", weights_only=False)
    model = make_model(ck["config"])
    model.load_state_dict({k: v.cpu() for k, v in ck["model"].items()})
    return model.eval()
