"""Evaluation of an exported separator on synthesized scenes, through ONNX Runtime, streamed chunk
by chunk as the daemon runs it: `python -m training evaluate --config ... --split test
--model models/separator.onnx` (no PyTorch needed).

Definitions (training/metrics.py; signals are the whole clip after the STFT priming is removed):
  SI-SDR(y, s) = 10 log10(|a s|^2 / |a s - y|^2), a = <y, s> / |s|^2, after removing the means;
  SI-SDRi = SI-SDR(estimate, source) - SI-SDR(mixture, source);
  SDR(y, s) = 10 log10(|s|^2 / |s - y|^2) (no scale invariance), SDRi likewise.
AV model: one estimate per visible face, scored against that face's own source; face->voice
assignment accuracy per scene with >= 2 talkers (metrics.assignment_accuracy: the estimate of a
face must be closer, by SI-SDR, to its own voice than to any other talking voice); for
visible-but-silent faces the output-to-mixture energy ratio in dB (lower is better). To show what
assignment errors cost, SI-SDRi is also averaged separately over the faces assigned correctly
(`si_sdri_assigned`) and wrongly (`si_sdri_misassigned`).
Audio-only baseline (2 outputs, no face input): each talking source is scored against the output
that the BEST assignment of outputs to sources gives it (an oracle permutation, which the daemon
could not know: the baseline's figures are an upper bound for it). In 3-talker scenes the third
voice gets no output and is scored with the mixture itself (SI-SDRi 0 dB).
Scores cover the final part of each clip: all but its last 352 samples (training/torch_signal.py
`final_part`: a stream never outputs those before the next frames arrive).
Results are broken down by the number of talkers (1 = speech + noise only) and, in 2-talker
scenes, by the scene's speech-to-noise ratio (the SNR plot) and by face (`si_sdri_2spk_by_face`:
the baseline never sees the face, so its column shows how hard that face's voices were).
"""

from __future__ import annotations

import itertools
import json
from pathlib import Path

import numpy as np

from . import metrics as M
from .camera_shift import shift_cameras
from .crop_geometry import geometry_shift
from .config import ROOT, data_dir
from .onnx_run import PAD, OnnxSeparator
from .synth.scene import load_shards

EVAL_DIR = ROOT / "models" / "eval"
SNR_BINS = [(-5, 0), (0, 5), (5, 10), (10, 15), (15, 20)]


def _scores(y, src, x) -> tuple[float, float, float]:
    return (float(M.si_sdr(y, src, zero_mean=True)), float(M.si_sdri(y, src, x, zero_mean=True)),
            float(M.sdri(y, src, x)))


def _face_name(data: dict, s: int, k: int) -> str:
    """The face id of scene s, slot k (scenes straight from make_scene carry only the index)."""
    i = int(data["face_index"][s, k])
    return str(data["face_ids"][i]) if "face_ids" in data else f"face-{i}"


def _snr_bin(snr: float) -> str:
    for lo, hi in SNR_BINS:
        if lo <= snr < hi or (hi == SNR_BINS[-1][1] and snr == hi):
            return f"{lo}..{hi}"
    return "other"


def evaluate(cfg: dict, split: str, model_path: str | Path, out_dir: Path = EVAL_DIR, threads: int = 1,
             camera: str | None = None) -> dict:
    """Score a model on one synthesized split; writes models/eval/<model>-<split>.json.
    camera "shift": the faces through other cameras (training/camera_shift.py); "geometry": their
    crops a few pixels off, scaled or turned as a detector's landmark error does
    (training/crop_geometry.py). Both are written to models/eval/camera/ (not part of the results
    table), the second as <model>-<split>-geometry.json."""
    model = OnnxSeparator(model_path, threads=threads)
    data = scenes(cfg, split, camera)
    suffix = ""
    if camera is not None:
        out_dir = out_dir / "camera"
        suffix = "" if camera == "shift" else "-geometry"
    summary = {"split": split, "scenes": int(len(data["mixture"])), "model": str(Path(model_path)),
               "model_kind": model.kind, "config": cfg["name"], "camera": camera, **score(model, data)}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{Path(model_path).stem}-{split}{suffix}.json").write_text(json.dumps(summary, indent=1) + "\n")
    return summary


def scenes(cfg: dict, split: str, camera: str | None = None) -> dict:
    """A synthesized split's scenes, their faces through other cameras ("shift") or their crops
    placed off ("geometry") when `camera` says so."""
    data = load_shards(data_dir(cfg) / split)
    if camera is not None:
        if camera not in ("shift", "geometry"):
            raise ValueError(f"--camera {camera!r}: \"shift\" or \"geometry\"")
        data["rois"] = shift_cameras(data["rois"]) if camera == "shift" else geometry_shift(data["rois"])
    return data


def score(model: OnnxSeparator, data: dict) -> dict:
    """Scores of scenes in the shard layout (mixture, sources, rois, present, speaking, snr_db):
    {"by_talkers": {"2spk": {...}, "3spk": {...}, "all": {...}}, "si_sdri_2spk_by_snr": {...}}."""
    mixtures = data["mixture"].astype(np.float64)
    groups: dict[str, dict[str, list]] = {}

    def add(group: str, key: str, v: float) -> None:
        for g in (group, "all"):
            groups.setdefault(g, {}).setdefault(key, []).append(v)

    snr_curve: dict[str, list[float]] = {}
    by_face: dict[str, dict[str, list]] = {}  # 2-talker scenes: which faces the model reads well
    n_final = mixtures.shape[1] - PAD
    if model.kind == "av":
        rows = np.argwhere(data["present"])  # (scene, slot)
        ests_rows = model.separate(mixtures[rows[:, 0]], data["rois"][rows[:, 0], rows[:, 1]])
        ests = np.zeros(data["sources"].shape, np.float64)
        ests[rows[:, 0], rows[:, 1]] = ests_rows
        ests = ests[..., :n_final]
    else:
        outs = model.separate(mixtures)[..., :n_final]
    mixtures, sources = mixtures[:, :n_final], data["sources"][..., :n_final]
    for s in range(len(mixtures)):
        talking = data["speaking"][s]
        x = mixtures[s]
        g = f"{int(talking.sum())}spk"
        add(g, "scenes", 1.0)
        if model.kind == "av":
            scored, slots = [], []
            # with >= 2 talkers: which faces got their own voice, and what the others cost
            right = M.assigned_correctly(ests[s], sources[s], talking) if talking.sum() >= 2 else None
            for k in np.nonzero(data["present"][s])[0]:
                if talking[k]:
                    scored.append(_scores(ests[s, k], sources[s, k], x))
                    slots.append(k)
                    if right is not None:
                        add(g, "si_sdri_assigned" if right[k] else "si_sdri_misassigned", scored[-1][1])
                else:
                    add(g, "silent_db", float(10 * np.log10((np.sum(ests[s, k] ** 2) + 1e-12) / (np.sum(x ** 2) + 1e-12))))
            if right is not None:
                add(g, "assign", float(right[talking].mean()))
        else:
            slots = list(np.nonzero(talking)[0])
            srcs = [sources[s, k] for k in slots]
            best, best_sum = None, -np.inf
            for perm in itertools.permutations(range(max(outs.shape[1], len(srcs))), len(srcs)):
                sc = [(_scores(outs[s, o], src, x) if o < outs.shape[1] else _scores(x, src, x))
                      for o, src in zip(perm, srcs)]
                tot = sum(c[0] for c in sc)
                if tot > best_sum:
                    best, best_sum = sc, tot
            scored = best
        for k, sc in zip(slots, scored):
            for key, v in zip(("si_sdr", "si_sdri", "sdri"), sc):
                add(g, key, v)
            if talking.sum() == 2:
                snr_curve.setdefault(_snr_bin(float(data["snr_db"][s])), []).append(sc[1])
                face = by_face.setdefault(_face_name(data, s, k), {})
                face.setdefault("si_sdri", []).append(sc[1])
                if model.kind == "av":
                    face.setdefault("assign", []).append(float(right[k]))
    out = {"by_talkers": {},
           "si_sdri_2spk_by_snr": {b: {"mean": float(np.mean(v)), "n": len(v)}
                                   for b, v in sorted(snr_curve.items(), key=lambda kv: float(kv[0].split("..")[0]))},
           "si_sdri_2spk_by_face": {f: {"n": len(v["si_sdri"]), **{k: float(np.mean(x)) for k, x in v.items()}}
                                    for f, v in sorted(by_face.items())}}
    for grp in sorted(groups):
        d = {k: (float(np.mean(v)) if k != "scenes" else int(len(v))) for k, v in groups[grp].items()}
        d["talking_slots"] = len(groups[grp].get("si_sdr", []))
        out["by_talkers"][grp] = d
    return out
