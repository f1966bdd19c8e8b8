#!/usr/bin/env bash
# Train the size family (experiments/configs/size_family/<size>.json) with more seeds, for the scaling study's
# seed spread (issue 27). Seed 0 is the shipped family (interp/checkpoints/size_family/<size>); seeds 1 and 2 go to
# interp/checkpoints/size_family_seeds/<size>-seed<k>. Two lanes in parallel (one thread each), ~20 min on 2 cores.
#   bash experiments/size_family_seeds.sh            # seeds 1 2
set -euo pipefail
cd "$(dirname "$0")/.."
INTERP=${INTERP:-.venv/bin/interp}
lane() {
  local seed=$1
  for size in xs s m l; do
    local out="runs/size_family_seeds/${size}-seed${seed}"
    "$INTERP" train --config "experiments/configs/size_family/${size}.json" --seed "$seed" --out "$out" --quiet
    mkdir -p interp/checkpoints/size_family_seeds
    rm -rf "interp/checkpoints/size_family_seeds/${size}-seed${seed}.tmp"
    cp -r "$out/final" "interp/checkpoints/size_family_seeds/${size}-seed${seed}.tmp"
    mv -T "interp/checkpoints/size_family_seeds/${size}-seed${seed}.tmp" "interp/checkpoints/size_family_seeds/${size}-seed${seed}"
  done
}
if [ "$#" -eq 0 ]; then set -- 1 2; fi
for seed in "$@"; do
  lane "$seed" &
done
wait
