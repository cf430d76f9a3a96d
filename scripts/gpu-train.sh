#!/usr/bin/env bash
# One GPU lease (the `device` tool; 15 minutes of device time in all), after `bash scripts/gpu-pack.sh`
# here. A call carries at most 64 MiB (the tracked tree, ~41 MB, included), so move the tracked ONNX
# models aside for the call (the device does not need them) and put them back after:
#   mkdir -p /tmp/onnx-aside && mv models/*.onnx /tmp/onnx-aside/
#   run(command="bash scripts/gpu-train.sh", timeout_s=600,
#       carry=[".gpu/espeak", ".gpu/lib", ".gpu/shared",
#              "training/runs/cpu-cont/model.pt", "training/runs/cpu-cont-audio/model.pt"])
#   mv /tmp/onnx-aside/*.onnx models/
# On the device: synthesizes the espeak-ng training data with all cores, then continues the CPU
# runs (training/configs/gpu.toml) for the AV model and the audio-only baseline side by side on
# the one GPU, for what is left of BUDGET_S (default 570 s) after synthesis: the trainings run
# under `timeout`, and both save every train.ckpt_every steps, so a late stop loses little. What
# comes back in $OUT: both checkpoints (model.pt), the logs, nvidia-smi samples and a tarball of
# the runs' logs and histories. Export and evaluate them HERE (the pinned torch and ONNX), e.g.
#   mkdir -p training/runs/gpu training/runs/gpu-audio
#   cp <files_at>/gpu-av.pt training/runs/gpu/model.pt; cp <files_at>/gpu-audio.pt training/runs/gpu-audio/model.pt
#   python -m training export --config training/configs/gpu.toml --out /tmp/gpu.onnx   (then make eval-run)
set -euo pipefail
OUT=${OUT:?"OUT: the device tool's output folder"}
cd "$(dirname "$0")/.."
t0=$(date +%s)
T_END=$(( t0 + ${BUDGET_S:-570} ))
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
say "synthesizing (train, val) with $(nproc --all) workers"
$PY -m training synth --config $CONFIG --splits train,val --workers "$(nproc --all)" > "$OUT/synth.log" 2>&1 \
  || { tail -n 20 "$OUT/synth.log"; exit 1; }
tail -n 2 "$OUT/synth.log"
# the schedule's length: what is left, less ~90 s for loading the data, the first validation, the
# timed warm-up steps, the periodic validations and the last save
left=$(( T_END - $(date +%s) ))
RUNCFG=$(mktemp --suffix=.toml)
minutes=$($PY -c "print(round(max($left - 90, 60) / 60, 2))")
sed "s/^minutes = .*/minutes = $minutes/" "$CONFIG" > "$RUNCFG"
say "training the audio-only baseline and the AV model side by side: $minutes minutes each, stop at +$(( T_END - t0 - 10 )) s"
(nvidia-smi --query-gpu=utilization.gpu,memory.used --format=csv -l 20 > "$OUT/nvidia-smi.csv" 2>&1 &) || true
stop=$(( T_END - $(date +%s) - 10 ))
timeout -s TERM $stop $PY -m training train --config "$RUNCFG" --kind audio > "$OUT/train-gpu-audio.log" 2>&1 & ao=$!
timeout -s TERM $stop $PY -m training train --config "$RUNCFG" > "$OUT/train-gpu-av.log" 2>&1 & av=$!
rc=0
wait $ao || { r=$?; [ $r = 124 ] && say "audio-only run stopped by the deadline" || rc=$r; }
wait $av || { r=$?; [ $r = 124 ] && say "AV run stopped by the deadline" || rc=$r; }
pkill -f "nvidia-smi --query-gpu" || true
tail -n 4 "$OUT/train-gpu-audio.log" "$OUT/train-gpu-av.log"
R=training/runs
cp $R/$NAME/model.pt "$OUT/gpu-av.pt" 2>/dev/null || true
cp $R/$NAME-audio/model.pt "$OUT/gpu-audio.pt" 2>/dev/null || true
tar czf "$OUT/gpu-logs.tgz" $R/$NAME/log.txt $R/$NAME/history.json $R/$NAME-audio/log.txt \
  $R/$NAME-audio/history.json 2>/dev/null || true
say "done (exit $rc)"
exit $rc
