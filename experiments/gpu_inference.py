"""The inference paths a CPU never runs, checked on a GPU against the float32 CPU reference (issue 25, step 3).

    python experiments/gpu_inference.py --out OUT/gpu_inference.json [--model DIR] [--big-params 1e9]
        [--family llama] [--device cuda] [--prompts 32] [--n-examples 20]

For the trained model (``--model``, default the embedded one) and for a random-weight model of about
``--big-params`` parameters of ``--family`` (built from a config with seed 0, nothing downloaded), each in float32
and bfloat16 on ``--device``: the same prompts are scored as on the CPU in float32, and the JSON records the largest
difference of an answer's log-probability (``max_dlogp``; a stated tolerance per dtype, ``pass``), scoring throughput
(prompt tokens per second, best of ``--repeats``) and peak GPU memory. With two or more GPUs, the big model also
loads split over them (``n_devices=2``, Hugging Face's ``device_map``) and is compared the same way; with one, that
row says so. Each model is dropped before the next, so memory peaks are per model.

A dry run on a CPU machine (``--device cpu --big-params 2e6``) exercises every step but the GPU ones.
"""

from __future__ import annotations

import argparse
import json
import math
import time
from pathlib import Path

import numpy as np
import torch

from interp.export import write_json

#: Largest |Δ log p| of an answer allowed against the float32 CPU reference. float32 on a GPU differs by kernel
#: rounding only (TF32 is turned off here); bfloat16 keeps 8 bits of mantissa: 2^-8 relative on logits of a few units,
#: accumulated over the layers, gives a few tenths on the log-probability of a many-token answer.
TOLERANCE = {"float32": 1e-3, "bfloat16": 0.5}
FAMILIES = ("llama", "qwen2", "gpt2")


def big_config(family: str, params: float, vocab_size: int):
    """A Hugging Face config of ``family`` with about ``params`` parameters (``d_model`` a multiple of 128, 16
    layers or fewer for small sizes; embeddings counted)."""
    from transformers import GPT2Config, LlamaConfig, Qwen2Config

    if family not in FAMILIES:
        raise ValueError(f"family: {family!r} not supported; valid: {', '.join(FAMILIES)}")
    layers = 16 if params >= 1e8 else 2
    # per layer ~12·d² (attention 4d², MLP 8d²) + the embedding (and unembedding) vocab·d
    d = 128
    while 12 * layers * (d + 128) ** 2 + 2 * vocab_size * (d + 128) <= params:
        d += 128
    heads = d // 64 if d >= 128 else 2
    if family == "gpt2":
        return GPT2Config(n_layer=layers, n_embd=d, n_head=heads, n_positions=1024, vocab_size=vocab_size)
    cls = LlamaConfig if family == "llama" else Qwen2Config
    return cls(
        num_hidden_layers=layers,
        hidden_size=d,
        intermediate_size=int(8 * d / 3) // 64 * 64,
        num_attention_heads=heads,
        num_key_value_heads=kv_heads(heads),
        vocab_size=vocab_size,
        max_position_embeddings=1024,
        tie_word_embeddings=False,
    )


def kv_heads(heads: int) -> int:
    """Grouped-query attention's key/value heads: the largest divisor of ``heads`` at most a quarter of it (every
    query group the same size, as Llama and Qwen2 require)."""
    return max(k for k in range(1, max(1, heads // 4) + 1) if heads % k == 0)


def build_big(family: str, params: float, tokenizer):
    """The seeded random-weight HF model (on the CPU, float32) and its parameter count."""
    from transformers import AutoModelForCausalLM

    config = big_config(family, params, len(tokenizer))
    torch.manual_seed(0)
    hf = AutoModelForCausalLM.from_config(config).eval()
    return hf, sum(p.numel() for p in hf.parameters())


def scored(model, prompts) -> np.ndarray:
    from interp.scoring import score_answers

    return score_answers(model, prompts).log_probs


def throughput(model, prompts, repeats: int) -> tuple[float, float]:
    """Best-of-``repeats`` seconds to score ``prompts`` and prompt tokens per second."""
    from interp.tokenization import encode_batch

    n_tokens = sum(len(ids) for ids in encode_batch(model.tokenizer, [p.text for p in prompts]))
    best = math.inf
    for _ in range(repeats):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t = time.perf_counter()
        scored(model, prompts)
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t)
    return best, n_tokens / best


def check(name: str, build, reference: np.ndarray, prompts, device: str, repeats: int) -> list[dict]:
    """One row per dtype: ``build(device, dtype)`` scored against ``reference``."""
    rows = []
    for dtype in ("float32", "bfloat16"):
        if torch.cuda.is_available():
            torch.cuda.empty_cache()
            torch.cuda.reset_peak_memory_stats()
        t0 = time.perf_counter()
        model = build(device, dtype)
        load_s = time.perf_counter() - t0
        got = scored(model, prompts)
        diff = float(np.abs(got - reference).max())
        seconds, tok_s = throughput(model, prompts, repeats)
        peak = torch.cuda.max_memory_allocated() / 2**20 if torch.cuda.is_available() else None
        rows.append(
            {
                "model": name,
                "device": device,
                "dtype": dtype,
                "max_dlogp": diff,
                "tolerance": TOLERANCE[dtype],
                "pass": bool(diff <= TOLERANCE[dtype]),
                "load_s": load_s,
                "score_s": seconds,
                "prompt_tokens_per_s": tok_s,
                "peak_mib": peak,
            }
        )
        print(json.dumps(rows[-1]), flush=True)
        del model
    return rows


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", required=True, help="the JSON written (atomically)")
    ap.add_argument("--model", default="embedded", help="the trained model: 'embedded' or a directory")
    ap.add_argument("--family", default="llama", help=f"the big random model's family: {', '.join(FAMILIES)}")
    ap.add_argument("--big-params", type=float, default=1e9, help="its approximate parameter count (0: skip it)")
    ap.add_argument("--device", default="cuda", help="cuda, cpu (a dry run) or auto (cuda when present)")
    ap.add_argument("--prompts", type=int, default=32, help="prompts scored per model")
    ap.add_argument("--n-examples", type=int, default=20, help="examples per prompt for the trained model (20)")
    ap.add_argument("--repeats", type=int, default=3)
    args = ap.parse_args(argv)
    if args.family not in FAMILIES:
        ap.error(f"--family: {args.family!r} not supported; valid: {', '.join(FAMILIES)}")
    if args.n_examples < 1:
        ap.error(f"--n-examples: must be >= 1, got {args.n_examples}")
    if args.device not in ("auto", "cuda", "cpu"):
        ap.error(f"--device: {args.device!r}; valid: auto, cuda, cpu")
    if args.device == "auto":  # as experiments/gpu_train.py reads it
        args.device = "cuda" if torch.cuda.is_available() else "cpu"
    if args.device == "cuda" and not torch.cuda.is_available():
        ap.error("--device cuda: no GPU visible (torch.cuda.is_available() is False); use --device cpu for a dry run")
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False

    from interp.bridge import tl_version
    from interp.models import hooked_from_hf, load_model
    from interp.prompts import build_prompts
    from interp.tokenization import build_gpt2_tokenizer

    t_start = time.perf_counter()
    rows: list[dict] = []
    prompts = build_prompts("bias_add", None, n_examples=args.n_examples, n_prompts=args.prompts, seed=0)
    reference = scored(load_model(args.model, device="cpu"), prompts)
    rows += check(
        f"trained ({args.model})",
        lambda device, dtype: load_model(args.model, device=device, dtype=dtype),
        reference,
        prompts,
        args.device,
        args.repeats,
    )
    big = {}
    if args.big_params > 0:
        tokenizer = build_gpt2_tokenizer()
        hf, n_params = build_big(args.family, args.big_params, tokenizer)
        big = {"family": args.family, "parameters": n_params}
        op_prompts = build_prompts("operands", None, n_examples=10, n_prompts=args.prompts // 4 or 1, seed=0)
        cpu = hooked_from_hf(hf, tokenizer, model_id=f"random-{args.family}")
        big_reference = scored(cpu, op_prompts)
        del cpu
        name = f"random {args.family} {n_params / 1e9:.2f}B"
        rows += check(
            name,
            lambda device, dtype: hooked_from_hf(hf, tokenizer, model_id=name, device=device, dtype=dtype),
            big_reference,
            op_prompts,
            args.device,
            args.repeats,
        )
        if args.device == "cuda" and torch.cuda.device_count() >= 2:
            import tempfile

            with tempfile.TemporaryDirectory() as tmp:
                hf.save_pretrained(tmp)
                tokenizer.save_pretrained(tmp)
                rows += check(
                    f"{name}, n_devices=2",
                    lambda device, dtype: load_model(tmp, device=device, dtype=dtype, n_devices=2),
                    big_reference,
                    op_prompts,
                    args.device,
                    1,
                )
        else:
            rows.append({"model": f"{name}, n_devices=2", "skipped": f"{torch.cuda.device_count()} GPU(s) visible"})
    out = {
        "meta": {
            "device": torch.cuda.get_device_name(0) if args.device == "cuda" else "cpu",
            "torch": torch.__version__,
            "transformer_lens": tl_version(),
            "gpus": torch.cuda.device_count(),
            "seconds": time.perf_counter() - t_start,
        },
        "big_model": big,
        "rows": rows,
    }
    write_json(Path(args.out), out)
    print(f"wrote {args.out}: {sum(r.get('pass', True) for r in rows)}/{len(rows)} rows pass", flush=True)
    return 0 if all(r.get("pass", True) for r in rows) else 1


if __name__ == "__main__":
    raise SystemExit(main())
