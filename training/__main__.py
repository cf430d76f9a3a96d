"""`python -m training synth|train|export|evaluate --config training/configs/<name>.toml`."""

from __future__ import annotations

import argparse
import json
import sys
import time


def cmd_synth(cfg: dict, args) -> int:
    from .config import data_dir, synth_config
    from .synth.scene import synth_split

    sc = synth_config(cfg)
    out = data_dir(cfg)
    splits = args.splits.split(",") if args.splits else ["train", "val", "test"]
    t0 = time.time()
    infos = {}
    for split in splits:
        print(f"[synth] {split} -> {out / split}", flush=True)
        infos[split] = synth_split(sc, split, out, log=lambda m: print(m, flush=True))
    total = sum(i["scenes"] for i in infos.values())
    print(f"[synth] {total} scenes in {time.time() - t0:.1f} s", flush=True)
    return 0


def cmd_train(cfg: dict, args) -> int:
    from .train import train

    train(cfg)
    return 0


def cmd_export(cfg: dict, args) -> int:
    from .export import export

    export(cfg)
    return 0


def cmd_evaluate(cfg: dict, args) -> int:
    from .evaluate import evaluate

    print(json.dumps(evaluate(cfg, split=args.split), indent=1))
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m training")
    p.add_argument("command", choices=["synth", "train", "export", "evaluate"])
    p.add_argument("--config", required=True)
    p.add_argument("--splits", help="synth: comma-separated subset of train,val,test")
    p.add_argument("--split", default="val", help="evaluate: val or test")
    p.add_argument("--kind", choices=["av", "audio"],
                   help="train/export/evaluate: override model.kind; the run goes to "
                        "training/runs/<name>-<kind> (same data)")
    args = p.parse_args(argv)
    from .config import load

    cfg = load(args.config)
    if args.kind and args.kind != cfg["model"].get("kind", "av"):
        cfg["model"]["kind"] = args.kind
        cfg["run_name"] = f"{cfg['name']}-{args.kind}"
    return {"synth": cmd_synth, "train": cmd_train, "export": cmd_export,
            "evaluate": cmd_evaluate}[args.command](cfg, args)


if __name__ == "__main__":
    sys.exit(main())
