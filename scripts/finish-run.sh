#!/usr/bin/env bash
# Turn a finished long training run into judged candidates, the steps models/MODELS.md lists at the
# end of a run: the run's end and its soup with the shipped pair, each kind (AV and the audio-only
# twin), exported with the PyTorch/ONNX parity check, then the shipping rule applied to the two AV
# candidates. Test splits are not touched: they are scored only after the verdict.
#
#   scripts/finish-run.sh RUN_CONFIG SOUP_CONFIG RULE
#   e.g. scripts/finish-run.sh training/configs/exp-long.toml training/configs/exp-long-soup.toml \
#          training/rules/v17.toml
#
# Writes training/runs/<soup name>/candidates/{<run>,<run>-audio,<soup>,<soup>-audio}.onnx and
# verdict.json there; refuses a run that has not reached its last step. Needs the training venv.
set -euo pipefail
cd "$(dirname "$0")/.."
[ $# -eq 3 ] || { sed -n '7,9p' "$0" >&2; exit 2; }
run_cfg=$1 soup_cfg=$2 rule=$3
for f in "$run_cfg" "$soup_cfg" "$rule"; do
    [ -f "$f" ] || { echo "error: $f: no such file" >&2; exit 2; }
done
py=${PYTHON:-.cache/venv-train/bin/python}
[ -x "$py" ] || { echo "error: $py: no training venv (make setup-train), or set PYTHON" >&2; exit 2; }
export OMP_NUM_THREADS=${OMP_NUM_THREADS:-2}

# name of a config's run, and whether its checkpoints reached the configured last step
read -r run soup < <("$py" - "$run_cfg" "$soup_cfg" <<'EOF'
import sys
from training.config import load
print(load(sys.argv[1])["name"], load(sys.argv[2])["name"])
EOF
)
for kind in av audio; do
    "$py" - "$run_cfg" "$kind" <<'EOF' || exit 2
import sys, torch
from training.config import load, run_dir
cfg = load(sys.argv[1])
if sys.argv[2] != cfg["model"].get("kind", "av"):
    cfg["model"]["kind"] = sys.argv[2]
    cfg["run_name"] = f"{cfg['name']}-{sys.argv[2]}"
ckpt = run_dir(cfg) / "ckpt.pt"
steps = cfg["train"]["steps"]
if not ckpt.exists():
    sys.exit(f"error: {ckpt}: no checkpoint; train it first")
step = torch.load(ckpt, map_location="cpu", weights_only=False)["step"]
if step < steps:
    sys.exit(f"error: {ckpt}: at step {step} of {steps}; resume it with "
             f"python -m training train --config {sys.argv[1]} --kind {sys.argv[2]}")
print(f"{ckpt}: step {step} of {steps}")
EOF
done

out=training/runs/$soup/candidates
mkdir -p "$out"
for kind in av audio; do
    suffix=$([ $kind = audio ] && echo -audio || true)
    "$py" -m training soup --config "$soup_cfg" --kind $kind
    "$py" -m training export --config "$run_cfg" --kind $kind --out "$out/$run$suffix.onnx"
    "$py" -m training export --config "$soup_cfg" --kind $kind --out "$out/$soup$suffix.onnx"
done
"$py" -m training judge --config training/configs/cpu.toml --rule "$rule" \
    --candidate "$out/$run.onnx" --candidate "$out/$soup.onnx" --out "$out/verdict.json"
echo "candidates and verdict in $out"
