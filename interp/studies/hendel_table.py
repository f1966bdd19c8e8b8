"""The literature's table (Hendel et al. 2023, docs/science.md §4): per task, zero-shot, task-vector and in-context
accuracy, and the KL from the in-context answer distribution to the patched one, for every shipped model.

Per (model, task, prompt seed ``s``), every prompt set held out from the others (:mod:`interp.heldout`):

- the task vector from ``n_vector`` in-context prompts of seed ``s``;
- the layer chosen on *dev* zero-shot queries (``held_out_seed(s, 1)``): the layer whose patched accuracy is highest
  (ties: higher mean P(correct), then the earlier layer), per way in (``modes``: Hendel et al.'s replacement, and the
  shift x ← x − μ + v);
- reported on *test* queries (``held_out_seed(s, 2)``): zero-shot accuracy, task-vector accuracy at the dev layer,
  in-context accuracy (``n_examples`` examples of the task, the same test queries), and KL(p_ICL ‖ p_TV), the mean
  over test queries of the KL between the next-token distributions (whole vocabulary) of the in-context prompt and
  the patched zero-shot one.

Accuracy is top-1 over the vocabulary of the answer's first token (Hendel et al.'s measure; for the two-digit model's
two-character answers, the first digit). Each cell is a mean over ``seeds`` with a 95% t-interval over seeds. Hendel
et al.'s own means over 18 tasks × 7 models are 0.13 (zero-shot), 0.74 (task vector), 0.84 (in-context).

Negative control (Dong et al. 2025, arXiv 2506.09048: a task vector acts as one demonstration, a rank-one map, so it
cannot carry a bijection whose pairs map both ways): the involution add5 (x ↔ x + 5 mod 10) is marked ``bijection``.
Every bias-add task is a permutation of the ten digits, and their argument predicts failure for all of them; the
hand-built model's retrieval tasks (select one position of a string) are the positive control, built to work.

>>> HendelConfig.quick().validate()
>>> HendelConfig(seeds=[]).validate()
Traceback (most recent call last):
...
ValueError: seeds: need a non-empty list of distinct seeds >= 0 below 10000, got []
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch
from scipy.stats import t as student_t

from interp.capture import token_ids
from interp.export import write_json
from interp.heldout import HELD_OUT_STRIDE, held_out_seed
from interp.hooks import check_layers, forward_logits
from interp.models import load_model, model_info, tokenizer_of
from interp.patching import patch
from interp.prompts import Prompt, build_prompts, zero_shot_prompts
from interp.studies.scaling import size_family
from interp.sweeps import check_sweep_mode, target_means, vector_cells
from interp.tasks import get_family, resolve_tasks
from interp.tokenization import pad_id
from interp.vectors import task_vector

STUDY = "hendel_table"
#: Hendel et al. (2023), mean over 18 tasks × 7 models: zero-shot, task vector, in-context accuracy.
HENDEL_MEANS = {"zero_shot": 0.13, "task_vector": 0.74, "icl": 0.84}
#: Tasks in Dong et al.'s sense of a bijection that maps both ways (an involution): the negative control.
BIJECTIONS = {("bias_add", "add5")}


def default_models() -> list[list]:
    """(spec, family, tasks, n_examples) of every shipped model: the embedded one, the size family, the two-digit
    model and the hand-built one."""
    bias = ["add1", "add7", "add4", "add9"]
    return [
        ["embedded", "bias_add", ["add0", "add1", "add2", "add3", "add4", "add5", "add6", "add7", "add8", "add9"], 16],
        *[[path, "bias_add", bias, 16] for path in size_family()],
        ["two_digit", "two_digit_shift", ["shift1", "shift7", "shift4", "shift9"], 16],
        ["constructed:retrieval:K=4", "retrieval", ["pos1", "pos2", "pos3", "pos4"], 12],
    ]


@dataclass
class HendelConfig:
    """Models ``[spec, family, tasks, n_examples]``, prompts per set, prompt seeds, ways in."""

    models: list[list] = field(default_factory=default_models)
    n_vector: int = 40
    n_dev: int = 30
    n_test: int = 40
    seeds: list[int] = field(default_factory=lambda: [0, 1, 2])
    modes: list[str] = field(default_factory=lambda: ["replace", "shift"])
    batch_size: int = 32

    @classmethod
    def quick(cls) -> HendelConfig:
        return cls(
            models=[["constructed:retrieval:K=2", "retrieval", ["pos1", "pos2"], 8]], n_vector=6, n_dev=6, n_test=6,
            seeds=[0, 1],
        )  # fmt: skip

    def validate(self) -> None:
        if not self.models:
            raise ValueError("models: need at least one [spec, family, tasks, n_examples]")
        for m in self.models:
            if not isinstance(m, list | tuple) or len(m) != 4:
                raise ValueError(f"models: each entry is [spec, family, tasks, n_examples], got {m!r}")
            resolve_tasks(get_family(m[1]), list(m[2]))
        for name in ("n_vector", "n_dev", "n_test", "batch_size"):
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 2:
                raise ValueError(f"{name}: must be an integer >= 2, got {v!r}")
        s = self.seeds
        if not s or len(set(s)) != len(s) or any(not isinstance(x, int) or not 0 <= x < HELD_OUT_STRIDE for x in s):
            raise ValueError(f"seeds: need a non-empty list of distinct seeds >= 0 below {HELD_OUT_STRIDE}, got {s!r}")
        if not self.modes:
            raise ValueError("modes: need at least one way in")
        for m in self.modes:
            check_sweep_mode(m)


@torch.inference_mode()
def next_token_log_probs(model, prompts: list[Prompt], intervention=None, batch_size: int = 32) -> np.ndarray:
    """``Float[ndarray, "prompt vocab"]``: log P(next token) at each prompt's last position, with ``intervention``
    (one :class:`~interp.interventions.Intervention` at each prompt's last token) in force; hooks removed on exit."""
    ids = token_ids(model, prompts)
    pad = pad_id(tokenizer_of(model))
    out = []
    for start in range(0, len(ids), batch_size):
        chunk = ids[start : start + batch_size]
        width = max(len(x) for x in chunk)
        tokens = torch.tensor([x + [pad] * (width - len(x)) for x in chunk])
        last = [len(x) - 1 for x in chunk]
        if intervention is None:
            logits = forward_logits(model, tokens)
        else:
            with patch(model, intervention, positions=last):
                logits = forward_logits(model, tokens)
        rows = logits[torch.arange(len(chunk)), torch.tensor(last)].double()
        out.append(torch.log_softmax(rows, dim=-1).cpu().numpy())
    return np.concatenate(out)


def _first_token(model, prompts: list[Prompt], task: str) -> np.ndarray:
    """Id of the first token of ``task``'s answer after each prompt (answers tokenised as they follow the prompt)."""
    full = token_ids(model, [p.text + p.answer(task) for p in prompts])
    return np.array([f[len(t)] for f, t in zip(full, token_ids(model, prompts), strict=True)])


def _accuracy(logp: np.ndarray, target: np.ndarray) -> float:
    return float(np.mean(logp.argmax(axis=1) == target))


def _kl(logp_p: np.ndarray, logp_q: np.ndarray) -> float:
    """Mean over rows of KL(p ‖ q) (natural log)."""
    return float(np.mean(np.sum(np.exp(logp_p) * (logp_p - logp_q), axis=1)))


def measure_task(model, family: str, task: str, n_examples: int, config: HendelConfig, seed: int) -> dict[str, Any]:
    """One (model, task, seed) row: zero-shot, task-vector (per mode, at the dev layer) and in-context accuracy on the
    test queries, and KL(p_ICL ‖ p_TV)."""
    fam = get_family(family)
    names = fam.task_names
    layers = check_layers(model, None)
    v = task_vector(model, family, task, n_prompts=config.n_vector, n_examples=n_examples, seed=seed)
    dev = zero_shot_prompts(fam, names, n_prompts=config.n_dev, seed=held_out_seed(seed, 1))
    test = zero_shot_prompts(fam, names, n_prompts=config.n_test, seed=held_out_seed(seed, 2))
    icl = build_prompts(
        fam, names, counts=[n_examples if t == task else 0 for t in names], n_prompts=config.n_test,
        seed=held_out_seed(seed, 2),
    )  # fmt: skip
    dev_target, test_target = _first_token(model, dev, task), _first_token(model, test, task)
    zs = next_token_log_probs(model, test, batch_size=config.batch_size)
    in_context = next_token_log_probs(model, icl, batch_size=config.batch_size)
    row: dict[str, Any] = {
        "zero_shot": _accuracy(zs, test_target),
        "icl": _accuracy(in_context, _first_token(model, icl, task)),
        "kl_zero_shot": _kl(in_context, zs),
    }
    for mode in config.modes:
        scores = []
        dev_means = target_means(model, dev, layers, v.hook, config.batch_size) if mode == "shift" else None
        for i, iv in enumerate(vector_cells(model, v, layers, mode, dev_means)):
            logp = next_token_log_probs(model, dev, iv, config.batch_size)
            p = float(np.exp(logp[np.arange(len(dev)), dev_target]).mean())
            scores.append((_accuracy(logp, dev_target), p, -i))
        best = max(range(len(layers)), key=lambda i: scores[i])
        test_means = target_means(model, test, [layers[best]], v.hook, config.batch_size) if mode == "shift" else None
        (iv,) = vector_cells(model, v, [layers[best]], mode, test_means)
        patched = next_token_log_probs(model, test, iv, config.batch_size)
        row[mode] = {
            "layer": layers[best],
            "dev_accuracy": scores[best][0],
            "task_vector": _accuracy(patched, test_target),
            "kl": _kl(in_context, patched),
        }
    return row


def _ci(values: list[float], upper: float = 1.0) -> dict[str, Any]:
    """Mean over seeds and its 95% t-interval, clipped to the measure's range [0, ``upper``] (``None`` with one
    seed)."""
    x = np.asarray(values, dtype=float)
    if len(x) < 2:
        return {"mean": float(x.mean()), "ci95": None, "per_seed": x.tolist()}
    half = float(student_t.ppf(0.975, len(x) - 1) * x.std(ddof=1) / np.sqrt(len(x)))
    low, high = max(0.0, float(x.mean() - half)), min(upper, float(x.mean() + half))
    return {"mean": float(x.mean()), "ci95": [low, high], "per_seed": x.tolist()}


def summarise(rows: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """Per-seed rows of one task → each column's mean over seeds with its 95% t-interval."""
    out = {key: _ci([r[key] for r in rows]) for key in ("zero_shot", "icl")}
    out["kl_zero_shot"] = _ci([r["kl_zero_shot"] for r in rows], upper=np.inf)
    for mode in modes:
        out[mode] = {
            "task_vector": _ci([r[mode]["task_vector"] for r in rows]),
            "kl": _ci([r[mode]["kl"] for r in rows], upper=np.inf),
            "layers": [r[mode]["layer"] for r in rows],
        }
    return out


def _mean_rows(rows: list[dict[str, Any]], modes: list[str]) -> dict[str, Any]:
    """One seed's rows of several tasks → their mean (a row of the same shape)."""
    out: dict[str, Any] = {k: float(np.mean([r[k] for r in rows])) for k in ("zero_shot", "icl", "kl_zero_shot")}
    for mode in modes:
        out[mode] = {
            "task_vector": float(np.mean([r[mode]["task_vector"] for r in rows])),
            "kl": float(np.mean([r[mode]["kl"] for r in rows])),
            "layer": None,
        }
    return out


def run(config: HendelConfig, out_dir: str | Path, *, progress: bool = False) -> dict[str, Any]:
    """Every model and task of ``config``; writes ``out_dir/hendel_table.json``."""
    config.validate()
    start = time.perf_counter()
    models = []
    for spec, family, tasks, n_examples in config.models:
        model = load_model(spec, device="cpu")
        table, per_seed = {}, []
        for task in tasks:
            rows = [measure_task(model, family, task, n_examples, config, s) for s in config.seeds]
            per_seed.append(rows)
            table[task] = summarise(rows, config.modes) | {"bijection": (family, task) in BIJECTIONS}
        by_seed = [_mean_rows([rows[i] for rows in per_seed], config.modes) for i in range(len(config.seeds))]
        models.append(
            {
                "model": model_info(model).model_id,
                "spec": str(spec),
                "family": family,
                "n_examples": n_examples,
                "tasks": table,
                "mean_over_tasks": summarise(by_seed, config.modes),
            }
        )
        if progress:
            print(f"{STUDY}: {spec} done after {time.perf_counter() - start:.0f} s")
    numbers = {
        "study": STUDY,
        "config": {k: getattr(config, k) for k in config.__dataclass_fields__},
        "hendel_means": HENDEL_MEANS,
        "models": models,
        "runtime_s": round(time.perf_counter() - start, 1),
    }
    path = write_json(Path(out_dir) / f"{STUDY}.json", numbers)
    return {"numbers": numbers, "paths": {"json": str(path)}}


__all__ = ["HENDEL_MEANS", "HendelConfig", "measure_task", "next_token_log_probs", "run"]
