"""Benchmark: embedded-model load time, and scoring throughput of the shared-row planner vs one row per candidate.

    python benchmarks/bench_model.py

Prints times measured side by side in one run (targets: load < 2 s; sharing >= 1x).
"""

from __future__ import annotations

import time

import torch

from interp.models import load_model
from interp.prompts import build_prompts
from interp.scoring import candidates_for, row_log_probs, score_answers
from interp.tokenization import pad_id


def best_of(fn, repeats: int = 3) -> float:
    times = []
    for _ in range(repeats):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return min(times)


def main() -> None:
    torch.set_num_threads(2)
    load_model("embedded", device="cpu")  # warm imports and file cache
    load_s = best_of(lambda: load_model("embedded", device="cpu"))
    print(f"load_model('embedded'): {load_s:.3f} s (target < 2 s)")
    model = load_model("embedded", device="cpu")
    prompts = build_prompts("bias_add", n_examples=20, n_prompts=64, seed=0)  # 10 single-character candidates
    shared = best_of(lambda: score_answers(model, prompts))
    tok = model.tokenizer

    def one_row_per_candidate():
        rows = [c.ids[:-1] for p in prompts for c in candidates_for(tok, p.text, p.answers)]
        row_log_probs(model, rows, pad=pad_id(tok))

    naive = best_of(one_row_per_candidate)
    print(f"score 64 prompts x 10 candidates: shared rows {shared:.3f} s, one row per candidate {naive:.3f} s, "
          f"speed-up {naive / shared:.1f}x")


if __name__ == "__main__":
    main()
