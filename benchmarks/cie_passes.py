"""What the two passes of an exact head CIE cost on the embedded model, and how much known fixes could save (issue 40).

    python benchmarks/cie_passes.py [--threads 2] [--out benchmarks/cie_passes.json]

On the heads section's embedded case (``benchmarks/run.py``: 20 prompts of 10 examples) it measures, side by side:

* the per-head TransformerLens loop and the two passes every exact CIE needs (:func:`run.exact_cie_floor`), and
  loop ÷ passes, the ceiling of any exact method on this forward;
* the passes' time by kind of work under the torch profiler (``where_time_goes.profiled``);
* PyTorch's fused attention kernel against plain batched attention (scores, mask, softmax, mixing) at the model's
  head shapes, at the case's prompt length and at twice it;
* the clean pass in a child process with and without glibc settings that keep freed memory for reuse
  (``MALLOC_MMAP_THRESHOLD_``/``MALLOC_TRIM_THRESHOLD_``: fresh temporaries then need no new pages).

From these it estimates the ceiling with both fixes: the passes made faster by the child's ratio, less the attention
saved per block, with everything else in the CIE free. Prints the numbers and writes JSON.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run as bench  # noqa: E402  (benchmarks/run.py: the heads case, the loop and the two passes)
from timing import best_of  # noqa: E402
from where_time_goes import profiled  # noqa: E402

#: glibc settings that keep freed memory in the heap for reuse instead of returning it to the system.
KEEP_BUFFERS = {"MALLOC_MMAP_THRESHOLD_": "4294967296", "MALLOC_TRIM_THRESHOLD_": "4294967296"}


def case_ids(model) -> tuple[list, list, list]:
    """The heads section's embedded case: (clean token ids, corrupted token ids, each corrupted prompt's answer)."""
    from interp.capture import token_ids
    from interp.heads import cie_prompts

    _, family, task, n = bench.HEAD_CASES["embedded"]
    clean, corrupted, k = cie_prompts(family, task, n_prompts=n, n_examples=10, seed=0)
    targets = [model.tokenizer(p.answers[k], add_special_tokens=False)["input_ids"][0] for p in corrupted]
    return token_ids(model, clean), token_ids(model, corrupted), targets


def attention_seconds(batch: int, heads: int, tokens: int, d_head: int, repeats: int = 50) -> dict:
    """Seconds of causal attention over ``[batch, heads, tokens, d_head]``: PyTorch's fused kernel and plain batched
    attention (best of ``repeats`` each), and their largest difference."""
    gen = torch.Generator().manual_seed(0)
    q, k, v = (torch.randn(batch, heads, tokens, d_head, generator=gen) for _ in range(3))
    later = torch.ones(tokens, tokens, dtype=torch.bool).triu(1)
    scale = d_head**-0.5

    def fused():
        return torch.nn.functional.scaled_dot_product_attention(q, k, v, is_causal=True, scale=scale)

    def plain():
        scores = torch.matmul(q, k.transpose(-1, -2)).mul_(scale).masked_fill_(later, float("-inf"))
        return torch.matmul(torch.softmax(scores, dim=-1), v)

    with torch.inference_mode():
        fused(), plain()
        fused_s, a = best_of(fused, repeats)
        plain_s, b = best_of(plain, repeats)
    return {"tokens": tokens, "fused_s": fused_s, "plain_s": plain_s, "max_abs_diff": float((a - b).abs().max())}


def clean_pass_seconds(repeats: int = 30) -> float:
    """Best seconds of the clean pass (to the last layer's ``z``) on the embedded case, in this process."""
    from interp.engines.fused import fused_resid

    model = bench.build_model("embedded")
    x = torch.tensor(case_ids(model)[0])
    with torch.inference_mode():
        fused_resid(model, x, z_tap=lambda layer, z: None, through="z")
        return best_of(lambda: fused_resid(model, x, z_tap=lambda layer, z: None, through="z"), repeats)[0]


def child_pass_seconds(threads: int, env_extra: dict) -> float:
    """:func:`clean_pass_seconds` in a fresh process with ``env_extra`` set (glibc reads it only at start-up)."""
    env = {**os.environ, **env_extra, "OMP_NUM_THREADS": str(threads)}
    out = subprocess.run(
        [sys.executable, __file__, "--child-pass", "--threads", str(threads)],
        env=env, capture_output=True, text=True, check=True, timeout=600,
    )  # fmt: skip
    return float(out.stdout.strip().splitlines()[-1])


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "cie_passes.json"))
    ap.add_argument("--child-pass", action="store_true", help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.child_pass:
        print(clean_pass_seconds())
        return 0
    model = bench.build_model("embedded")
    cfg = model.cfg
    clean_ids, ids, targets = case_ids(model)
    heads = [(la, h) for la in range(cfg.n_layers) for h in range(cfg.n_heads)]
    loop_s = best_of(lambda: bench.tl_head_loop(model, clean_ids, ids, targets, heads), 3)[0]
    passes_s = bench.exact_cie_floor(model, clean_ids, ids, 10)
    two_passes = bench.exact_cie_passes(model, clean_ids, ids)
    two_passes()
    profile = profiled(two_passes, cfg.d_model, cfg.d_vocab)
    shares = {kind: s / profile["profiled_s"] for kind, s in profile["kinds_s"].items()}
    tokens = len(clean_ids[0])
    attention = [attention_seconds(len(clean_ids), cfg.n_heads, t, cfg.d_head) for t in (tokens, 2 * tokens)]
    plain_pass_s = child_pass_seconds(args.threads, {})
    kept_pass_s = child_pass_seconds(args.threads, KEEP_BUFFERS)
    saved_attention_s = max(0.0, attention[0]["fused_s"] - attention[0]["plain_s"])
    # both passes run attention in every block (the corrupted one's last block: keys and values only)
    estimate_s = passes_s * kept_pass_s / plain_pass_s - (2 * cfg.n_layers - 1) * saved_attention_s
    result = {
        "meta": bench.run_meta(args.threads, False),
        "loop_s": loop_s,
        "two_passes_s": passes_s,
        "ceiling": loop_s / passes_s,
        "two_passes_shares": shares,
        "attention": attention,
        "clean_pass_s": plain_pass_s,
        "clean_pass_keep_buffers_s": kept_pass_s,
        "two_passes_both_fixes_estimate_s": estimate_s,
        "ceiling_both_fixes_estimate": loop_s / estimate_s,
    }
    print(f"per-head loop {loop_s:.3f} s; two passes {passes_s:.4f} s; ceiling {loop_s / passes_s:.1f}x")
    kinds = ", ".join(f"{k} {v:.0%}" for k, v in shares.items() if v >= 0.01)
    print(f"two passes by kind of work: {kinds}")
    for a in attention:
        print(
            f"attention at {a['tokens']} tokens: fused {a['fused_s'] * 1e3:.2f} ms, plain {a['plain_s'] * 1e3:.2f} ms"
        )
    print(f"clean pass in a child: {plain_pass_s * 1e3:.1f} ms; keeping freed buffers: {kept_pass_s * 1e3:.1f} ms")
    print(f"both fixes (estimate, the rest of the CIE free): two passes {estimate_s:.4f} s, ceiling "
          f"{loop_s / estimate_s:.1f}x")  # fmt: skip
    bench.write_results(args.out, result)
    print(f"wrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
