#!/usr/bin/env bash
# Issue 25's whole device call in one command: carried wheels, a preflight, training, the GPU inference check, and
# a last check that what OUT holds can come back (at most 8 files, 16 MiB each, 64 MiB together).
#
#   bash experiments/device_run.sh OUT_DIR [TOTAL_S] [gpu_train.py options...]
#
# TOTAL_S (default 540) is the wall clock of everything here: give the device call a timeout about 40 s longer.
# Of it, INFER_S (default 90) is kept for experiments/gpu_inference.py and the rest goes to experiments/gpu_train.sh.
# Before the call, here: `bash experiments/device_wheels.sh` (the wheels the device image lacks, into .whl/), then
#   run(command="bash experiments/device_run.sh $OUT 540", carry=[".whl"], timeout_s=580)
# With 15 minutes of device time and a minute or two of start-up, 540 leaves about 3 minutes: enough for a second,
# shorter call on the still-warm machine (it is given back after 30 s idle). Choose ~400 when a second full
# training run must fit.
# The wheels in WHEELS (default .whl) are installed into SITE (default /tmp/site) first, when there are any.
# OUT receives: env.json (versions, GPU), console.log, summary.json, runs.tar.partNN (4 at most, 15 MiB each),
# gpu_inference.json: 8 files at most. Training writes under WORK (default /tmp/gpu_work; never under OUT, whose
# deeper folders do not come back). A dry run on CPU (the suite runs one):
#   INFER_S=60 bash experiments/device_run.sh /tmp/dry 45 --plan experiments/configs/gpu_tiny.json --device cpu \
#       --probe-s 2 --startup-s 8 --pack-s 2
set -euo pipefail
out=${1:?usage: device_run.sh OUT_DIR [TOTAL_S] [gpu_train.py options...]}
total=${2:-540}
shift $(( $# < 2 ? $# : 2 ))
t0=$SECONDS
repo=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
python=${PYTHON:-python3}
infer_s=${INFER_S:-90}
work=${WORK:-/tmp/gpu_work}
device=cuda prev=""
for arg in "$@"; do
  if [[ $prev == --device ]]; then device=$arg; fi
  if [[ $arg == --device=* ]]; then device=${arg#--device=}; fi
  prev=$arg
done
mkdir -p "$out"
cd "$repo"
wheels=${WHEELS:-.whl} site=${SITE:-/tmp/site}
if compgen -G "$wheels/*.whl" >/dev/null; then
  "$python" -m pip install -q --no-index --no-deps --no-compile --no-cache-dir --upgrade --target "$site" "$wheels"/*.whl
  export PYTHONPATH="$site${PYTHONPATH:+:$PYTHONPATH}"
fi
export PYTHONPATH="$repo${PYTHONPATH:+:$PYTHONPATH}" PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
# Preflight (seconds): every import both scripts need, and the versions they run with, into OUT/env.json. A
# failure ends the call before any training, with the missing piece named.
"$python" experiments/device_check.py preflight "$out/env.json"
train_s=$(( total - infer_s - (SECONDS - t0) ))
if (( train_s < 20 )); then
  echo "device_run.sh: TOTAL_S=$total leaves ${train_s} s to train after INFER_S=$infer_s" >&2
  exit 2
fi
rm -rf "$work"
status=0
bash experiments/gpu_train.sh "$out" "$train_s" --work "$work" "$@" || status=$?  # its packing fits 4 of the 8 files
chosen=$("$python" -c 'import json,sys; s=json.load(open(sys.argv[1])); print(s.get("chosen") or next(iter(s["runs"])))' \
  "$out/summary.json" 2>/dev/null || true)
if [[ -n $chosen && -f $work/$chosen/final/model.safetensors ]]; then
  left=$(( total - (SECONDS - t0) - 5 ))
  timeout "$(( left > 10 ? left : 10 ))" "$python" experiments/gpu_inference.py --out "$out/gpu_inference.json" \
    --model "$work/$chosen/final" --device "$device" ${INFER_ARGS:-} || status=$?
else
  echo "device_run.sh: no trained model to check (chosen: ${chosen:-none})"
  status=1
fi
# What comes back: count and sizes against the device tool's limits.
"$python" experiments/device_check.py outputs "$out" || status=$?
echo "device_run.sh: ${SECONDS}s, status $status"
exit $status
