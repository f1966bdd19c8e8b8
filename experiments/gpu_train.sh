#!/usr/bin/env bash
# One device call, end to end: throughput probe of candidate sizes, then training within the rest of the budget.
#
#   bash experiments/gpu_train.sh OUT_DIR [BUDGET_S] [gpu_train.py options...]
#
# BUDGET_S (default 540) is the wall clock of the whole script, probe and packing included: give the device
# call a timeout about 40 s longer. OUT_DIR receives summary.json and runs.tar.partNN (at most 15 MiB each; see
# experiments/gpu_train.py). Examples:
#   bash experiments/gpu_train.sh "$OUT" 540                                  # paper set, best size (H100)
#   bash experiments/gpu_train.sh "$OUT" 540 --mode family                    # four sizes side by side
#   bash experiments/gpu_train.sh /tmp/dry 20 --plan experiments/configs/gpu_tiny.json --device cpu --probe-s 2
# Then, in the same call (issue 25, step 3; ~90 s): the GPU inference paths against the CPU reference, e.g.
#   python experiments/gpu_inference.py --out "$OUT/gpu_inference.json" --model <the trained run's final/> --big-params 1e9
# A machine without this project's dependencies (no internet there): copy their wheels along (e.g. a .whl/ folder
# made here with `pip download --no-deps -d .whl transformer-lens ...`), then before this script:
#   pip install --no-index --no-deps --target /tmp/site .whl/*.whl && export PYTHONPATH=/tmp/site
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
