"""Keep copies of a training run's model at given steps, while it trains:
    python scripts/snapshot-run.py training/runs/exp-dp 2000 3800
Each copy goes to <run>-s<step>/model.pt (a run folder of its own, so `init_from` and `export`
can name it). A run saves model.pt every `ckpt_every` steps; this polls it and copies the file
whose step is one of the asked ones. Why a poller: a run that is already training cannot be told
to keep snapshots, and its checkpoint is overwritten."""

from __future__ import annotations

import shutil
import sys
import time
from pathlib import Path

import torch


def main() -> None:
    run, wanted = Path(sys.argv[1]), sorted(int(s) for s in sys.argv[2:])
    while wanted:
        try:
            step = torch.load(run / "model.pt", map_location="cpu", weights_only=False)["step"]
        except (OSError, RuntimeError, EOFError, KeyError):
            step = None  # being replaced: try again
        if step in wanted:
            # copy, then check that the copy holds that step (the file may have been replaced)
            dst = run.parent / f"{run.name}-s{step}"
            dst.mkdir(exist_ok=True)
            shutil.copy2(run / "model.pt", dst / "model.pt.tmp")
            if torch.load(dst / "model.pt.tmp", map_location="cpu", weights_only=False)["step"] == step:
                (dst / "model.pt.tmp").replace(dst / "model.pt")
                print(f"[snapshot] {dst / 'model.pt'} (step {step})", flush=True)
                wanted.remove(step)
        elif step is not None and wanted and step > wanted[0]:
            sys.exit(f"[snapshot] {run}: already at step {step}, past {wanted[0]}")
        time.sleep(20)


if __name__ == "__main__":
    main()
