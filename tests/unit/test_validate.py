"""Every public function refuses a bad argument up front, with a typed error that names it (issue 36).

The functions are enumerated, not listed: every callable in ``interp.__all__`` and every public function of
:mod:`interp.heads` and :mod:`interp.nulls`. Each needs a valid call in :data:`VALID` and, for every one of its
parameters, a kind in :data:`KIND` (per parameter name, or per function where a name means something else) whose
table of bad values (:data:`BAD`: empty, wrong type, NaN, out of range, wrong width) is fed to it one at a time with
the other arguments valid. Each bad value must raise :class:`interp.validate.ArgumentError` (a ``ValueError``, or
its ``TypeError`` subclass) naming that parameter, with no work started: no forward pass of the model (a pre-hook on
its embedding counts them), no prompt built, no weights read. A new public function, or a new parameter, without a
row here fails :func:`test_every_public_function_has_a_table`.
"""

from __future__ import annotations

import inspect
import math
from collections.abc import Callable

import numpy as np
import pytest
import torch

import interp
import interp.heads as heads
import interp.models as models
import interp.nulls as nulls
import interp.prompts as prompts_module
from interp.prompts import build_prompts
from interp.results import HeadMap
from interp.validate import ArgumentError, ArgumentTypeError, check_count, check_probability, check_tensor
from interp.vectors import TaskVector

NAN = float("nan")
FAMILY, A, B, C = "operands", "copy_first", "sum", "copy_second"


def public_callables() -> dict[str, Callable]:
    """``name → callable`` for interp.__all__ (modules aside) and the public functions of heads and nulls."""
    out = {}
    for name in interp.__all__:
        obj = getattr(interp, name)
        if callable(obj) and not inspect.ismodule(obj):
            out[name] = obj
    for module in (heads, nulls):
        for name, obj in vars(module).items():
            if inspect.isfunction(obj) and obj.__module__ == module.__name__ and not name.startswith("_"):
                out[f"{module.__name__.split('.')[-1]}.{name}"] = obj
    return out


#: Public names with nothing to check, and why.
EXEMPT = {
    "Prompt": "a value object that build_prompts makes; the functions that take prompts check them",
    "Result": "the base class of result values (its from_dict/load are tested below)",
    "WeightsNotFoundError": "an exception class",
    "ArgumentError": "an exception class (the one these tests expect)",
    "ArgumentTypeError": "an exception class (the one these tests expect)",
    "family_names": "takes no argument",
    "remembering": "takes no argument",
    "Claim": "a claim record the studies build from a test's numbers (its own refusals: tests/unit/test_claims.py)",
    "ActivationStore": "opened by ActivationStore.open(folder), whose bad folders tests/unit/test_store.py refuses",
}


class Ctx:
    """What the valid calls are built from (one tiny model, its vectors, prompts and a head map)."""

    def __init__(self, model):
        self.model = model
        self.d = model.cfg.d_model
        kw = dict(n_prompts=3, n_examples=3, seed=1)
        self.va, self.vb, self.vc = (interp.task_vector(model, FAMILY, t, **kw) for t in (A, B, C))
        held = dict(kw, seed=interp.held_out_seed(1))  # a target held out from the basis's prompts (interp.heldout)
        self.target = interp.task_vector(model, FAMILY, [A, B], proportions=[0.5, 0.5], **held)
        self.prompts = build_prompts(FAMILY, [A, B], n_examples=3, n_prompts=2, seed=0)
        n_heads = model.cfg.n_heads
        self.cie = HeadMap("cie", FAMILY, A, (0, 1), np.arange(2.0 * n_heads).reshape(2, n_heads),
                           np.zeros((2, n_heads, 2)), 3, 0)  # fmt: skip
        g = torch.Generator().manual_seed(0)
        self.rows = [torch.randn(6, self.d, generator=g) + i for i in range(4)]
        self.other_vector = TaskVector(torch.zeros(2, self.d + 1), torch.zeros(2, self.d + 1), "other", {},
                                       "resid_post", (0, 1))  # fmt: skip


#: name → the valid keyword arguments of one call (built from a Ctx).
VALID: dict[str, Callable[[Ctx], dict]] = {
    "Explorer": lambda c: dict(model=c.model, n_prompts=4, n_examples=3, seed=0, queries="zero_shot"),
    "explore": lambda c: dict(model=c.model, n_prompts=4, n_examples=3, seed=0, queries="zero_shot"),
    "Intervention": lambda c: dict(
        layer=0,
        mode="add",
        vector=torch.ones(c.d),
        alpha=1.0,
        basis=None,
        hook="resid_post",
        position=None,
        label="v",
        head=None,
    ),  # fmt: skip
    "TaskVector": lambda c: dict(
        mean=c.va.mean,
        std=c.va.std,
        model_id="m",
        processing={},
        hook="resid_post",
        layers=(0, 1),
        position="last_token",
        terms=(),
    ),  # fmt: skip
    "add_hooks": lambda c: dict(model=c.model, fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: act)]),
    "hooked": lambda c: dict(model=c.model, fwd_hooks=[("blocks.0.hook_resid_post", lambda act, hook: act)]),
    "add_patch": lambda c: dict(model=c.model, what=c.va, layer=0, positions=1, mode="replace", hook=None),
    "patch": lambda c: dict(model=c.model, what=c.va, layer=0, positions=1, mode="replace", hook=None),
    "best_layer": lambda c: dict(
        model=c.model,
        family=FAMILY,
        task=A,
        vector=c.va,
        n_prompts=2,
        seed=0,
        layers=[0],
        n_examples=3,
        mode="replace",
        batch_size=4,
        control=True,
        control_tolerance=0.05,
        queries="zero_shot",
        other_vector=None,
    ),  # fmt: skip
    "build_prompts": lambda c: dict(
        family=FAMILY,
        tasks=[A, B],
        proportions=[0.5, 0.5],
        counts=None,
        n_examples=4,
        n_prompts=2,
        seed=0,
        sampling="exact",
    ),  # fmt: skip
    "capture_resid": lambda c: dict(
        model=c.model,
        prompts=c.prompts,
        layers=[0],
        hook="resid_post",
        positions=None,
        batch_size=4,
        padding_side="right",
        max_tokens=8192,
    ),  # fmt: skip
    "check_simplex": lambda c: dict(values=[0.5, 0.5], n=2, name="proportions"),
    "convex": lambda c: dict(weights=[0.5, 0.5], vectors=[c.va, c.vb]),
    "decompose": lambda c: dict(
        target=c.target, basis=[c.vb, c.vc], method="lstsq", intercept=True, normalize=True, names=None, layers=None
    ),  # fmt: skip
    "get_family": lambda c: dict(name=FAMILY),
    "greedy_correct": lambda c: dict(model=c.model, prompts=c.prompts, task=A, batch_size=4),
    "hook_name": lambda c: dict(layer=0, hook="resid_post"),
    "kl_divergence": lambda c: dict(targets=[0.5, 0.5], probs=[[0.4, 0.4], [0.3, 0.6]], renormalize=False),
    "lambda_sweep": lambda c: dict(
        model=c.model,
        family=FAMILY,
        task_a=A,
        task_b=B,
        va=c.va,
        vb=c.vb,
        lambdas=[0.0, 1.0],
        layers=[0],
        n_prompts=2,
        n_examples=3,
        seed=0,
        mode="replace",
        mixed_reference=True,
        batch_size=4,
        queries="zero_shot",
    ),  # fmt: skip
    "load_model": lambda c: dict(
        spec="embedded",
        path=None,
        device="cpu",
        dtype="float32",
        processing=None,
        n_devices=1,
        engine="transformer_lens",
        remote=False,
        host=None,
    ),  # fmt: skip
    "measure_table": lambda c: dict(
        models=[c.model],
        families={FAMILY: [[0.5, 0.5]]},
        tasks={FAMILY: [A, B]},
        seeds=(0,),
        n_prompts=2,
        n_examples=3,
        include_newline=False,
        progress=False,
    ),  # fmt: skip
    "model_info": lambda c: dict(model=c.model),
    "null_vectors": lambda c: dict(
        model=c.model,
        family=FAMILY,
        task_a=A,
        task_b=B,
        third_task=C,
        n_prompts=2,
        n_examples=3,
        seed=0,
        hook="resid_post",
        layers=[0],
        batch_size=4,
        target_seed=None,
    ),  # fmt: skip
    "patched_scores": lambda c: dict(
        model=c.model,
        prompts=c.prompts,
        vector=c.va,
        layer=0,
        mode="replace",
        positions=None,
        batch_size=4,
        include_newline=False,
    ),  # fmt: skip
    "project_2d": lambda c: dict(
        acts=torch.randn(1, 6, 4, generator=torch.Generator().manual_seed(0)),
        labels=["a", "a", "b", "b", "c", "c"],
        method="lda",
        layers=None,
    ),  # fmt: skip
    "proportion_sweep": lambda c: dict(
        model=c.model,
        family=FAMILY,
        task_a=A,
        task_b=B,
        proportions=[0.0, 1.0],
        va=c.va,
        vb=c.vb,
        n_prompts=2,
        n_examples=3,
        seed=0,
        method="lstsq",
        intercept=True,
        hook="resid_post",
        layers=[0],
        batch_size=4,
    ),  # fmt: skip
    "run_studies": lambda c: dict(names=["mixture_sweep"], model=c.model, quick=True, out="unused", progress=False),
    "score_answers": lambda c: dict(model=c.model, prompts=c.prompts, include_newline=False, batch_size=4),
    "score_texts": lambda c: dict(
        model=c.model,
        prompts=["3@4=", "5@6="],
        answers=[["3", "7"], ["5", "11"]],
        include_newline=False,
        batch_size=4,
        labels=None,
    ),  # fmt: skip
    "simplex_sweep": lambda c: dict(
        model=c.model,
        family=FAMILY,
        tasks=[A, B, C],
        vectors=[c.va, c.vb, c.vc],
        resolution=1,
        weights=None,
        layers=[0],
        n_prompts=2,
        n_examples=3,
        seed=0,
        mode="replace",
        mixed_reference=True,
        batch_size=4,
        queries="zero_shot",
    ),  # fmt: skip
    "summarize": lambda c: dict(probs=[[0.4, 0.4], [0.3, 0.6]], targets=None, tasks=None, seed=0),
    "task_vector": lambda c: dict(
        model=c.model,
        family=FAMILY,
        task_or_tasks=A,
        proportions=None,
        n_prompts=2,
        n_examples=3,
        seed=0,
        hook="resid_post",
        layers=[0],
        batch_size=4,
    ),  # fmt: skip
    "zero_shot_prompts": lambda c: dict(family=FAMILY, tasks=[A, B], n_prompts=2, seed=0),
    "heads.head_outputs": lambda c: dict(model=c.model, prompts=c.prompts, layers=[0], batch_size=4),
    "heads.causal_indirect_effects": lambda c: dict(
        model=c.model, family=FAMILY, task=A, n_prompts=2, n_examples=3, seed=0, layers=[0], batch_size=4
    ),  # fmt: skip
    "heads.function_vector": lambda c: dict(
        model=c.model, family=FAMILY, task=A, cie=c.cie, top_k=2, n_prompts=2, n_examples=3, seed=0
    ),  # fmt: skip
    "heads.direct_logit_attribution": lambda c: dict(model=c.model, prompts=c.prompts, layers=[0], batch_size=4),
    "heads.mean_ablation_effects": lambda c: dict(model=c.model, prompts=c.prompts, layers=[0], batch_size=4),
    "heads.attention_scores": lambda c: dict(model=c.model, seq_len=4, n_seqs=2, seed=0),
    "capture_to": lambda c: dict(
        store="never-written",
        model=c.model,
        prompts=c.prompts,
        layers=[0],
        hooks=["resid_post"],
        positions=None,
        labels=None,
        shard_size=2,
        dtype="float32",
        batch_size=4,
        capture=None,
        progress=None,
    ),  # fmt: skip
    "held_out_seed": lambda c: dict(seed=0, k=1),
    "page_trend": lambda c: dict(
        values=np.arange(12.0).reshape(3, 4), metric="m", sizes=None, blocks=None, alpha=0.05, power_sims=0, seed=0
    ),  # fmt: skip
    "heads.cie_prompts": lambda c: dict(family=FAMILY, task=A, n_prompts=2, n_examples=3, seed=0),
    "heads.logit_components": lambda c: dict(model=c.model, prompts=c.prompts, batch_size=4, heads_only=False),
    "heads.final_norm_linear": lambda c: dict(model=c.model, x=torch.zeros(2, 3, c.d), scale=torch.ones(2)),
    "heads.unembedding": lambda c: dict(model=c.model),
    "heads.head_out_weights": lambda c: dict(model=c.model, layer=0),
    "nulls.projection_null": lambda c: dict(
        mixed=c.rows[0],
        a=c.rows[1],
        b=c.rows[2],
        reference=c.rows[3],
        n_permutations=10,
        seed=0,
        paired=None,
        power_sims=0,
    ),  # fmt: skip
    "nulls.residual_noise_floor": lambda c: dict(
        mixed=c.rows[0], a=c.rows[1], b=c.rows[2], n_splits=10, seed=0, paired=None, power_sims=0
    ),  # fmt: skip
    "nulls.residual_simulator": lambda c: dict(mixed=c.rows[0], a=c.rows[1], b=c.rows[2], paired=None, seed=0),
    "nulls.residual_direction": lambda c: dict(mixed_mean=c.rows[0][0], a=c.rows[1][0], b=c.rows[2][0]),
    "nulls.ablation_null": lambda c: dict(
        model=c.model,
        mixed_prompts=c.prompts,
        residual=torch.ones(c.d),
        layer=0,
        made_from=[],
        hook="resid_post",
        n_random=2,
        seed=0,
        batch_size=4,
        power_sims=0,
    ),  # fmt: skip
    "nulls.steering_null": lambda c: dict(
        model=c.model,
        queries=c.prompts,
        task=A,
        vector=c.va,
        layer=0,
        mode="shift",
        n_random=2,
        seed=0,
        batch_size=4,
        power_sims=0,
    ),  # fmt: skip
}

# ---- bad values by kind ---------------------------------------------------------------------------------------

#: kind → bad values (a callable of the Ctx where the value depends on the model).
BAD: dict[str, Callable[[Ctx], list]] = {
    "model": lambda c: ["embedded", None, 3, c.va],
    "prompts": lambda c: [[], "3@4=", [1, 2], None, [c.prompts[0], "3@4="]],
    "family": lambda c: ["nope", 3, None, ""],
    "task": lambda c: ["nope", 3, None, ""],
    "tasks": lambda c: [[], ["nope"], [3], 5, [A, A]],
    "count": lambda c: [0, -1, 1.5, "3", True, None, NAN],
    "count0": lambda c: [-1, 1.5, "3", True, None, NAN],  # 0 is allowed (zero-shot prompts)
    "n_examples": lambda c: [0, -1, 1.5, "3", True, None, 10**6],  # in-context prompts: >= 1 and within the context
    "n_examples0": lambda c: [-1, 1.5, "3", True, None, 10**6],
    "seed": lambda c: [-1, 1.5, "0", True, None],
    "batch_size": lambda c: [0, -2, 2.5, True, "8", None],
    "layer": lambda c: [-1, 99, 1.5, "0", None],
    "layers": lambda c: [[], [99], [0, 0], "0", [1.5], 7],
    "hook": lambda c: ["resid", 3, None],
    "hook_or_none": lambda c: ["resid", 3],
    "mode": lambda c: ["swap", 3, None],
    "flag": lambda c: ["yes", 1, None, NAN],
    "probability": lambda c: [-0.1, 1.5, NAN, "x", None],
    "unit_numbers": lambda c: ["abc", [], [1.5], [NAN], [[0.5]], 0.5, None],
    "simplex": lambda c: ["ab", [0.5, 0.6], [NAN, 1.0], [1.0, 0.0, 0.0], [-0.5, 1.5], 0.5],
    "queries_kind": lambda c: ["bogus", 3, None],
    "choice": lambda c: ["bogus", 3, None],
    "task_vector": lambda c: [torch.zeros(c.d), None, c.other_vector, "v"],
    "task_vector_or_none": lambda c: [torch.zeros(c.d), c.other_vector, "v"],
    "patch_what": lambda c: [
        torch.zeros(c.d + 1),
        torch.full((c.d,), NAN),
        torch.zeros(c.d, dtype=torch.complex64),
        "x",
        None,
        torch.zeros(c.d, device="meta"),
    ],  # fmt: skip
    "residual": lambda c: [
        torch.zeros(c.d + 1),
        torch.full((c.d,), NAN),
        torch.zeros(c.d, dtype=torch.complex64),
        torch.zeros(c.d, device="meta"),
        torch.zeros(2, c.d),
        [0.0] * c.d,
        torch.zeros(c.d),
        None,
    ],  # fmt: skip
    "vector": lambda c: [
        torch.zeros(c.d + 1),
        torch.full((c.d,), NAN),
        torch.zeros(c.d, dtype=torch.complex64),
        torch.zeros(c.d, device="meta"),
        torch.zeros(2, c.d),
        [0.0] * c.d,
        None,
    ],  # fmt: skip
    "matrix": lambda c: [
        torch.zeros(6),
        torch.full((6, c.d), NAN),
        torch.zeros(6, c.d + 1),
        [[0.0] * c.d] * 6,
        torch.zeros(1, c.d),
        torch.zeros(6, c.d, dtype=torch.complex64),
        None,
    ],  # fmt: skip
    "cie": lambda c: [None, {}, HeadMap("cie", FAMILY, A, (0, 1), np.zeros((2, 9)), np.zeros((2, 9, 2)), 3, 0)],
    "top_k": lambda c: [0, -1, 1.5, "3", True, None],
    "seq_len": lambda c: [0, -3, 1.5, "4", 10**6],
    "positions_one": lambda c: [[999, 999], "a", [1.5, 2], 3],  # one per prompt
    "positions_batch": lambda c: [-1, "a", [[1]], 1.5],  # an int or one per sequence
    "fwd_hooks": lambda c: [[("nope", lambda act, hook: act)], "x", [(1, 2)], 3, None],
    "lambdas": lambda c: ["abc", [], [1.5], [NAN], [[0.5]], None],
    "weights_grid": lambda c: [np.zeros((2, 2)), "ab", np.full((1, 3), NAN)[0], []],
    "vectors": lambda c: [[], [torch.zeros(c.d)], "x", [c.va], None],
    "acts": lambda c: [np.full((1, 6, 4), NAN), "x", np.zeros((1, 1, 6, 4)), None],
    "labels": lambda c: [["a"], 3, None],
    "array_target": lambda c: [np.full((2, c.d), NAN), "x", np.zeros((3, 5)), None],
    "basis_vectors": lambda c: [[], [np.full((2, c.d), NAN)], "x", [np.zeros((3, 5))], None],
    "names": lambda c: [["only one"], 3],
    "decompose_layers": lambda c: [[0, 1, 2], "0", [-1]],
    "probs": lambda c: [[[NAN, 0.5]], "x", [0.5, 0.5], [[-0.5, 0.5]], [[0.9, 0.9]], None],
    "targets": lambda c: [[NAN, 1.0], [0.2, 0.2], [1.0], "x"],
    "task_names": lambda c: [["only one"], 3],
    "spec": lambda c: [3, None, ""],
    "path": lambda c: [3],
    "device": lambda c: ["tpu", 3, None],
    "dtype": lambda c: ["float8", 3, None],
    "processing": lambda c: ["x", {}],
    "models": lambda c: [[], "embedded", [3], None],
    "families": lambda c: [{}, {FAMILY: [[0.5, 0.6]]}, {"nope": [[1.0]]}, "x", None],
    "tasks_map": lambda c: ["x", 3],
    "seeds": lambda c: [[-1], "0", [], None],
    "studies": lambda c: [["nope"], "mixture_sweep", 3],
    "out": lambda c: [3, None],
    "model_or_spec": lambda c: [3, None],
    "simplex_n": lambda c: [0, -1, 1.5, "2"],
    "mean_std": lambda c: [torch.full((2, c.d), NAN), torch.zeros(c.d), [[0.0] * c.d] * 2, None],
    "model_id": lambda c: [3, None],
    "vector_layers": lambda c: [(0,), "0", (0, -1)],
    "int_ge0": lambda c: [-1, 1.5, "0", True],
    "alpha": lambda c: [NAN, math.inf, "x", None],
    "basis": lambda c: [torch.eye(c.d)[:1]],  # a basis with mode "add"
    "head": lambda c: [0, -1],  # a head with a residual hook point
    "label": lambda c: [3, None],
    "counts": lambda c: [[1], [-1, 2], "ab", [1.5, 2]],
    "explorer_n_prompts": lambda c: [1, 0, 1.5, "3", None],
    "explorer_n_examples": lambda c: [0, 1.5, "3", 10**6],
    "n_devices": lambda c: [0, 1.5, "1"],
    "max_tokens": lambda c: [0, -5, 1.5, "8"],
}

#: parameter name → kind (for every function that has it).
KIND = {
    "model": "model", "prompts": "prompts", "mixed_prompts": "prompts", "family": "family", "task": "task",
    "task_a": "task", "task_b": "task", "third_task": "task", "tasks": "tasks", "task_or_tasks": "tasks",
    "n_prompts": "count", "n_examples": "n_examples", "n_permutations": "count", "n_splits": "count",
    "n_random": "count", "n_seqs": "count", "resolution": "count", "seed": "seed", "batch_size": "batch_size",
    "layer": "layer", "layers": "layers", "hook": "hook", "mode": "mode", "include_newline": "flag",
    "control": "flag", "mixed_reference": "flag", "intercept": "flag", "normalize": "flag", "renormalize": "flag",
    "progress": "flag", "quick": "flag", "control_tolerance": "probability", "lambdas": "lambdas",
    "queries": "queries_kind", "method": "choice", "padding_side": "choice", "sampling": "choice",
    "vector": "task_vector", "va": "task_vector", "vb": "task_vector", "vectors": "vectors", "cie": "cie",
    "top_k": "top_k", "seq_len": "seq_len", "fwd_hooks": "fwd_hooks", "residual": "residual",
    "mixed": "matrix", "a": "matrix", "b": "matrix", "reference": "matrix", "mixed_mean": "vector",
    "acts": "acts", "labels": "labels", "target": "array_target", "basis": "basis_vectors", "names": "names",
    "probs": "probs", "targets": "targets", "spec": "spec", "path": "path", "device": "device", "dtype": "dtype",
    "processing": "processing", "n_devices": "n_devices", "models": "models", "families": "families",
    "seeds": "seeds", "out": "out", "weights": "simplex", "values": "simplex", "what": "patch_what",
    "positions": "positions_one", "max_tokens": "max_tokens", "counts": "counts", "proportions": "simplex",
    "answers": "answers",
}  # fmt: skip
#: (function, parameter) → kind, where the name means something else there (or takes None).
KIND_OF = {
    ("build_prompts", "n_examples"): "count0",
    ("build_prompts", "tasks"): "tasks_no_none",
    ("zero_shot_prompts", "tasks"): "tasks_no_none",
    ("task_vector", "n_examples"): "n_examples0",
    ("measure_table", "n_examples"): "count0",
    ("measure_table", "tasks"): "tasks_map",
    ("measure_table", "seeds"): "seeds",
    ("measure_table", "model"): "model",
    ("summarize", "tasks"): "task_names",
    ("Explorer", "n_prompts"): "explorer_n_prompts",
    ("explore", "n_prompts"): "explorer_n_prompts",
    ("Explorer", "n_examples"): "explorer_n_examples",
    ("explore", "n_examples"): "explorer_n_examples",
    ("add_patch", "hook"): "hook_or_none",
    ("patch", "hook"): "hook_or_none",
    ("add_patch", "positions"): "positions_batch",
    ("patch", "positions"): "positions_batch",
    ("proportion_sweep", "proportions"): "unit_numbers",
    ("proportion_sweep", "va"): "task_vector_or_none",
    ("proportion_sweep", "vb"): "task_vector_or_none",
    ("simplex_sweep", "weights"): "weights_grid",
    ("decompose", "layers"): "decompose_layers",
    ("project_2d", "layers"): "decompose_layers",
    ("check_simplex", "n"): "simplex_n",
    ("check_simplex", "name"): None,  # the label the error uses
    ("nulls.steering_null", "queries"): "prompts",
    ("run_studies", "names"): "studies",
    ("run_studies", "model"): "model_or_spec",
    ("patched_scores", "vector"): "patch_what",
    ("patched_scores", "mode"): "mode",
    ("Intervention", "basis"): "basis",
    ("Intervention", "layer"): "int_ge0",
    ("Intervention", "position"): "int_ge0",
    ("Intervention", "alpha"): "alpha",
    ("Intervention", "head"): "head",
    ("Intervention", "label"): "label",
    ("TaskVector", "mean"): "mean_std",
    ("TaskVector", "std"): "mean_std",
    ("TaskVector", "model_id"): "model_id",
    ("TaskVector", "layers"): "vector_layers",
    ("TaskVector", "processing"): None,  # a record of how the weights were processed, written by task_vector
    ("TaskVector", "position"): None,  # the position rule's name, a record
    ("TaskVector", "terms"): None,  # the provenance record arithmetic writes
    ("heads.attention_scores", "n_seqs"): "count",
    ("hook_name", "layer"): "int_ge0",
    ("get_family", "name"): "family",
}
BAD["tasks_no_none"] = lambda c: [[], ["nope"], [3], 5, [A, A]]
#: score_texts: strings the model cannot read (its tokenizer's unknown token), candidates given twice, and shapes.
BAD["texts"] = lambda c: [[], "3@4=", [1, 2], None, ["3@€=", "5@6="]]
BAD["answers"] = lambda c: [[["3"]], "ab", [["3", "3"], ["5", "11"]], [["", "7"], ["5", "11"]],
                            [["€", "7"], ["5", "11"]], [["3", "7"], ["5"]], None]  # fmt: skip
KIND_OF[("score_texts", "prompts")] = "texts"
#: The first of several arguments of one width sets the width: a wrong width is the others' mismatch, named there.
BAD["matrix_first"] = lambda c: BAD["matrix"](c)[:2] + BAD["matrix"](c)[3:]
BAD["vector_first"] = lambda c: BAD["vector"](c)[1:]
BAD["array_first"] = lambda c: [np.full((2, c.d), NAN), "x", None, np.zeros((2, 2, 2, 2))]
BAD["texts_or_prompts"] = lambda c: [[], "3@4=", [1, 2], None, ["3@€="]]
BAD["task_vectors"] = lambda c: [[], [torch.zeros(c.d)], "x", None]  # convex: one per weight, checked there
for key, kind in {
    ("nulls.projection_null", "mixed"): "matrix_first",
    ("nulls.residual_noise_floor", "mixed"): "matrix_first",
    ("nulls.residual_direction", "mixed_mean"): "vector_first",
    ("Intervention", "vector"): "vector_first",
    ("decompose", "target"): "array_first",
    ("capture_resid", "prompts"): "texts_or_prompts",
    ("convex", "vectors"): "task_vectors",
}.items():
    KIND_OF[key] = kind
KIND_OF[("score_texts", "labels")] = "names"
KIND_OF[("heads.cie_prompts", "n_examples")] = "count"  # no model here to bound it by its context
KIND["heads_only"] = "flag"
KIND_OF[("heads.final_norm_linear", "x")] = "norm_parts"
KIND_OF[("heads.final_norm_linear", "scale")] = "norm_scale"
BAD["norm_parts"] = lambda c: [torch.full((2, 3, c.d), NAN), "x", torch.zeros(2, 3, c.d + 1), torch.zeros(2, c.d), None]
BAD["norm_scale"] = lambda c: [torch.zeros(2), torch.ones(3), torch.full((2,), NAN), "x", None]
#: load_model's engine: a name it has; remote: only on the nnsight engine (the valid call runs the default one).
KIND_OF[("load_model", "engine")] = "choice"
KIND_OF[("load_model", "remote")] = "remote"
KIND_OF[("load_model", "host")] = "host"
BAD["remote"] = lambda c: [True, "local", "yes", 3]
BAD["host"] = lambda c: [3, ""]
KIND_OF[("run_studies", "out")] = "out_or_none"  # None: figures/ (figures-quick/ for a quick run)
BAD["out_or_none"] = lambda c: [3]
#: capture_to (issue 39): the store folder, its hooks, storage dtype, shard size, positions, labels and callables.
KIND_OF[("capture_to", "store")] = "store_folder"
BAD["store_folder"] = lambda c: [3, None, ""]
KIND_OF[("capture_to", "hooks")] = "hooks"
BAD["hooks"] = lambda c: [[], ["resid"], ["resid_post", "resid_post"], 3]
KIND_OF[("capture_to", "dtype")] = "choice"
KIND_OF[("capture_to", "shard_size")] = "count"
KIND_OF[("capture_to", "positions")] = "store_positions"
BAD["store_positions"] = lambda c: [[0], "a", [1.5, 2], True]
KIND_OF[("capture_to", "labels")] = "store_labels"
BAD["store_labels"] = lambda c: [["a"], 3, [1, 2]]
KIND_OF[("capture_to", "capture")] = "callable_or_none"
KIND_OF[("capture_to", "progress")] = "callable_or_none"
BAD["callable_or_none"] = lambda c: [3, "x"]
#: Issue 37: held-out targets, paired rows, power simulations, the trend test's table and labels.
KIND["power_sims"] = "int_ge0"
KIND["paired"] = "flag_or_none"
BAD["flag_or_none"] = lambda c: ["yes", 1, NAN]
KIND["made_from"] = "made_from"
BAD["made_from"] = lambda c: ["x", [1, 2], None, 3]
KIND["target_seed"] = "seed_or_none"
BAD["seed_or_none"] = lambda c: [-1, 1.5, "0", True, 0]  # 0: the basis's own seed
KIND["other_vector"] = "task_vector_or_none"
KIND_OF[("held_out_seed", "k")] = "count"
KIND_OF[("page_trend", "values")] = "trend_table"
BAD["trend_table"] = lambda c: [np.full((3, 4), NAN), "x", np.zeros((1, 4)), np.zeros((3, 2)), None]
KIND_OF[("page_trend", "metric")] = "label"
KIND_OF[("page_trend", "sizes")] = "trend_labels"
KIND_OF[("page_trend", "blocks")] = "trend_labels"
BAD["trend_labels"] = lambda c: [["a"], "ab", 3]
KIND_OF[("page_trend", "alpha")] = "level"
BAD["level"] = lambda c: [0.0, 1.0, -0.1, NAN, "x", None]
KIND_OF[("nulls.residual_simulator", "mixed")] = "matrix_first"
#: (function, parameter) → the name its errors use, where it differs.
ARGUMENT = {("get_family", "name"): "family", ("check_simplex", "values"): "proportions"}


def kind_of(fname: str, param: str) -> str | None:
    if (fname, param) in KIND_OF:
        return KIND_OF[(fname, param)]
    return KIND.get(param, "missing")


def params_of(f: Callable) -> list[str]:
    return [p for p in inspect.signature(f).parameters if p not in ("self", "args", "kwargs")]


def test_every_public_function_has_a_table():
    """A public function, or a parameter of one, without a valid call and a kind of bad values fails here."""
    missing = []
    for name, f in public_callables().items():
        if name in EXEMPT:
            continue
        if name not in VALID:
            missing.append(f"{name}: no valid call in VALID")
            continue
        missing += [f"{name}({p}): no kind in KIND/KIND_OF" for p in params_of(f) if kind_of(name, p) == "missing"]
        missing += [f"{name}({p}): kind {kind_of(name, p)!r} has no BAD values" for p in params_of(f)
                    if kind_of(name, p) not in (None, "missing") and kind_of(name, p) not in BAD]  # fmt: skip
    assert not missing, "\n".join(missing)


@pytest.fixture(scope="module")
def ctx(tiny_char_model):
    return Ctx(tiny_char_model)


@pytest.fixture
def spies(ctx, monkeypatch):
    """Counters of work started: forward passes (the embedding's pre-hook), prompts built, weights read."""
    work = {"forward": 0, "prompt": 0, "weights": 0}
    handle = ctx.model.embed.register_forward_pre_hook(lambda *_: work.__setitem__("forward", work["forward"] + 1))
    one_prompt = prompts_module._one_prompt

    def counted(*args, **kwargs):
        work["prompt"] += 1
        return one_prompt(*args, **kwargs)

    def no_weights(*args, **kwargs):
        work["weights"] += 1
        raise AssertionError("weights were read")

    monkeypatch.setattr(prompts_module, "_one_prompt", counted)
    monkeypatch.setattr(models, "_hf_from_dir", no_weights)
    yield work
    handle.remove()


def names_argument(err: ArgumentError, fname: str, param: str) -> bool:
    want = ARGUMENT.get((fname, param), param)
    return err.argument == want or err.argument.startswith((f"{want}[", f"{want}."))


@pytest.mark.parametrize("fname", sorted(set(public_callables()) - set(EXEMPT)))
def test_bad_values_are_refused_by_name_before_any_work(fname, ctx, spies, tmp_path):
    f = public_callables()[fname]
    valid = VALID[fname](ctx)
    assert set(valid) == set(params_of(f)), f"VALID[{fname!r}] must give every parameter"
    failures = []
    n_cases = 0
    for param in params_of(f):
        kind = kind_of(fname, param)
        if kind is None:
            continue
        for bad in BAD[kind](ctx):
            n_cases += 1
            call = {**valid, param: bad}
            if fname == "run_studies":
                call["out"] = str(tmp_path / "out") if param != "out" else bad
            if fname == "capture_to" and param != "store":  # nothing may be written: a folder that must stay absent
                call["store"] = str(tmp_path / "store")
            try:
                result = f(**call)
                if inspect.isgenerator(result) or hasattr(result, "__enter__"):  # a context manager: enter it
                    with result:
                        pass
            except ArgumentError as err:
                if not names_argument(err, fname, param):
                    failures.append(f"{param}={bad!r}: error names {err.argument!r}: {err}")
            except Exception as err:  # noqa: BLE001 - any other error is the finding
                failures.append(f"{param}={_short(bad)}: {type(err).__name__} (not a typed error): {err}")
            else:
                failures.append(f"{param}={_short(bad)}: accepted")
            if any(spies.values()):
                failures.append(f"{param}={_short(bad)}: work started before the refusal: {dict(spies)}")
                spies.update(forward=0, prompt=0, weights=0)
    assert n_cases or fname in ("family_names",), f"{fname}: no bad value was tried"
    assert not failures, f"{fname}:\n" + "\n".join(failures)
    if fname == "capture_to":
        assert not (tmp_path / "store").exists(), "a refused capture created its store folder"


def _short(value) -> str:
    text = repr(value)
    return text if len(text) < 60 else text[:57] + "..."


# ---- the checks themselves --------------------------------------------------------------------------------------


def test_typed_errors_are_value_errors_and_type_errors_name_the_argument():
    with pytest.raises(ArgumentTypeError) as err:
        check_count("3", "n_prompts")
    assert isinstance(err.value, ValueError) and isinstance(err.value, TypeError)
    assert err.value.argument == "n_prompts" and str(err.value).startswith("n_prompts: ")
    with pytest.raises(ArgumentError, match=r"^control_tolerance: must be a finite number in \[0, 1\], got nan$"):
        check_probability(NAN, "control_tolerance")
    with pytest.raises(ArgumentTypeError, match="^v: need a real floating-point tensor, got dtype torch.complex64$"):
        check_tensor(torch.zeros(3, dtype=torch.complex64), "v")
    with pytest.raises(ArgumentError, match="^v: is on the 'meta' device"):
        check_tensor(torch.zeros(3, device="meta"), "v")
