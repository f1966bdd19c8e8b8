#!/usr/bin/env bash
# Probe the throughput of candidate sizes, then train within the rest of the budget. On the device machine, run it
# through experiments/device_run.sh (carried wheels, a preflight, this script with its work folder outside OUT, the
# GPU inference check, and a check that OUT fits what a device call returns).
#
#   bash experiments/gpu_train.sh OUT_DIR [BUDGET_S] [gpu_train.py options...]
#
# BUDGET_S (default 540) is the wall clock of the whole script, probe and packing included. OUT_DIR receives
# summary.json and runs.tar.partNN (at most 15 MiB each; see experiments/gpu_train.py). Examples:
#   bash experiments/gpu_train.sh "$OUT" 540 --work /tmp/gpu_work                   # paper set, best size (H100)
#   bash experiments/gpu_train.sh "$OUT" 540 --work /tmp/gpu_work --mode family     # four sizes side by side
#   bash experiments/gpu_train.sh /tmp/dry 20 --plan experiments/configs/gpu_tiny.json --device cpu --probe-s 2
set -euo pipefail
out=${1:?usage: gpu_train.sh OUT_DIR [BUDGET_S] [options]}
budget=${2:-540}
shift $(( $# < 2 ? $# : 2 ))
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
mkdir -p "$out"
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
cd "$repo"
{ command -v nvidia-smi >/dev/null && nvidia-smi --query-gpu=name,memory.total --format=csv,noheader; } || true
"$python" experiments/gpu_train.py --out "$out" --budget-s "$budget" "$@" 2>&1 | tee "$out/console.log"
