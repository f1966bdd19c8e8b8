"""Performance benchmark (issue 17, targets 1 and 3): baselines and the toolkit back to back, same model/prompts/threads.

    make bench                       # or: python benchmarks/run.py [--threads 2] [--quick] [--out benchmarks/results.json]

Prints one line per target — ``name  baseline_s  ours_s  ratio  target  PASS/FAIL`` — and writes JSON.

Models: the embedded char-level model, and the GPT-2-small architecture with seeded weights and the real GPT-2 BPE.

* Scoring (target 1), ``include_newline=True`` (multi-token answers). Baselines: the paper's method (one unbatched
  forward of prompt + answer per candidate; log-softmax only at the answer positions, in float64 — generous to it)
  and the *floor* (one batched forward over the prompts alone, through the last block; no unembedding at all).
  Equality: max |Δ log p| between ``score_answers`` and the paper's loop.
* Capture memory (target 3): last-token residuals at every layer. Each method runs in a fresh subprocess; its peak
  resident memory above the memory before the call is sampled every millisecond. Baselines: the floor (the same
  batches through the last block, nothing kept) and ``run_with_cache`` (same batches, then the last tokens sliced).
"""

from __future__ import annotations

import argparse
import ctypes
import gc
import json
import os
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from interp.capture import capture_resid, token_batches  # noqa: E402
from interp.hooks import hook_name  # noqa: E402
from interp.prompts import build_prompts  # noqa: E402
from interp.scoring import candidates_for, score_answers  # noqa: E402
from interp.tokenization import encode_batch, pad_id, right_pad  # noqa: E402

EQ_TOL = 1e-5


# --- models and prompts ------------------------------------------------------------------------------------------


def build_model(name: str):
    if name == "embedded":
        from interp.models import load_model

        return load_model("embedded", device="cpu")
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.models import hooked_from_hf
    from interp.tokenization import build_gpt2_tokenizer

    torch.manual_seed(0)
    hf = GPT2LMHeadModel(GPT2Config()).eval()  # GPT-2 small architecture, seeded weights
    model = hooked_from_hf(hf, build_gpt2_tokenizer(), model_id="gpt2-small-seeded")
    del hf
    return model


SCORING_CASES = {  # name: (model, family, tasks, n_examples, n_prompts)
    "embedded bias_add K=4": ("embedded", "bias_add", ["add1", "add2", "add7", "add9"], 20, 64),
    "gpt2-arch add_translate K=4": ("gpt2", "add_translate", None, 20, 24),
}
CAPTURE_CASES = {  # name: (model, family, n_examples, n_prompts)
    "embedded bias_add 20ex": ("embedded", "bias_add", 20, 1000),
    "embedded bias_add 50ex": ("embedded", "bias_add", 50, 1000),
    "gpt2-arch operands 20ex": ("gpt2", "operands", 20, 64),
    "gpt2-arch operands 80ex": ("gpt2", "operands", 80, 64),
}


# --- scoring -------------------------------------------------------------------------------------------------------


@torch.inference_mode()
def paper_loop(model, prompts, include_newline: bool) -> np.ndarray:
    """The paper's method: one unbatched forward of prompt + answer per candidate."""
    tok, suffix = model.tokenizer, "\n" if include_newline else ""
    out = np.zeros((len(prompts), len(prompts[0].tasks)))
    for i, p in enumerate(prompts):
        for k, a in enumerate(p.answers):
            c = candidates_for(tok, p.text, [a + suffix])[0]
            logits = model(torch.tensor([c.ids]))[0, c.start - 1 : len(c.ids) - 1]
            logp = torch.log_softmax(logits.double(), dim=-1)
            out[i, k] = float(logp[torch.arange(len(logits)), torch.tensor(c.ids[c.start :])].sum())
    return out


@torch.inference_mode()
def floor_forward(model, prompts, batch_size: int = 32) -> None:
    """One batched forward over the prompts alone (right-padded, sorted by length), through the last block."""
    ids = encode_batch(model.tokenizer, [p.text for p in prompts])
    ids.sort(key=len)
    for lo in range(0, len(ids), batch_size):
        model(right_pad(ids[lo : lo + batch_size], pad_id(model.tokenizer)), stop_at_layer=model.cfg.n_layers)


def best_of(fn, repeats: int) -> tuple[float, object]:
    times, result = [], None
    for _ in range(repeats):
        start = time.perf_counter()
        result = fn()
        times.append(time.perf_counter() - start)
    return min(times), result


def bench_scoring(name: str, models: dict, quick: bool) -> list[dict]:
    model_name, family, tasks, n_examples, n_prompts = SCORING_CASES[name]
    model = models.setdefault(model_name, build_model(model_name))
    prompts = build_prompts(family, tasks, n_examples=n_examples, n_prompts=n_prompts // (2 if quick else 1), seed=0)
    reps = 1 if quick else 3
    score_answers(model, prompts[:2], include_newline=True)  # warm up
    loop_s, ref = best_of(lambda: paper_loop(model, prompts, True), 1)
    floor_s, _ = best_of(lambda: floor_forward(model, prompts), reps)
    ours_s, got = best_of(lambda: score_answers(model, prompts, include_newline=True).log_probs, reps)
    diff = float(np.abs(got - ref).max())
    n_tok = [len(c.ids) - c.start for p in prompts for c in candidates_for(model.tokenizer, p.text, p.answers)]
    info = {"prompts": len(prompts), "candidates": len(prompts[0].tasks), "answer_tokens_max": max(n_tok)}
    return [
        row(f"score vs paper loop · {name}", loop_s, ours_s, loop_s / ours_s, ">= 10x faster", loop_s / ours_s >= 10, info),
        row(f"score vs floor · {name}", floor_s, ours_s, ours_s / floor_s, "<= 1.3x floor", ours_s / floor_s <= 1.3, info),
        row(f"score equality · {name}", 0.0, 0.0, diff, f"max|dlogp| <= {EQ_TOL:g}", diff <= EQ_TOL, info),
    ]


def row(name, baseline_s, ours_s, ratio, target, ok, info=None) -> dict:
    out = {"name": name, "baseline_s": baseline_s, "ours_s": ours_s, "ratio": ratio, "target": target, "pass": bool(ok)}
    return out | ({"info": info} if info else {})


# --- capture memory (one subprocess per method) ---------------------------------------------------------------------


def rss_bytes() -> int:
    with open("/proc/self/statm") as f:
        return int(f.read().split()[1]) * os.sysconf("SC_PAGE_SIZE")


class PeakSampler:
    """Peak resident memory above the level at start, sampled every millisecond on a thread."""

    def __enter__(self):
        gc.collect()
        try:
            ctypes.CDLL("libc.so.6").malloc_trim(0)  # give back what set-up freed, so it cannot be reused unseen
        except OSError:
            pass
        self.start, self.peak, self.running = rss_bytes(), 0, True
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()
        return self

    def _run(self):
        while self.running:
            self.peak = max(self.peak, rss_bytes())
            time.sleep(0.001)

    def __exit__(self, *exc):
        self.running = False
        self.thread.join()
        self.peak = max(self.peak, rss_bytes())
        self.above = self.peak - self.start


@torch.inference_mode()
def capture_method(model, prompts, method: str) -> torch.Tensor | None:
    """Last-token residuals (resid_post, every layer) by ``method``: ours, floor or run_with_cache (same batches)."""
    if method == "ours":
        return capture_resid(model, prompts)
    ids = encode_batch(model.tokenizer, [p.text for p in prompts])
    lengths = [len(x) for x in ids]
    order = sorted(range(len(ids)), key=lambda i: lengths[i])
    out = torch.empty(model.cfg.n_layers, len(ids), model.cfg.d_model) if method == "run_with_cache" else None
    for chunk in token_batches(order, lengths, 32, 8192):  # capture_resid's defaults: the same batches
        x = right_pad([ids[i] for i in chunk], pad_id(model.tokenizer))
        if method == "floor":
            model(x, stop_at_layer=model.cfg.n_layers)
            continue
        _, cache = model.run_with_cache(x)
        rows, cols = torch.arange(len(chunk)), torch.tensor([lengths[i] - 1 for i in chunk])
        for la in range(model.cfg.n_layers):
            out[la, chunk] = cache[hook_name(la)][rows, cols]
        del cache
    return out


def capture_child(case: str, method: str, save: str) -> None:
    """Subprocess entry: one method on one case; prints JSON (seconds, peak bytes above start)."""
    model_name, family, n_examples, n_prompts = CAPTURE_CASES[case]
    model = build_model(model_name)
    prompts = build_prompts(family, n_examples=n_examples, n_prompts=n_prompts, seed=0)
    with PeakSampler() as mem:
        start = time.perf_counter()
        out = capture_method(model, prompts, method)
        seconds = time.perf_counter() - start
    if out is not None:
        torch.save(out, save)
    layers, d = model.cfg.n_layers, model.cfg.d_model
    print(json.dumps({"seconds": seconds, "above": mem.above, "output_bytes": layers * n_prompts * d * 4}))


def bench_capture(case: str, threads: int) -> list[dict]:
    res = {}
    with tempfile.TemporaryDirectory() as tmp:
        for method in ("floor", "ours", "run_with_cache"):
            save = os.path.join(tmp, f"{method}.pt")
            cmd = [sys.executable, __file__, "--capture-child", case, method, save, "--threads", str(threads)]
            done = subprocess.run(cmd, capture_output=True, text=True, check=True)
            res[method] = json.loads(done.stdout.strip().splitlines()[-1])
            if method != "floor":
                res[method]["tensor"] = torch.load(save)
    diff = float((res["ours"]["tensor"] - res["run_with_cache"]["tensor"]).abs().max())
    mb = 2**20
    floor, ours, rwc = (res[m]["above"] / mb for m in ("floor", "ours", "run_with_cache"))
    out_mb = res["ours"]["output_bytes"] / mb
    excess = ours - floor
    info = {"floor_mb": floor, "ours_mb": ours, "run_with_cache_mb": rwc, "output_mb": out_mb, "excess_mb": excess}
    info["equality_max_abs"] = diff
    return [
        row(f"capture mem vs run_with_cache · {case}", rwc, ours, rwc / max(ours, 1e-9), ">= 5x less memory",
            rwc >= 5 * ours, info) | {"unit": "MB"},
        row(f"capture excess over floor · {case}", floor, ours, excess / max(out_mb, 1e-9),
            "excess <= 2x output + 16 MB", excess <= 2 * out_mb + 16, info) | {"unit": "MB"},
        row(f"capture time vs run_with_cache · {case}", res["run_with_cache"]["seconds"], res["ours"]["seconds"],
            res["run_with_cache"]["seconds"] / res["ours"]["seconds"], "info", True, info),
        row(f"capture equality · {case}", 0.0, 0.0, diff, f"max|dx| <= {EQ_TOL:g}", diff <= EQ_TOL, info),
    ]


# --- main ----------------------------------------------------------------------------------------------------------


def print_row(r: dict) -> None:
    unit = r.get("unit", "s")
    verdict = "PASS" if r["pass"] else "FAIL"
    print(
        f"{r['name']:<58} {r['baseline_s']:>10.3f}{unit:<2} {r['ours_s']:>10.3f}{unit:<2} {r['ratio']:>10.3g}  "
        f"{r['target']:<28} {verdict}",
        flush=True,
    )


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=int(os.environ.get("OMP_NUM_THREADS", "2")))
    ap.add_argument("--quick", action="store_true", help="half the prompts, one repetition (a smoke run)")
    ap.add_argument("--only", choices=["scoring", "capture"], default=None)
    ap.add_argument("--out", default=str(ROOT / "benchmarks" / "results.json"))
    ap.add_argument("--capture-child", nargs=3, metavar=("CASE", "METHOD", "SAVE"), help=argparse.SUPPRESS)
    args = ap.parse_args(argv)
    torch.set_num_threads(args.threads)
    if args.capture_child:
        capture_child(*args.capture_child)
        return 0
    print(f"threads={args.threads}  torch={torch.__version__}  cpu_count={os.cpu_count()}", flush=True)
    print(f"{'name':<58} {'baseline':>12} {'ours':>12} {'ratio':>10}  {'target':<28} verdict")
    rows: list[dict] = []
    models: dict = {}
    if args.only in (None, "scoring"):
        for case in SCORING_CASES:
            for r in bench_scoring(case, models, args.quick):
                print_row(r)
                rows.append(r)
    models.clear()
    if args.only in (None, "capture"):
        for case in CAPTURE_CASES:
            for r in bench_capture(case, args.threads):
                print_row(r)
                rows.append(r)
    from interp.export import atomic_path

    meta = {"threads": args.threads, "torch": torch.__version__, "quick": args.quick, "cpu_count": os.cpu_count()}
    with atomic_path(args.out) as tmp:
        Path(tmp).write_text(json.dumps({"meta": meta, "rows": rows}, indent=2) + "\n")
    print(f"wrote {args.out}; {sum(not r['pass'] for r in rows)} FAIL of {len(rows)}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
