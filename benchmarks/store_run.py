"""One measurement of the store benchmark (``benchmarks/run.py --only store``), in a fresh process so that its peak
resident memory is its own. Prints one JSON line: ``{"seconds", "peak_rss_mb", ...}``.

    python benchmarks/store_run.py memory N            # build_prompts + capture_resid in memory (the baseline)
    python benchmarks/store_run.py store N DIR DTYPE   # capture_to(DIR, PromptSpec of N prompts), shards of 1000
    python benchmarks/store_run.py paired N DIR DTYPE  # the same, each shard's prompts also built and captured in
                                                       # memory just before or after it (the paired baseline)
    python benchmarks/store_run.py read DIR            # open DIR (SHA-256 of every shard) and stream its task vector

Prompts: ``bias_add``, every task, 20 examples, seed 0, on the embedded model (its last token, every layer,
``resid_post``). ``memory N FILE`` also saves the task vector's mean (:func:`interp.streaming.moments`, float32, what
:func:`interp.vectors.from_activations` gives) to FILE, and ``read`` the store's to ``DIR/../store_mean.pt``, for
the equality check.
"""

from __future__ import annotations

import json
import os
import resource
import sys
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interp.capture import capture_resid  # noqa: E402
from interp.models import load_model  # noqa: E402
from interp.prompts import PromptSpec, build_prompts  # noqa: E402

FAMILY, N_EXAMPLES, SEED, SHARD_SIZE = "bias_add", 20, 0, 1000


def peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def main(argv: list[str]) -> dict:
    torch.set_num_threads(int(os.environ.get("OMP_NUM_THREADS", "2")))
    mode = argv[0]
    if mode == "read":
        from interp.store import ActivationStore

        start = time.perf_counter()
        store = ActivationStore.open(argv[1])
        vector = store.task_vector()
        out = {"seconds": time.perf_counter() - start, "prompts": len(store)}
        torch.save(vector.mean, Path(argv[1]) / ".." / "store_mean.pt")
        return out | {"peak_rss_mb": peak_rss_mb()}
    n = int(argv[1])
    model = load_model("embedded", device="cpu")
    warm = build_prompts(FAMILY, n_examples=N_EXAMPLES, n_prompts=8, seed=SEED)
    capture_resid(model, warm)  # the first forward pass's one-off costs, out of both timings
    rss_loaded = peak_rss_mb()
    start = time.perf_counter()
    if mode == "memory":
        acts = capture_resid(model, build_prompts(FAMILY, n_examples=N_EXAMPLES, n_prompts=n, seed=SEED))
        seconds = time.perf_counter() - start
        if len(argv) > 2:
            from interp.streaming import moments

            torch.save(moments(acts).mean.float(), argv[2])
        return {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_loaded}
    from interp.store import HookCapture, capture_to

    spec = PromptSpec(FAMILY, n_examples=N_EXAMPLES, n_prompts=n, seed=SEED)
    engine = HookCapture(model, range(model.cfg.n_layers), ["resid_post"])
    if mode == "paired":
        engine = PairedBaseline(engine, model, spec)
    store = capture_to(argv[2], model, spec, shard_size=SHARD_SIZE, dtype=argv[3], capture=engine)
    seconds = time.perf_counter() - start
    disk = sum(p.stat().st_size for p in Path(argv[2]).iterdir())
    out = {"seconds": seconds, "peak_rss_mb": peak_rss_mb(), "rss_after_load_mb": rss_loaded, "bytes": disk,
           "prompts": len(store), "layers": len(store.layers), "d_model": store.d_model}  # fmt: skip
    if mode == "paired":  # the store's own time: the whole run less the baseline's work done inside it
        out |= {"baseline_s": engine.baseline_s, "seconds": seconds - engine.baseline_s, "wall_s": seconds}
    return out


class PairedBaseline:
    """The store's engine, which also runs the in-memory path (``build_prompts`` + ``capture_resid``) on each shard's
    prompts, alternately just before and just after the store's own capture of them, and adds up its seconds: the
    two routes are timed side by side, shard by shard, so a load that drifts over the run weighs on both alike."""

    def __init__(self, inner, model, spec: PromptSpec) -> None:
        self.inner, self.model, self.spec, self.config = inner, model, spec, inner.config
        self.baseline_s, self.calls = 0.0, 0

    def baseline(self, lo: int, hi: int) -> None:
        start = time.perf_counter()
        capture_resid(self.model, self.spec.build(lo, hi))  # = build_prompts(...)[lo:hi], built as the store does
        self.baseline_s += time.perf_counter() - start

    def __call__(self, prompts, positions):
        lo = prompts[0].index
        self.calls += 1
        if self.calls % 2:
            self.baseline(lo, lo + len(prompts))
            return self.inner(prompts, positions)
        out = self.inner(prompts, positions)
        self.baseline(lo, lo + len(prompts))
        return out


if __name__ == "__main__":
    load_before = os.getloadavg()[0]
    result = main(sys.argv[1:])
    print(json.dumps(result | {"loadavg_1min": [load_before, os.getloadavg()[0]], "threads": torch.get_num_threads()}))
