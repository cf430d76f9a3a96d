#!/usr/bin/env bash
# One GPU lease (the `device` tool; 15 minutes of device time in all), after `bash scripts/gpu-pack.sh`
# here. From this machine's agent session:
#   run(command="bash scripts/gpu-train.sh", timeout_s=600,
#       carry=[".gpu", "training/runs/cpu-cont/model.pt", "training/runs/cpu-cont-audio/model.pt"])
# On the device: synthesizes the espeak-ng training data with all cores, then continues the CPU
# runs (training/configs/gpu.toml) for the AV model and the audio-only baseline side by side on
# the one GPU, each for train.minutes. What comes back in $OUT: both checkpoints (model.pt) and a
# tarball of logs and histories. Export and evaluate them HERE (the pinned torch and ONNX), e.g.
#   mkdir -p training/runs/gpu training/runs/gpu-audio
#   cp <files_at>/gpu-av.pt training/runs/gpu/model.pt; cp <files_at>/gpu-audio.pt training/runs/gpu-audio/model.pt
#   python -m training export --config training/configs/gpu.toml --out /tmp/gpu.onnx   (then make eval-run)
set -euo pipefail
OUT=${OUT:?"OUT: the device tool's output folder"}
cd "$(dirname "$0")/.."
t0=$(date +%s)
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
say "training the audio-only baseline and the AV model side by side"
$PY -m training train --config $CONFIG --kind audio > "$OUT/train-gpu-audio.log" 2>&1 & ao=$!
$PY -m training train --config $CONFIG > "$OUT/train-gpu-av.log" 2>&1 & av=$!
rc=0
wait $ao || rc=$?
wait $av || rc=$?
tail -n 3 "$OUT/train-gpu-audio.log" "$OUT/train-gpu-av.log"
R=training/runs
cp $R/$NAME/model.pt "$OUT/gpu-av.pt" 2>/dev/null || true
cp $R/$NAME-audio/model.pt "$OUT/gpu-audio.pt" 2>/dev/null || true
tar czf "$OUT/gpu-logs.tgz" $R/$NAME/log.txt $R/$NAME/history.json $R/$NAME-audio/log.txt \
  $R/$NAME-audio/history.json 2>/dev/null || true
say "done (exit $rc)"
exit $rc
