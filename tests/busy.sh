#!/usr/bin/env bash
# Run a command while every core is kept busy by other processes (issue 36: the suite must pass on a slow, shared
# machine). One busy loop per core (BUSY_PROCESSES overrides), started first and stopped when the command ends,
# whatever way it ends. The tests' time limits grow with the load they see (tests/time_limits.py); nothing here
# tells them the machine is busy.
#
#   bash tests/busy.sh                                   # the default suite: .venv/bin/python -m pytest -q
#   bash tests/busy.sh .venv/bin/python -m pytest -q tests/acceptance/test_cli_errors.py
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")/.."
n=${BUSY_PROCESSES:-$(getconf _NPROCESSORS_ONLN 2>/dev/null || echo 2)}
pids=()
stop() { if (( ${#pids[@]} )); then kill "${pids[@]}" 2>/dev/null || true; wait "${pids[@]}" 2>/dev/null || true; fi; }
trap stop EXIT
trap 'exit 130' INT TERM
for _ in $(seq "$n"); do
  bash -c 'while :; do :; done' &
  pids+=($!)
done
echo "busy.sh: $n busy process(es) started: ${pids[*]}" >&2
if (( $# )); then "$@"; else .venv/bin/python -m pytest -q; fi
