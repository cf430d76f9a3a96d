"""Training loop (PyTorch, CPU by default): `python -m training train --config ...`.

The pieces it runs: training/mixing.py (the batches: fixed examples or dynamic mixing),
training/losses.py (SI-SDR, PIT and the auxiliary terms), training/model_setup.py (the model and
its starting weights), training/roi_augment.py and training/crop_geometry.py (what a camera and a
live detector do to the mouth crops).

Curriculum (train.curriculum_steps): before that step only scenes with at most 2 talking faces
are drawn. Checkpoint (model, optimiser, RNG, step, history) every train.ckpt_every steps to
training/runs/<name>/ckpt.pt; a rerun resumes from it. Log: training/runs/<name>/log.txt.
"""

from __future__ import annotations

import json
import math
import time

import numpy as np
import torch

from .config import data_dir, run_dir
from .crop_geometry import geometry_ranges
from .device_mix import DeviceUnitPool
from .losses import batch_loss, si_sdr_t
from .mixing import Prefetcher, UnitPool, batch_tensors, examples, load_training_data, mixed_batch
from .model import Separator, count_params, flops_per_second
from .model_setup import check_init_file, init_weights, load_teacher, make_model
from .roi_augment import augment_geometry, augment_rois
from .synth.scene import load_shards
from .torch_signal import final_part


def lr_at(step: int, t: dict) -> float:
    base, warm, steps = float(t.get("lr", 1e-3)), int(t.get("warmup", 200)), int(t.get("steps", 300))
    floor = float(t.get("lr_min_frac", 0.05))
    if step < warm:
        return base * (step + 1) / warm
    p = min((step - warm) / max(steps - warm, 1), 1.0)
    return base * (floor + (1 - floor) * 0.5 * (1 + math.cos(math.pi * p)))


def val_metrics(model: Separator, val: dict, vex: np.ndarray, silent_weight: float,
                bs: int = 16, device: str = "cpu") -> dict:
    """Mean loss and mean SI-SDRi (dB) of talking targets over the validation examples, overall and
    on 2-talker scenes. SI-SDRi here uses zero-mean SI-SDR of the mixture as the reference."""
    model.eval()
    ls, imps, imps2 = [], [], []
    with torch.no_grad():
        for i in range(0, len(vex), bs):
            ex = vex[i:i + bs]
            mix, tgt, rois, talking = batch_tensors(val, ex, device)
            l_, sdr = batch_loss(model, mix, tgt, rois, talking, silent_weight)
            ls.append(float(l_) * len(ex))
            if model.kind == "av":
                base = si_sdr_t(final_part(mix), final_part(tgt))
                imp = (sdr - base)[talking]
                two = torch.from_numpy(val["speaking"][ex[:, 0]].sum(1) == 2).to(device)[talking]
            else:
                m_f, t_f = final_part(mix), final_part(tgt)
                base = 0.5 * (si_sdr_t(m_f, t_f[:, 0]) + si_sdr_t(m_f, t_f[:, 1]))
                imp = sdr - base
                two = torch.from_numpy(val["speaking"][ex[:, 0]].sum(1) == 2).to(device)
            imps += imp.tolist()
            imps2 += imp[two].tolist()
    model.train()
    return {"loss": sum(ls) / len(vex), "si_sdri": float(np.mean(imps)) if imps else float("nan"),
            "si_sdri_2spk": float(np.mean(imps2)) if imps2 else float("nan")}


def train(cfg: dict) -> dict:
    t = cfg["train"]
    torch.set_num_threads(int(t.get("threads", 1)))
    torch.manual_seed(cfg["seed"])
    rng = np.random.default_rng(cfg["seed"])
    out = run_dir(cfg)
    out.mkdir(parents=True, exist_ok=True)
    logf = (out / "log.txt").open("a")

    def log(msg: str) -> None:
        print(msg, flush=True)
        logf.write(msg + "\n")
        logf.flush()

    if not (out / "ckpt.pt").is_file():  # a fresh run: a bad starting file fails now, not after the data
        check_init_file(cfg)
    data = load_training_data(cfg)
    val = load_shards(data_dir(cfg) / "val")
    device = t.get("device", "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        device = "cpu"
    if device == "cuda":
        torch.backends.cuda.matmul.allow_tf32 = torch.backends.cudnn.allow_tf32 = True
        torch.backends.cudnn.benchmark = True  # every batch has the same shapes
    model = make_model(cfg).to(device)
    kind = model.kind
    loss = t.get("loss", "sisdr")
    if loss != "sisdr":
        raise ValueError(f"train.loss = {loss!r}: only \"sisdr\" is supported")
    silent_weight = float(t.get("silent_weight", 0.3))
    aux_weight = float(t.get("aux_weight", 0.0))
    pit_weight = float(t.get("pit_weight", 0.0))
    teacher, distill_weight = load_teacher(cfg, kind, device)
    warp = t.get("voice_warp")
    if warp is not None and not t.get("dynamic_mix", False):
        raise ValueError("train.voice_warp needs train.dynamic_mix = true")
    units = (UnitPool(data, cfg.get("synth", {}), tuple(float(x) for x in warp) if warp else None, cfg["seed"])
             if t.get("dynamic_mix", False) else None)
    # train.mix_on_device: the same dynamic mixing as tensor ops on the training device (a GPU
    # outruns the numpy loader processes), training/device_mix.py
    dev_units = DeviceUnitPool(units, device) if units and t.get("mix_on_device") else None
    mix_w = t.get("mix_talkers", [1.0, 3.0, 1.0])
    roi_aug = bool(t.get("roi_augment", False))  # training/roi_augment.py
    roi_low_res = bool(t.get("roi_low_res", True))  # (exp-face trained without it)
    roi_geometry = bool(t.get("roi_geometry", False))  # training/crop_geometry.py (v14)
    geo_ranges = geometry_ranges(t.get("roi_geometry_ranges"))  # v14's unless the config widens them (v15)
    p_silent = float(t.get("p_silent_target", 0.15))
    ex_all = examples(data, kind)
    ex_cur = examples(data, kind, max_talkers=2)
    vex = examples(val, kind)[: int(t.get("val_examples", 10 ** 9))]
    opt = torch.optim.Adam(model.parameters(), lr=float(t.get("lr", 1e-3)))
    steps, bs, every = int(t.get("steps", 300)), int(t.get("batch_size", 16)), int(t.get("log_every", 20))
    ckpt_every = int(t.get("ckpt_every", every))
    cur_steps = int(t.get("curriculum_steps", 0))
    history = {"step": [], "train_loss": [], "val_loss": [], "val_si_sdri": [], "val_si_sdri_2spk": [],
               "seconds": []}
    # train.minutes: a time budget instead of a step count (a GPU lease): after `probe` steps the
    # step count is fixed from the measured speed, and the schedule follows it
    # (timed over steps warm+1 .. warm+probe: the first steps pay for CUDA's start-up)
    minutes = float(t.get("minutes", 0.0))
    warm, probe = 10, 30
    start, elapsed0 = 0, 0.0
    ck_path = out / "ckpt.pt"
    if ck_path.is_file():
        ck = torch.load(ck_path, map_location=device, weights_only=False)
        model.load_state_dict(ck["model"])
        opt.load_state_dict(ck["opt"])
        rng.bit_generator.state = ck["rng"]
        torch.set_rng_state(ck["torch_rng"].cpu())
        start, history, elapsed0 = ck["step"], ck["history"], ck.get("seconds", 0.0)
        if minutes and "steps" in ck:
            steps = t["steps"] = ck["steps"]
        log(f"[train] resumed from {ck_path} at step {start}")
    log(f"[train] {kind} model: {count_params(model)} params, "
        f"{(model.flops() if hasattr(model, 'flops') else flops_per_second(model)) / 1e6:.0f} MFLOP per s of audio; {len(ex_all)} train examples "
        f"({len(ex_cur)} with <= 2 talkers, {len(data['mixture'])} scenes), {len(vex)} val examples; "
        f"loss {loss}, lr {t.get('lr', 1e-3)}, batch {bs}, steps {steps}, curriculum {cur_steps}, "
        f"dynamic mixing {'on: %d talking + %d silent units' % (len(units.talking), len(units.silent)) if units else 'off'}"
        f"{' (mixed on the device)' if dev_units is not None else ''}, "
        f"aux weight {aux_weight}{', ROI camera augmentation' if roi_aug else ''}{', crop geometry augmentation %s' % geo_ranges if roi_geometry else ''}"
        f"{', voice warp %s' % list(warp) if warp else ''}"
        f"{', distilled from %s (weight %g)' % (t['distill_from'], distill_weight) if teacher is not None else ''}")

    def save(step: int, seconds: float) -> None:
        tmp = out / "ckpt.pt.tmp"
        torch.save({"model": model.state_dict(), "opt": opt.state_dict(), "rng": rng.bit_generator.state,
                    "torch_rng": torch.get_rng_state(), "step": step, "history": history,
                    "seconds": seconds, "config": cfg, "steps": steps}, tmp)
        tmp.replace(ck_path)
        # model.pt too is replaced atomically: another run may start from it while this one trains
        # (on the CPU: a GPU run's weights load anywhere, with or without map_location)
        cpu_sd = {k: v.detach().cpu() for k, v in model.state_dict().items()}
        torch.save({"model": cpu_sd, "config": cfg, "step": step}, out / "model.pt.tmp")
        (out / "model.pt.tmp").replace(out / "model.pt")
        (out / "history.json").write_text(json.dumps(history, indent=1))

    if start == 0:
        init_weights(model, t, cfg, device, log)
        v = val_metrics(model, val, vex, silent_weight, device=device)
        log(f"[train] step 0 val_loss {v['loss']:.4f} val_si_sdri {v['si_sdri']:.2f} dB "
            f"(2 talkers {v['si_sdri_2spk']:.2f} dB)")
        for k, x in (("step", 0), ("train_loss", float("nan")), ("val_loss", v["loss"]),
                     ("val_si_sdri", v["si_sdri"]), ("val_si_sdri_2spk", v["si_sdri_2spk"]), ("seconds", 0.0)):
            history[k].append(x)
    t0, run = time.time() - elapsed0, []
    t_last, step_last = time.time(), start  # the ETA's yardstick: steps since the last log
    # between validations (500 steps: 15-25 min on a CPU) a progress line on stdout once every
    # train.progress_seconds, not in log.txt
    beat_every = float(t.get("progress_seconds", 60.0))
    t_beat, step_beat = time.time(), start
    workers = int(t.get("loader_workers", 0))
    prefetch = (Prefetcher(workers, (units, cfg["seed"], bs, kind, mix_w, p_silent, cur_steps), start + 1)
                if workers > 0 and units is not None and dev_units is None else None)
    gen = None
    if dev_units is not None:  # a resumed run continues with a generator seeded by its step
        gen = torch.Generator(device).manual_seed(int(cfg["seed"]) * 1_000_003 + start)
    timed = bool(minutes) and start < warm + probe  # a time budget whose step count is not fixed yet
    step, t_probe, t_begin = start, time.time(), time.time()
    while step < steps:
        step += 1
        if timed and step == start + warm + 1:
            t_probe = time.time()
        if timed and step == start + warm + probe + 1:
            per_step = (time.time() - t_probe) / probe
            left = minutes * 60 - (time.time() - t_begin)
            steps = t["steps"] = max(step, step + int(left / per_step))
            log(f"[train] {per_step * 1000:.0f} ms per step: {steps} steps fit in {minutes:g} minutes")
        pool = ex_cur if step <= cur_steps and len(ex_cur) else ex_all
        for g in opt.param_groups:
            g["lr"] = lr_at(step - 1, t)
        if dev_units is not None:
            mix, tgt, rois, talking = dev_units.batch(gen, bs, kind, mix_w, p_silent,
                                                      max_talkers=2 if step <= cur_steps else None)
        elif prefetch is not None:
            mix, tgt, rois, talking = (None if v is None else torch.from_numpy(v).to(device)
                                       for v in prefetch.get(step))
        elif units is not None:
            mix, tgt, rois, talking = (None if v is None else v.to(device) for v in mixed_batch(
                units, rng, step, bs, kind, mix_w, p_silent, cur_steps))
        else:
            mix, tgt, rois, talking = batch_tensors(data, pool[rng.integers(0, len(pool), bs)], device)
        if roi_geometry and rois is not None:  # the crop placed off per sequence (before the camera)
            rois = augment_geometry(rois, torch.Generator(rois.device).manual_seed(int(cfg["seed"]) * 6007 + step),
                                    geo_ranges)
        if roi_aug and rois is not None:  # a new camera per sequence, seeded by the step (resumable)
            rois = augment_rois(rois, torch.Generator(rois.device).manual_seed(int(cfg["seed"]) * 7919 + step),
                                low_res=roi_low_res)
        l_, _ = batch_loss(model, mix, tgt, rois, talking, silent_weight, aux_weight, pit_weight,
                           teacher, distill_weight)
        opt.zero_grad()
        l_.backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), float(t.get("clip", 5.0)))
        opt.step()
        run.append(l_.item())
        if beat_every > 0 and time.time() - t_beat >= beat_every and step % every:
            per = (time.time() - t_beat) / (step - step_beat)
            print(f"[train] step {step}/{steps}: {per:.2f} s per step, loss {np.mean(run):.3f} over the last "
                  f"{len(run)}, ~{per * (steps - step) / 60:.0f} min left", flush=True)
            t_beat, step_beat = time.time(), step
        if step % every == 0 or step == steps:
            v = val_metrics(model, val, vex, silent_weight, device=device)
            tl = float(np.mean(run))
            run = []
            el = time.time() - t0
            for k, x in (("step", step), ("train_loss", tl), ("val_loss", v["loss"]),
                         ("val_si_sdri", v["si_sdri"]), ("val_si_sdri_2spk", v["si_sdri_2spk"]), ("seconds", el)):
                history[k].append(x)
            eta = (time.time() - t_last) / max(step - step_last, 1) * (steps - step)
            t_last, step_last = time.time(), step
            log(f"[train] step {step}/{steps} lr {lr_at(step - 1, t):.2e} train_loss {tl:.4f} "
                f"val_loss {v['loss']:.4f} val_si_sdri {v['si_sdri']:.2f} dB "
                f"(2 talkers {v['si_sdri_2spk']:.2f} dB) ({el:.0f} s, ~{eta / 60:.0f} min left)")
        if step % ckpt_every == 0 or step == steps:
            save(step, time.time() - t0)
    if prefetch is not None:
        prefetch.close()
    if start >= steps:
        log(f"[train] already at step {start} >= {steps}")
    log(f"[train] saved {out / 'model.pt'}")
    return history
