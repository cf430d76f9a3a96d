"""`python -m training synth|train|soup|export|evaluate|calibrate|speaking|postfilter|oracle|diagnose|fit|judge|report|bench --config training/configs/<name>.toml`."""

from __future__ import annotations

import argparse
import json
import sys
import time


def _print_json(compute, errors: tuple = ()) -> int:
    """Print what `compute()` returns as JSON; a missing file or a model that does not fit the
    contract (or any of `errors`) is an `error:` line and exit status 2, not a traceback."""
    from .onnx_run import ModelError

    try:
        result = compute()
    except (ModelError, FileNotFoundError, *errors) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=1))
    return 0


def cmd_synth(cfg: dict, args) -> int:
    from .config import data_dir, synth_config
    from .synth.scene import replacement_conflict, synth_split

    sc = synth_config(cfg)
    out = data_dir(cfg)
    splits = args.splits.split(",") if args.splits else list(cfg["synth"].get("scenes", {"train": 0}))
    # every split is checked before any is written: no half-replaced data set
    conflicts = [c for c in (replacement_conflict(sc, s, out) for s in splits) if c]
    if conflicts and not args.replace:
        for c in conflicts:
            print(f"error: {c}", file=sys.stderr)
        print(f"error: {args.config} would replace them. Give it its own data_name (training/data/<data_name>), "
              "or pass --replace to synthesize over them.", file=sys.stderr)
        return 2
    t0 = time.time()
    infos = {}
    for split in splits:
        print(f"[synth] {split} -> {out / split}", flush=True)
        infos[split] = synth_split(sc, split, out, log=lambda m: print(m, flush=True), workers=args.workers)
    total = sum(i["scenes"] for i in infos.values())
    print(f"[synth] {total} scenes in {time.time() - t0:.1f} s", flush=True)
    return 0


def cmd_train(cfg: dict, args) -> int:
    from .onnx_import import OnnxImportError
    from .train import train

    try:
        train(cfg)
    except (OnnxImportError, FileNotFoundError) as e:  # a missing or wrong input file, not a bug
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_soup(cfg: dict, args) -> int:
    from .onnx_import import OnnxImportError
    from .soup import soup

    try:
        soup(cfg)
    except (OnnxImportError, ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    return 0


def cmd_export(cfg: dict, args) -> int:
    from .export import export

    export(cfg, args.out)
    return 0


def cmd_evaluate(cfg: dict, args) -> int:
    from .evaluate import evaluate

    return _print_json(lambda: evaluate(cfg, split=args.split, model_path=args.model, camera=args.camera))


def cmd_calibrate(cfg: dict, args) -> int:
    from .calibrate import calibrate, write_gain

    def compute() -> dict:
        result = calibrate(cfg, split=args.split, model_path=args.model)
        if args.write:
            write_gain(args.model, result["output_gain_db"])
            print(f"wrote output_gain_db = {result['output_gain_db']:.2f} into {args.model}", file=sys.stderr)
        return result

    return _print_json(compute)


def cmd_speaking(cfg: dict, args) -> int:
    from .speaking import speaking_sweep

    return _print_json(lambda: speaking_sweep(cfg, split=args.split, model_path=args.model))


def cmd_postfilter(cfg: dict, args) -> int:
    from .calibrate import calibrate
    from .scene_postfilter import scene_postfilter

    def compute() -> dict:
        gain = calibrate(cfg, split="val", model_path=args.model)["output_gain_db"]
        return scene_postfilter(cfg, split=args.split, model_path=args.model, gain_db=gain)

    return _print_json(compute)


def cmd_oracle(cfg: dict, args) -> int:
    from .oracle import oracle

    return _print_json(lambda: oracle(cfg, split=args.split))


def cmd_diagnose(cfg: dict, args) -> int:
    from .diagnose import diagnose

    print(json.dumps(diagnose(cfg, split=args.split), indent=1))
    return 0


def cmd_fit(cfg: dict, args) -> int:
    from .fit_check import fit_check

    return _print_json(lambda: fit_check(cfg, model=args.model, shards=args.shards))


def cmd_judge(cfg: dict, args) -> int:
    from .judge import RuleError, format_verdict, judge
    from .onnx_run import ModelError

    if not args.rule or not args.candidate:
        print("error: judge needs --rule FILE and at least one --candidate MODEL.onnx", file=sys.stderr)
        return 2
    try:
        verdict = judge(cfg, args.rule, args.candidate)
    except (RuleError, ModelError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    print(format_verdict(verdict))
    if args.out:
        from pathlib import Path

        Path(args.out).write_text(json.dumps(verdict, indent=1) + "\n")
    return 0


def cmd_report(cfg: dict, args) -> int:
    from .report import report

    print(report())
    return 0


def cmd_bench(cfg: dict, args) -> int:
    from .bench import bench

    bench(args.model)
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training")
    p.add_argument("command", choices=["synth", "train", "soup", "export", "evaluate", "oracle", "diagnose", "fit", "judge",
                                       "report", "bench", "calibrate", "speaking", "postfilter"])
    p.add_argument("--config", default="training/configs/cpu.toml")
    p.add_argument("--splits", help="synth: comma-separated subset of the config's splits (default: all of synth.scenes)")
    p.add_argument("--replace", action="store_true",
                   help="synth: write over splits that were made with other settings")
    p.add_argument("--workers", type=int, default=1,
                   help="synth: processes (the data is the same whatever the number)")
    p.add_argument("--split", default="val", help="evaluate/calibrate/oracle/diagnose: val, test (held-out TTS voices), val_real or test_real (real voices)")
    p.add_argument("--model", default="models/separator.onnx",
                   help="evaluate/fit/bench: the exported ONNX model (default: the shipped one)")
    p.add_argument("--shards", type=int, default=1,
                   help="fit: shards of each split to score (250 scenes each)")
    p.add_argument("--camera", choices=["shift", "geometry"],
                   help="evaluate: the faces through other cameras (shift: training/camera_shift.py) or their "
                        "crops placed off by a detector's error (geometry: training/crop_geometry.py); for "
                        "model selection on val without the held-out faces; writes models/eval/camera/")
    p.add_argument("--out", help="export: where to write the ONNX file (default: the run directory); "
                                  "judge: also write the verdict and figures there as JSON")
    p.add_argument("--write", action="store_true",
                   help="calibrate: store the gain in the model's metadata (output_gain_db; changes its sha256)")
    p.add_argument("--rule", help="judge: a shipping rule file (training/rules/*.toml)")
    p.add_argument("--candidate", action="append",
                   help="judge: an exported candidate model (repeat for several)")
    p.add_argument("--threads", type=int,
                   help="train: CPU threads, overriding train.threads (a machine setting, not part of the "
                        "recipe: e.g. 2 for the AV run once its baseline twin has finished beside it)")
    p.add_argument("--kind", choices=["av", "audio"],
                   help="train/soup/export/evaluate: override model.kind; the run goes to "
                        "training/runs/<name>-<kind> (same data)")
    args = p.parse_args(argv)
    from .config import load

    try:
        cfg = load(args.config)
    except (ValueError, FileNotFoundError) as e:
        print(f"error: {e}", file=sys.stderr)
        return 2
    if args.threads is not None:
        if args.threads < 1:
            print(f"error: --threads {args.threads}: must be >= 1", file=sys.stderr)
            return 2
        cfg["train"]["threads"] = args.threads
    if args.kind and args.kind != cfg["model"].get("kind", "av"):
        cfg["model"]["kind"] = args.kind
        cfg["run_name"] = f"{cfg['name']}-{args.kind}"
    return {"synth": cmd_synth, "train": cmd_train, "soup": cmd_soup, "export": cmd_export, "evaluate": cmd_evaluate,
            "oracle": cmd_oracle, "diagnose": cmd_diagnose, "fit": cmd_fit, "judge": cmd_judge, "report": cmd_report,
            "bench": cmd_bench, "calibrate": cmd_calibrate,
            "speaking": cmd_speaking, "postfilter": cmd_postfilter}[args.command](cfg, args)


if __name__ == "__main__":
    sys.exit(main())
