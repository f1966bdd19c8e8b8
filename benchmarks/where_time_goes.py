"""Where the time goes in the benchmark's scoring and sweep cases (issue 17): torch-profiler time by kind of work.

    make bench-profile   # or: python benchmarks/where_time_goes.py [--threads 2] [--case TEXT] [--quick] [--out F]

By default the scoring and sweep cases whose speed-up row FAILs in ``benchmarks/results.json`` (``make bench``; the
GPT-2-architecture ones when there is none); ``--case`` picks any scoring or sweep case of ``benchmarks/run.py`` by
name fragment. For each, the profiled run of ours (and, for scoring, of the last-token floor it is compared with)
is split into kinds of work by the profiler's self time per operator:

* *unembedding*: matrix products with the unembedding (every vocabulary logit);
* *log-softmax over the vocabulary*;
* *weight products*: every other matrix product (query/key/value, attention output, MLP);
* *attention*: the fused kernel, or the products of queries with keys and of weights with values and their softmax
  (the key-value continuation of the sweep);
* *layer norm*, *element-wise* (GELU, bias adds, masks), *copies and indexing*, *other*.

It also counts the work any exact method must do: for scoring, the prompt tokens (run once: the floor) and the
answer tokens fed after them; for the sweep, the multiply-adds of the least exact work (the patched token through
the blocks above the patch, then all vocabulary logits), of which the unembedding is a share. Writes JSON
(``benchmarks/profile.json``) and prints one table per case.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "benchmarks"))

import run as bench  # noqa: E402  (benchmarks/run.py: the cases, models and baselines)

FALLBACK_CASES = ("gpt2-arch add_translate K=4", "gpt2-arch operands")
SPEED_ROWS = ("score vs paper loop · ", "sweep vs per-cell forwards · ")


def failing_cases(results: Path = ROOT / "benchmarks" / "results.json") -> list[str]:
    """The scoring and sweep cases whose speed-up row FAILs in ``results`` (none when the file is missing)."""
    if not results.exists():
        return []
    rows = json.loads(results.read_text())["rows"]
    return [r["name"].split(" · ", 1)[1] for r in rows if r["name"].startswith(SPEED_ROWS) and not r["pass"]]


MATMUL_OPS = {"aten::mm", "aten::addmm", "aten::addmm_", "aten::bmm", "aten::baddbmm", "aten::matmul", "aten::linear"}
ELEMENTWISE_OPS = {
    "aten::add", "aten::add_", "aten::mul", "aten::mul_", "aten::sub", "aten::sub_", "aten::div", "aten::div_",
    "aten::sigmoid", "aten::sigmoid_", "aten::tanh", "aten::pow", "aten::masked_fill_", "aten::masked_fill",
    "aten::where", "aten::exp", "aten::_softmax", "aten::softmax", "aten::gelu", "aten::fill_", "aten::zero_",
    "aten::eq", "aten::ne", "aten::ge", "aten::le", "aten::lt", "aten::gt", "aten::bitwise_and", "aten::__and__",
    "aten::tril", "aten::triu", "aten::clamp", "aten::sum", "aten::any", "aten::all",
}  # fmt: skip
COPY_OPS = {
    "aten::copy_", "aten::index", "aten::index_put_", "aten::_index_put_impl_", "aten::cat", "aten::gather",
    "aten::embedding", "aten::index_select", "aten::clone", "aten::contiguous", "aten::_to_copy", "aten::to",
    "aten::empty", "aten::empty_strided", "aten::zeros", "aten::ones", "aten::new_zeros", "aten::arange",
    "aten::repeat_interleave", "aten::unique_consecutive", "aten::_unique2", "aten::sort", "aten::argsort",
    "aten::nonzero", "aten::expand", "aten::view", "aten::reshape", "aten::permute", "aten::transpose",
    "aten::slice", "aten::select", "aten::as_strided", "aten::unsqueeze", "aten::t", "aten::stack",
    "aten::_reshape_alias", "aten::resize_", "aten::item", "aten::_local_scalar_dense", "aten::lift_fresh",
    "aten::detach", "aten::alias", "aten::flatten", "aten::unbind", "aten::split", "aten::narrow",
}  # fmt: skip
KINDS = (
    "unembedding (every vocabulary logit)",
    "log-softmax over the vocabulary",
    "weight products (q/k/v, attention output, MLP)",
    "attention (fused kernel, or scores and mixing)",
    "layer norm",
    "element-wise (GELU, bias adds, masks)",
    "copies and indexing",
    "other",
)


def kind_of(name: str, shapes: list, d_model: int, d_vocab: int) -> str:
    """Which kind of work one profiled operator (``name``, its inputs' ``shapes``) is."""
    dims = [tuple(s) for s in shapes if isinstance(s, list | tuple) and s]
    if name in MATMUL_OPS:
        if any(s[-2:] in ((d_model, d_vocab), (d_vocab, d_model)) for s in dims if len(s) >= 2):
            return KINDS[0]
        # a weight is a 2-D operand; batched products of activations (query·key, weights·value) are attention
        return KINDS[2] if any(len(s) == 2 for s in dims[1:]) or name in ("aten::addmm", "aten::addmm_") else KINDS[3]
    if name in ("aten::_softmax", "aten::softmax"):
        return KINDS[3]
    if name in ("aten::_log_softmax", "aten::log_softmax", "aten::logsumexp"):
        return KINDS[1] if any(s[-1] == d_vocab for s in dims) else KINDS[5]
    if "scaled_dot_product" in name or "flash_attention" in name:
        return KINDS[3]
    if "layer_norm" in name:
        return KINDS[4]
    if name in ELEMENTWISE_OPS:
        return KINDS[5]
    if name in COPY_OPS:
        return KINDS[6]
    return KINDS[7]


def profiled(fn, d_model: int, d_vocab: int) -> dict:
    """Run ``fn()`` once under the torch profiler: wall seconds and self seconds per kind of work and per operator."""
    from torch.profiler import ProfilerActivity, profile

    with profile(activities=[ProfilerActivity.CPU], record_shapes=True) as prof:
        start = time.perf_counter()
        fn()
        wall = time.perf_counter() - start
    kinds = dict.fromkeys(KINDS, 0.0)
    ops: dict[str, float] = {}
    for e in prof.key_averages(group_by_input_shape=True):
        seconds = e.self_cpu_time_total / 1e6
        kinds[kind_of(e.key, e.input_shapes or [], d_model, d_vocab)] += seconds
        ops[e.key] = ops.get(e.key, 0.0) + seconds
    top = sorted(ops.items(), key=lambda kv: -kv[1])[:8]
    return {
        "wall_s": wall,
        "profiled_s": sum(kinds.values()),
        "kinds_s": kinds,
        "top_ops_s": dict(top),
    }


def scoring_case(name: str, models: dict, quick: bool) -> dict:
    """Ours (``score_answers``) and the last-token floor, profiled one after the other on the benchmark's prompts."""
    from interp.engines.exact import cache_exact as uses_cache
    from interp.engines.plan import candidates_batch, plan_scoring

    model_name, family, tasks, n_examples, n_prompts = bench.SCORING_CASES[name]
    model = models.setdefault(model_name, bench.build_model(model_name))
    n_prompts //= 2 if quick else 1
    prompts = bench.build_prompts(family, tasks, n_examples=n_examples, n_prompts=n_prompts, seed=0)
    cfg = model.cfg
    bench.score_answers(model, prompts[:2], include_newline=True)  # warm up
    bench.floor_forward(model, prompts[:2], kind="last")
    ours = profiled(lambda: bench.score_answers(model, prompts, include_newline=True), cfg.d_model, cfg.d_vocab)
    floor = profiled(lambda: bench.floor_forward(model, prompts, kind="last"), cfg.d_model, cfg.d_vocab)
    texts, answers = [p.text for p in prompts], [[a + "\n" for a in p.answers] for p in prompts]
    cands = candidates_batch(model.tokenizer, texts, answers)  # as score_answers(include_newline=True) plans them
    plan = plan_scoring(cands, shared_prefix=uses_cache(model), across_prompts=True)
    prompt_tokens = sum(len(p) for p in plan.prefixes)
    answer_tokens = sum(len(s) for s in plan.suffixes)
    return {
        "section": "scoring",
        "prompts": len(prompts),
        "ours": ours,
        "floor_last_token": floor,
        "prompt_tokens": prompt_tokens,
        "answer_tokens_fed": answer_tokens,
        "answer_tokens_over_prompt_tokens": answer_tokens / prompt_tokens,
        "ours_over_floor_wall": ours["wall_s"] / floor["wall_s"],
    }


def sweep_case(name: str, models: dict, quick: bool) -> dict:
    """Ours (``lambda_sweep(mixed_reference=False)``) profiled on the benchmark's queries, with the least-work
    accounting."""
    from interp.prompts import zero_shot_prompts
    from interp.sweeps import DEFAULT_LAMBDAS, lambda_sweep
    from interp.vectors import task_vector

    model_name, family, task_a, task_b, n_prompts = bench.SWEEP_CASES[name]
    model = models.setdefault(model_name, bench.build_model(model_name))
    cfg = model.cfg
    lambdas = np.asarray(DEFAULT_LAMBDAS[:: 5 if quick else 1])
    layers = tuple(range(cfg.n_layers))
    va, vb = (task_vector(model, family, t, n_prompts=16, seed=1) for t in (task_a, task_b))
    zs = zero_shot_prompts(family, [task_a, task_b], n_prompts=n_prompts, seed=0)

    def ours():
        return lambda_sweep(
            model, family, task_a, task_b, va, vb, lambdas=lambdas, n_prompts=n_prompts, mixed_reference=False
        )

    prof = profiled(ours, cfg.d_model, cfg.d_vocab)
    base_ma, least_ma = bench.sweep_multiply_adds(model, zs, len(lambdas), layers, va.hook)
    distinct = len({p.text for p in zs})
    unembed_ma = len(lambdas) * distinct * len(layers) * cfg.d_model * cfg.d_vocab
    return {
        "section": "sweep",
        "lambdas": len(lambdas),
        "layers": len(layers),
        "distinct_queries": distinct,
        "ours": prof,
        "multiply_adds_per_cell_baseline": base_ma,
        "multiply_adds_least_exact": least_ma,
        "unembedding_share_of_least_exact": unembed_ma / least_ma,
        "arithmetic_ceiling": base_ma / least_ma,
    }


def print_case(name: str, case: dict) -> None:
    runs = [("ours", case["ours"])] + ([("floor", case["floor_last_token"])] if "floor_last_token" in case else [])
    print(f"\n{name} ({case['section']}): " + ", ".join(f"{k} {r['wall_s']:.2f} s wall" for k, r in runs))
    print(f"  {'kind of work':<48}" + "".join(f"{k:>14}" for k, _ in runs))
    for kind in KINDS:
        print(f"  {kind:<48}" + "".join(f"{r['kinds_s'][kind]:>12.3f} s" for _, r in runs))
    if case["section"] == "scoring":
        print(
            f"  prompt tokens {case['prompt_tokens']}, answer tokens fed after them {case['answer_tokens_fed']} "
            f"({case['answer_tokens_over_prompt_tokens']:.1%}); ours / floor (wall) {case['ours_over_floor_wall']:.2f}"
        )
    else:
        print(
            f"  least exact work: {case['multiply_adds_least_exact']:.3g} multiply-adds, of which the unembedding "
            f"{case['unembedding_share_of_least_exact']:.0%}; arithmetic ceiling {case['arithmetic_ceiling']:.2f}x"
        )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--case", action="append", help="a scoring or sweep case name fragment (repeatable)")
    ap.add_argument("--quick", action="store_true", help="half the prompts / a fifth of the λ grid (a smoke run)")
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "profile.json"))
    args = ap.parse_args(argv)
    known_cases = (*bench.SCORING_CASES, *bench.SWEEP_CASES)
    if args.case:
        names = [n for n in known_cases if any(w in n for w in args.case)]
    else:
        names = [n for n in failing_cases() if n in known_cases] or list(FALLBACK_CASES)
    wanted = args.case
    if not names:
        known = ", ".join(repr(n) for n in known_cases)
        ap.error(f"--case: no scoring or sweep case matches {wanted}; known: {known}")
    torch.set_num_threads(args.threads)
    models: dict = {}
    cases = {}
    for name in names:
        section = scoring_case if name in bench.SCORING_CASES else sweep_case
        cases[name] = section(name, models, args.quick)
        print_case(name, cases[name])
    bench.write_results(args.out, {"meta": bench.run_meta(args.threads, args.quick), "cases": cases})
    print(f"\nwrote {args.out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
