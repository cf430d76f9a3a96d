#!/usr/bin/env bash
# One GPU lease (the `device` tool; 15 minutes of device time in all). Here, first:
#   bash scripts/gpu-pack.sh                                   # espeak-ng, its libraries, the faces -> .gpu/
#   python -m training soup --config training/configs/gpu-v12-start.toml [--kind audio]   # the start runs
# A call carries at most 64 MiB, so move the tracked ONNX models aside for the call (the device
# does not need them) and put them back after:
#   mkdir -p /tmp/onnx-aside && mv models/*.onnx /tmp/onnx-aside/
#   run(command="CONFIG=training/configs/gpu-v12.toml PROBE_DUALPATH=1 bash scripts/gpu-train.sh", timeout_s=600,
#       carry=[".gpu/espeak", ".gpu/lib", ".gpu/shared/data/faces",
#              "training/runs/gpu-v12-start/model.pt", "training/runs/gpu-v12-start-audio/model.pt"])
#   mv /tmp/onnx-aside/*.onnx models/
# On the device: synthesizes the config's splits (espeak-ng only) with all cores, then trains the
# AV model and the audio-only baseline side by side on the one GPU: for `train.steps` each (a
# config with train.minutes = 0; the baseline, cheaper, finishes first) or, with minutes > 0, for
# what is left of BUDGET_S (default 570 s) after synthesis. Both run under `timeout` and save every
# train.ckpt_every steps, so a late stop loses little. What comes back in $OUT: both checkpoints
# (model.pt, split into parts of 15 MiB: files come back at 16 MiB at most; `cat` joins them),
# the logs and histories, nvidia-smi samples. Export and evaluate them HERE (the pinned torch and
# ONNX), e.g.
#   mkdir -p training/runs/gpu-v12 training/runs/gpu-v12-audio
#   cat <files_at>/gpu-av.pt.part-* > training/runs/gpu-v12/model.pt
#   cat <files_at>/gpu-audio.pt.part-* > training/runs/gpu-v12-audio/model.pt
#   python -m training export --config training/configs/gpu-v12.toml --out /tmp/gpu.onnx
set -euo pipefail
OUT=${OUT:?"OUT: the device tool's output folder"}
cd "$(dirname "$0")/.."
t0=$(date +%s)
# PROBE_DUALPATH=1: keep 30 s at the end to time the v13 dual-path model's training steps on this
# GPU (scripts/gpu-probe-dualpath.py -> $OUT/probe-dualpath.log; MODELS.md "v13")
PROBE_S=0; [ "${PROBE_DUALPATH:-0}" = 1 ] && PROBE_S=30
T_END=$(( t0 + ${BUDGET_S:-570} - PROBE_S ))
E=$PWD/.gpu/espeak
export PATH=$E/usr/bin:$PATH
export LD_LIBRARY_PATH=$E/usr/lib/x86_64-linux-gnu:$PWD/.gpu/lib${LD_LIBRARY_PATH:+:$LD_LIBRARY_PATH}
export ESPEAK_DATA_PATH=$E/usr/lib/x86_64-linux-gnu AVSEPD_SHARED=$PWD/.gpu/shared PYTHONUNBUFFERED=1
PY=${PY:-python3}
CONFIG=${CONFIG:-training/configs/gpu.toml}
NAME=$($PY -c "from training.config import load; print(load('$CONFIG')['name'])")
say() { echo "[gpu-train +$(( $(date +%s) - t0 )) s] $*"; }
espeak-ng --version
nvidia-smi --query-gpu=name,memory.total --format=csv,noheader || true
$PY -c "import torch, numpy; print('torch', torch.__version__, 'cuda', torch.cuda.is_available(), 'numpy', numpy.__version__)"
say "synthesizing the config's splits with $(nproc --all) workers"
$PY -m training synth --config $CONFIG --workers "$(nproc --all)" > "$OUT/synth.log" 2>&1 \
  || { tail -n 20 "$OUT/synth.log"; exit 1; }
tail -n 2 "$OUT/synth.log"
RUNCFG=$CONFIG
if [ "$($PY -c "from training.config import load; print(float(load('$CONFIG')['train'].get('minutes', 0)) > 0)")" = True ]; then
  # the schedule's length: what is left, less ~90 s for loading the data, the first validation,
  # the timed warm-up steps, the periodic validations and the last save (a copy beside the
  # config, whose `base` is relative to its folder)
  left=$(( T_END - $(date +%s) ))
  RUNCFG=$(dirname "$CONFIG")/.lease-$(basename "$CONFIG")
  minutes=$($PY -c "print(round(max($left - 90, 60) / 60, 2))")
  sed "s/^minutes = .*/minutes = $minutes/" "$CONFIG" > "$RUNCFG"
  say "a time budget: $minutes minutes each"
fi
say "training the audio-only baseline and the AV model side by side, stop at +$(( T_END - t0 - 10 )) s"
(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > "$OUT/nvidia-smi.csv" 2>&1 &) || true
stop=$(( T_END - $(date +%s) - 10 ))
timeout -s TERM $stop $PY -m training train --config "$RUNCFG" --kind audio > "$OUT/train-gpu-audio.log" 2>&1 & ao=$!
timeout -s TERM $stop $PY -m training train --config "$RUNCFG" > "$OUT/train-gpu-av.log" 2>&1 & av=$!
rc=0
wait $ao || { r=$?; [ $r = 124 ] && say "audio-only run stopped by the deadline" || rc=$r; }
wait $av || { r=$?; [ $r = 124 ] && say "AV run stopped by the deadline" || rc=$r; }
if [ "$PROBE_S" -gt 0 ]; then
  say "timing the dual-path model's steps"
  PYTHONPATH=$PWD timeout 27 $PY scripts/gpu-probe-dualpath.py --batch 256 --steps 10 > "$OUT/probe-dualpath.log" 2>&1 \
    || say "the probe did not finish (what it printed is in probe-dualpath.log)"
fi
pkill -f "nvidia-smi --query-gpu" || true
tail -n 4 "$OUT/train-gpu-audio.log" "$OUT/train-gpu-av.log"
R=training/runs
[ -f $R/$NAME/model.pt ] && split -b 15M -d $R/$NAME/model.pt "$OUT/gpu-av.pt.part-"
[ -f $R/$NAME-audio/model.pt ] && split -b 15M -d $R/$NAME-audio/model.pt "$OUT/gpu-audio.pt.part-"
sha256sum $R/$NAME/model.pt $R/$NAME-audio/model.pt || true
mv "$OUT"/train-gpu-*.log "$OUT"/synth.log "$OUT"/nvidia-smi.csv $R/ 2>/dev/null || true
tar czf "$OUT/gpu-logs.tgz" $R/$NAME/log.txt $R/$NAME/history.json $R/$NAME-audio/log.txt \
  $R/$NAME-audio/history.json $R/train-gpu-*.log $R/synth.log $R/nvidia-smi.csv 2>/dev/null || true
say "done (exit $rc)"
exit $rc
