"""Render the README's numbers block from the committed JSON it reports (no number in it is typed by hand).

    python experiments/readme_numbers.py            # print the block
    python experiments/readme_numbers.py --write    # replace the block between the README's markers
    python experiments/readme_numbers.py --check    # exit 1 when the README's block differs from the JSON

Also the measured rates of the claim rules in docs/science.md §7 (``figures/claims/calibration.json``).

Sources: ``figures/mixture_sweep/mixture_sweep.json``, ``figures/superposition_bars/superposition_bars.json``,
``figures/task_vectors/task_vectors.json``, ``figures/tasks_solved/tasks_solved.json``,
``figures/construction/construction.json``, ``figures/scaling/scaling.json``,
``figures/generation_collapse_two_digit/generation_collapse.json``, ``benchmarks/results.json`` (written by
``interp figures``), ``benchmarks/results_store.json`` (``benchmarks/run.py --only store``) and the embedded model's
card numbers ``interp/checkpoints/embedded/eval.json``.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

import numpy as np

from interp.claims import Claim
from interp.construction import probability_error_bound
from interp.export import atomic_write_bytes
from interp.studies.task_vectors import control_words
from interp.tokenization import char_vocab
from interp.trends import Trend, trend_words

ROOT = Path(__file__).resolve().parents[1]
README = ROOT / "README.md"
START, END = "<!-- numbers:start -->", "<!-- numbers:end -->"
PERF_START, PERF_END = "<!-- performance:start -->", "<!-- performance:end -->"
PROFILE_START, PROFILE_END = "<!-- profile:start -->", "<!-- profile:end -->"
EXPLORE_START, EXPLORE_END = "<!-- explore:start -->", "<!-- explore:end -->"
VERSIONS_START, VERSIONS_END = "<!-- versions:start -->", "<!-- versions:end -->"
BEYOND_START, BEYOND_END = "<!-- beyond:start -->", "<!-- beyond:end -->"
STORE_START, STORE_END = "<!-- store:start -->", "<!-- store:end -->"
SCIENCE = ROOT / "docs/science.md"
CALIBRATION_START, CALIBRATION_END = "<!-- calibration:start -->", "<!-- calibration:end -->"


def load_sources(root: Path = ROOT) -> dict:
    """Every JSON the block reports, by short name."""
    fig = root / "figures"
    return {
        "mixture": json.loads((fig / "mixture_sweep" / "mixture_sweep.json").read_text()),
        "bars": json.loads((fig / "superposition_bars" / "superposition_bars.json").read_text()),
        "vectors": json.loads((fig / "task_vectors" / "task_vectors.json").read_text()),
        "solved": json.loads((fig / "tasks_solved" / "tasks_solved.json").read_text()),
        "construction": json.loads((fig / "construction" / "construction.json").read_text()),
        "bench": json.loads((root / "benchmarks" / "results.json").read_text()),
        "profile": json.loads((root / "benchmarks" / "profile.json").read_text()),
        "versions": json.loads((root / "benchmarks" / "versions.json").read_text()),
        "bench_nnsight": json.loads((root / "benchmarks" / "results_nnsight.json").read_text()),
        "store": json.loads((root / "benchmarks" / "results_store.json").read_text()),
        "scaling": json.loads((fig / "scaling" / "scaling.json").read_text()),
        "collapse": json.loads((fig / "generation_collapse_two_digit" / "generation_collapse.json").read_text()),
        "card": json.loads((root / "interp" / "checkpoints" / "embedded" / "eval.json").read_text()),
        "heads": json.loads((fig / "heads" / "heads_all.json").read_text()),
        "calibration": json.loads((fig / "claims" / "calibration.json").read_text()),
        "hendel": json.loads((fig / "hendel" / "hendel_table.json").read_text()),
        "explore": {
            name: json.loads((fig / "explore" / f"{name}.json").read_text())
            for name in ("explore_embedded", "explore_constructed")
        },
    }


def _half(curve: dict) -> int:
    return curve["d"].index(0.5)


def headline_table(mixture: dict) -> list[str]:
    cfg = mixture["config"]
    lines = [
        f"### What `make demo` shows (embedded model, seed {cfg['seed']}, {cfg['n_prompts']} prompts × "
        f"{cfg['n_examples']} examples per point)",
        "",
        "![mixture sweep](figures/mixture_sweep/mixture_sweep.png)",
        "",
        "![superposition bars](figures/superposition_bars/superposition_bars.png)",
        "",
        "Headline numbers printed by `make demo` (mean over prompts, 95% bootstrap CI), 50/50 prompts:",
        "",
        "| family | task A vs B | P(A) | P(B) | P(A)+P(B) | across-prompt var P(A) |",
        "|---|---|---|---|---|---|",
    ]
    for c in mixture["curves"]:
        i = _half(c)
        a, b = c["a"], c["b"]
        lines.append(
            f"| {c['family']} | {c['tasks'][0]} vs {c['tasks'][1]} | {a['mean'][i]:.3f} [{a['ci95'][i][0]:.3f}, "
            f"{a['ci95'][i][1]:.3f}] | {b['mean'][i]:.3f} [{b['ci95'][i][0]:.3f}, {b['ci95'][i][1]:.3f}] | "
            f"{c['two_answer_mass']['mean'][i]:.3f} | {a['var'][i]:.3f} |"
        )
    return lines


def _card_accuracy(card: dict, family: str, n: str = "20") -> list[float]:
    return [v[n]["accuracy"] for v in card["icl_accuracy"][family].values()]


def card_bullets(card: dict, bars: dict) -> list[str]:
    bias = [a for n in ("1", "5", "10", "20") for a in _card_accuracy(card, "bias_add", n)]
    retr = _card_accuracy(card, "retrieval")
    sweep = card["mixture_sweep"]
    curves = {tuple(c["tasks"]): c for c in sweep["curves"]}
    c17 = curves[("add1", "add7")]
    inner = [x for x in c17["d"] if 0 < x < 1]
    p_a = ", ".join(f"{c17['a']['mean'][c17['d'].index(x)]:.2f}" for x in inner)
    i17, i25 = _half(c17), _half(curves[("add2", "add5")])
    c25 = curves[("add2", "add5")]
    var = [c["a"]["var"][_half(c)] for c in sweep["curves"] if c["family"] == "bias_add"]
    others = [m for c in sweep["curves"] if c["family"] == "bias_add" for m in c["other"]["mean"]]
    bar = next(r for r in bars["results"] if r["family"] == "bias_add" and len(r["tasks"]) == 2)
    return [
        f"- **The embedded model learned all ten bias-add tasks in context** (single-task accuracy "
        f"{_span(bias)} at 1, 5, 10 and 20 examples, held-out prompts; model card) after training "
        "only on single-task prompts.",
        f"- **Claim 2 holds for the mean, not per prompt.** On add1/add7 mixtures mean P(add1) rises with the fraction "
        f"d of add1 examples ({p_a} at d = {inner[0]:g} … {inner[-1]:g}; card, {sweep['n_prompts']:,} prompts per "
        f"point), biased towards add1 ({c17['a']['mean'][i17]:.2f} vs {c17['b']['mean'][i17]:.2f} at d = 0.5; "
        f"add2/add5 is more even, {c25['a']['mean'][i25]:.2f} vs {c25['b']['mean'][i25]:.2f}). But single prompts "
        f"commit: the across-prompt variance of P(A) at d = 0.5 is {min(var):.2f}–{max(var):.2f} of a possible 0.25, "
        f"and the rank view on uniform add1/add7 prompts gives top-1 {bar['rank_view'][0]:.2f}, top-2 "
        f'{bar["rank_view"][1]:.2f}. The "other" mass reaches {max(others):.2f}.',
        f"- **Retrieval was not learned in context** (single-task accuracy {min(retr):.2f}–{max(retr):.2f} at 20 "
        "examples, chance 0.125): the model copies a letter of the query but cannot tell which position the examples "
        "ask for, so its retrieval curves are flat in d. That is not superposition; the card says so.",
    ]


def _span(values: list[float]) -> str:
    """``"0.90–1.00"``, or one number when every value is the same."""
    lo, hi = min(values), max(values)
    return f"{lo:.2f}" if f"{lo:.2f}" == f"{hi:.2f}" else f"{lo:.2f}–{hi:.2f}"


def _fmt(x: float | None, spec: str = ".3f", none: str = "n/a") -> str:
    return none if x is None else format(x, spec)


def _claims(vectors: dict) -> dict[str, Claim]:
    """The study's claim records by key (:mod:`interp.claims`): every null sentence below is one of them, worded by
    its rules."""
    return {c["key"]: Claim.from_dict(c) for c in vectors.get("claims", [])}


def _steering(acc: dict, tasks, claims: dict[str, Claim], root: str, mode: str) -> str:
    parts = []
    for t in tasks:
        if acc["best_layer"][t] is None:
            continue
        clear = "" if acc["best_layer_clear"][t] else "; not clear of the runner-up layer"
        claim = claims.get(f"{root}/steering/{mode}/{t}")
        rise = "" if claim is None else f"; {claim.words()}, against random vectors of the same norm"
        parts.append(
            f"{t}: patched candidate accuracy {acc['patched_accuracy'][t]:.2f} at layer {acc['best_layer'][t]} "
            f"(zero-shot {acc['zero_shot_accuracy'][t]:.2f}, chance {acc['chance'][t]:.2f}, in-context "
            f"{acc['icl_accuracy'][t]:.2f}{clear}{rise})"
        )
    return "; ".join(parts)


MODE_WORDS = {
    "replace": "Replacing the query's residual by v(λ) (Hendel et al.)",
    "shift": "Shifting the query's residual by v(λ) − mean(queries) (each query keeps its own deviation)",
    "add": "Adding v(λ) to the query's residual",
}


def _layers_with(control: dict, status: str) -> list[int]:
    """Layers where every task's self-patch control has ``status``."""
    per_task = [c["status"] for c in control.values()]
    return [la for la in range(len(per_task[0])) if all(st[la] == status for st in per_task)]


def _mode_sentence(mode: str, acc: dict, tasks, lambdas, claims: dict[str, Claim], root: str) -> str:
    a, b = tasks
    what = MODE_WORDS[mode]
    control = acc["control"]
    ctrl = [c["accuracy"] for c in control.values() if c["accuracy"] is not None]
    lo, hi = (min(min(c) for c in ctrl), max(max(c) for c in ctrl)) if ctrl else (None, None)
    if acc["pair_layer"] is None:
        return (
            f"{what} fails the self-patch control at every layer (a task's own vector patched into its own held-out "
            f"in-context prompts leaves candidate accuracy {lo:.2f}–{hi:.2f} of {acc['icl_accuracy'][a]:.2f}): it "
            "erases the query, so it cannot test steering."
        )
    statuses = {t: c["status"] for t, c in control.items()}

    def said(st: list[str]) -> str:
        return control_words(range(len(st)), st).removeprefix("control ")

    if len({tuple(st) for st in statuses.values()}) == 1:
        status_words = said(next(iter(statuses.values())))
    else:
        status_words = "; ".join(f"{t}: {said(st)}" for t, st in statuses.items())
    words = (
        f"{what} keeps the query where its self-patch control does not fail (own vector into its own held-out "
        f"in-context prompts; the other task's vector as the negative form): {status_words}"
    )
    silent = [
        (c["negative_accuracy"][la], (c["negative_p_other"] or [0.0] * len(c["status"]))[la])
        for c in control.values()
        for la, st in enumerate(c["status"])
        if st == "uninformative"
    ]
    if silent:
        neg, p_other = [a for a, _ in silent], [p for _, p in silent]
        words += (
            ". Where it is uninformative, the other task's vector put in the same way also keeps the accuracy "
            f"({min(neg):.2f}–{max(neg):.2f}; P(the other task's answer) at most {max(p_other):.2f}), so the control "
            "cannot show that the intervention carries a task"
        )
    passing = _layers_with(control, "passes")
    valid = acc["pair_layer"] in passing
    p_b = np.array(acc["p_b_at_layer"])
    peak = float(np.array(lambdas)[int(np.argmax(p_b))])
    return (
        f"{words}. At layer {acc['pair_layer']} (the best layer whose query is kept"
        + ("" if valid else "; not a validated intervention")
        + f") it moves P({b}) from {p_b.min():.2f} to {p_b.max():.2f} (Spearman with λ "
        f"{_fmt(acc['spearman_rho'], '+.3f')}, maximum at λ = {peak:.2f}; crosses 0.5: "
        f"{'yes' if acc['crosses_half'] else 'no'}); steering from a query ({acc['queries'].replace('_', '-')}, "
        f"{acc['n_distinct_queries']} distinct): {_steering(acc, tasks, claims, root, mode)}."
    )


def vector_bullets(vectors: dict) -> list[str]:
    cfg = vectors["config"]
    claims = _claims(vectors)
    out = []
    for pair in vectors["pairs"]:
        if pair["family"] != "bias_add":
            continue
        a, b = pair["tasks"]
        root = f"task_vectors/{pair['family']}:{a}+{b}"
        modes = pair["modes"]
        with_layer = [m for m in modes.values() if m["acceptance"]["pair_layer"] is not None]
        decomposition = ""
        if with_layer:
            acc = with_layer[0]["acceptance"]
            res = acc["residual"]
            controls = ", ".join(f"{k.replace('_', ' ')} {v:.2f}" for k, v in res.items() if k != "mixed")
            below = "below every control" if acc["mixed_below_every_control"] else "not below every control"
            decomposition = (
                f"the 50/50 vector (from held-out prompts) decomposes onto the two single-task vectors with residual "
                f"{res['mixed']:.2f} at layer {acc['pair_layer']}, {below} ({controls}). "
            )
        sentences = " ".join(
            _mode_sentence(mode, m["acceptance"], (a, b), cfg["lambdas"], claims, root) for mode, m in modes.items()
        )
        nulls = pair.get("nulls")
        if nulls is not None:
            size = nulls["sample_size"]
            reached = (
                f"chosen for power {size['power']:g} at an out-of-span norm of {size['effect']:g} from a pilot of "
                f"{size['pilot_prompts']} prompts per group"
                if size["required"] is not None
                else f"the largest tried: power {size['power']:g} at an out-of-span norm of {size['effect']:g} was "
                "not reached"
            )
            tests = "; ".join(claims[f"{root}/{key}"].words() for key in ("projection", "residual", "ablation"))
            decomposition += (
                f"Against nulls at layer {nulls['layer']} (n = {nulls['n']} prompts per group, {reached}; the basis, "
                "mixture and third task paired by query, the residual ablated in held-out prompts): "
                f"{tests}. "
            )
        out.append(
            f"- **Task vectors (claim 3), {a}/{b}** (`interp figures task_vectors`, {cfg['n_prompts']} prompts, "
            f"{len(cfg['lambdas'])} λ, vectors from seed {cfg['seed']} tested on held-out prompts, self-patch "
            f"tolerance {cfg['control_tolerance']}; `figures/task_vectors/task_vectors.json`): {decomposition}"
            f"{sentences}"
        )
    return out


def _cell(c: dict, spec: str = ".2f") -> str:
    ci = "" if c["ci95"] is None else f" [{c['ci95'][0]:{spec}}, {c['ci95'][1]:{spec}}]"
    return f"{c['mean']:{spec}}{ci}"


def hendel_bullet(hendel: dict) -> str:
    """Hendel et al.'s three columns and the KL, per shipped model (mean over its tasks, 95% t-interval over prompt
    seeds), from ``figures/hendel/hendel_table.json``; the bijection control's row beside them."""
    cfg, ref = hendel["config"], hendel["hendel_means"]
    modes = cfg["modes"]
    parts = []
    for m in hendel["models"]:
        s = m["mean_over_tasks"]
        tv = "; ".join(
            f"task vector ({mode}) {_cell(s[mode]['task_vector'])}, KL(ICL ‖ TV) {_cell(s[mode]['kl'])}"
            for mode in modes
        )
        parts.append(
            f"{m['model']} ({len(m['tasks'])} {m['family']} tasks): zero-shot {_cell(s['zero_shot'])}; {tv}; "
            f"in-context {_cell(s['icl'])}"
        )
    bij = [
        f"{m['model']} {task}: task vector "
        + ", ".join(f"({mode}) {_cell(row[mode]['task_vector'])}" for mode in modes)
        + f" vs in-context {_cell(row['icl'])}"
        for m in hendel["models"]
        for task, row in m["tasks"].items()
        if row["bijection"]
    ]
    return (
        f"- **Hendel et al.'s table** (`python experiments/hendel_table.py`; `figures/hendel/hendel_table.json`; top-1 "
        f"accuracy of the answer's first token on {cfg['n_test']} test queries, the layer chosen on {cfg['n_dev']} "
        f"held-out dev queries, the vector from {cfg['n_vector']} prompts of its own; mean over each model's tasks, "
        f"95% t-interval over {len(cfg['seeds'])} prompt seeds; per task in the JSON; their means over 18 tasks × 7 "
        f"models: zero-shot {ref['zero_shot']:.2f}, task vector {ref['task_vector']:.2f}, in-context "
        f"{ref['icl']:.2f}): "
        + "; ".join(parts)
        + "."
        + (
            " Negative control (Dong et al., arXiv 2506.09048: a task vector acts as one demonstration and cannot "
            "carry a bijection that maps both ways): " + "; ".join(bij) + "."
            if bij
            else ""
        )
    )


def solved_bullet(solved: dict) -> str:
    parts = []
    for s in solved["series"]:
        lo, hi = min(s["solved"]), max(s["solved"])
        parts.append(f"{lo:.1f}–{hi:.1f} of K = {s['k'][0]}…{s['k'][-1]} {s['family']} tasks")
    return (
        f"- **Tasks solved** (`figures/tasks_solved/`): {' and '.join(parts)} count as solved; with "
        "single-character answers the K-th best complete output is a weak bar, so read these as an upper bound."
    )


def construction_bullet(construction: dict) -> str:
    built = [c for c in construction["curves"] if c["model"] == "constructed"]
    trained = [c for c in construction["curves"] if c["model"] != "constructed"]
    err = max(abs(m - d) for c in built for m, d in zip(c["a"]["mean"], c["d"], strict=True))
    mass = min(m for c in built for m in c["two_answer_mass"]["mean"])
    spans = ", ".join(
        f"{c['tasks'][0]}/{c['tasks'][1]} {min(c['a']['mean']):.3f}–{max(c['a']['mean']):.3f}" for c in trained
    )
    bound = probability_error_bound(8, len(char_vocab()))
    return (
        '- **Ground truth: a transformer built by hand** (`load_model("constructed:retrieval:K=4")`, '
        "`docs/construction.md`; `interp figures construction`): on the same retrieval mixtures its P(a_A) equals the "
        f"fraction d within {err:.1e} (its closed form bounds |P − f| by {bound:.1e} for every K it builds and every "
        f"prompt) with {mass:.4f} of the mass on the two answers, while the trained embedded "
        f"model's P(a_A) stays flat across d ({spans}). The toolkit's methods recover what was built in "
        "(tests/acceptance/test_construction.py): task vectors are the designed directions, convex patching at the "
        "designed layer is linear in λ, and the decomposition returns the proportions."
    )


def _trend(verdict: dict) -> str:
    """The trend's words by rule (:func:`interp.trends.trend_words` over its Page's L record)."""
    record = {k: v for k, v in verdict["page"].items() if k not in ("words", "direction")}
    return trend_words(Trend.from_dict(record))


def scaling_bullet(scaling: dict) -> str:
    parts = []
    for p in scaling["points"]:
        kl, (lo, hi) = p["kl"]["mean"][0], p["kl"]["ci95"][0]
        parts.append(
            f"{p['model']} ({p['n_params'] / 1e3:.0f}k parameters, accuracy {p['mean_accuracy']:.2f}): "
            f"{kl:.2f} [{lo:.2f}, {hi:.2f}]"
        )
    text = (
        "- **Scale (claim 4)** (`interp figures scaling`; four sizes trained here on the same bias-add data and "
        "budget, `interp/checkpoints/size_family/`, plus the embedded model): KL(t ‖ p) on uniform mixtures at "
        f"K = {scaling['points'][0]['k'][0]} (seed 0) is " + "; ".join(parts) + "."
    )
    pairs = scaling.get("seeds_and_pairs")
    if not pairs:
        return text
    family = [sz for sz in pairs["sizes"] if sz not in pairs["extra"]]
    summary, verdicts = pairs["summary"], pairs["verdicts"]
    n_seeds = len(summary[family[0]]["seeds"])

    def per_size(metric: str) -> str:
        return ", ".join(
            f"{sz} {summary[sz][metric]['mean']:.2f} [{summary[sz][metric]['ci95'][0]:.2f}, "
            f"{summary[sz][metric]['ci95'][1]:.2f}]"
            for sz in pairs["sizes"]
        )

    trend = Trend.from_dict({k: v for k, v in verdicts["kl"]["page"].items() if k not in ("words", "direction")})
    reproduced = "reproduced" if trend.direction == "falls" else "not reproduced"
    return text + (
        f" Across {n_seeds} training seeds × {len(pairs['pairs'])} task pairs per size (50/50 prompts; "
        "`figures/scaling/scaling_pairs.json`, mean over seed × pair units with 95% CIs; trends by Page's L test with "
        f"the seeds as blocks): KL {per_size('kl')}; it {_trend(verdicts['kl'])}. Beside KL: hedging P(other) "
        f"{per_size('hedging')} ({_trend(verdicts['hedging'])}); fixed task preference {per_size('preference')} "
        f"({_trend(verdicts['preference'])}); per-prompt commitment (variance of A's share, at most 0.25) "
        f"{per_size('commitment')} ({_trend(verdicts['commitment'])}). Lower KL with size (the paper's claim 4 on "
        f"0.5B–72B models) is {reproduced} on these small models over seeds and pairs."
    )


def _head(h) -> str:
    return f"L{h[0]}H{h[1]}"


def _cie_top(m: dict, t: str) -> str:
    """A model's top CIE heads for task ``t`` with their 95% CIs (the heads study's JSON)."""
    c = m["cie"][t]
    return ", ".join(
        f"L{la}H{h} {c['mean'][la][h]:.3f} [{c['ci95'][la][h][0]:.3f}, {c['ci95'][la][h][1]:.3f}]" for la, h in c["top"]
    )


def _fv_steering(m: dict, t: str) -> str:
    """The function vector's rise of P(t) at the best layer whose self-patch control passes."""
    s = m["function_vector_steering"][t]
    ok = [i for i, p in enumerate(s["passes"]) if p]
    if not ok:
        return f"{t}: its self-patch control fails at every layer"
    i = max(ok, key=lambda j: s["rise"][j])
    lo, hi = s["rise_ci95"][i]
    return f"{t} +{s['rise'][i]:.3f} [{lo:.3f}, {hi:.3f}] at layer {i} (zero-shot P {s['zero_shot_p']:.3f})"


def _roles(m: dict, t: str) -> str:
    """A task's labelled heads (modal label over prompt seeds, seeds agreeing, the measure that gives the label)."""
    r = m["roles"]["per_task"][t]
    n_seeds = len(m["roles"]["seeds"])
    parts = []
    for e in r["heads"]:
        s, nec, acc = e["sufficiency"], e["necessity"], e["ablated_accuracy"]
        if e["label"] == "shared" or (e["label"] == "task-specific" and s[1] > 0):
            what = f"CIE {s[0]:.2f} [{s[1]:.2f}, {s[2]:.2f}], necessity {nec[0]:.2f} [{nec[1]:.2f}, {nec[2]:.2f}]"
        else:
            what = (f"single-task accuracy {r['accuracy']:.2f} → {acc[0]:.2f} [{acc[1]:.2f}, {acc[2]:.2f}] when "
                    f"mean-ablated, CIE {s[0]:.2f} [{s[1]:.2f}, {s[2]:.2f}]")  # fmt: skip
        induction = ", an induction head" if e["induction"] else ""
        parts.append(f"{_head(e['head'])} {e['label']} ({e['agree']}/{n_seeds} seeds; {what}{induction})")
    return f"{t}: " + ("; ".join(parts) if parts else "no head passes")


def _attribution(m: dict, t: str) -> str:
    a = m["attribution"][t]
    g = a["agreement"]
    flagged = sum(map(sum, a["unreliable"]))
    n = len(a["unreliable"]) * len(a["unreliable"][0])
    return (
        f"{t}: Spearman {g['spearman']:.2f}, top-{g['top_k']} overlap {g['top_k_overlap']:.2f}, {len(g['wrong'])} "
        f"heads off by > {g['tolerance']:.2f} of which {g['missed']} not flagged ({flagged} of {n} flagged)"
    )


def heads_bullet(heads: dict) -> str:
    cfg = heads["config"]
    a, b = cfg["tasks"]
    main, others = heads["models"][0], heads["models"][1:]
    if "roles" not in main:  # a study JSON from before head roles (issue 37): what it measured
        return _heads_bullet_before_roles(heads)

    roles = main["roles"]
    tasks = roles["tasks"]
    sizes = "; ".join(
        f"{m['model']}: " + ", ".join(
            f"{t} " + (", ".join(f"{_head(e['head'])} {e['label']}" for e in m["roles"]["per_task"][t]["heads"])
                       or "none")
            for t in (a, b)
        )
        for m in others
    )  # fmt: skip
    other_families = "".join(
        f" {m['model']} ({m['family']}; seeds agreeing in brackets): "
        + "; ".join(
            f"{t}: " + (", ".join(f"{_head(e['head'])} {e['label']} ({e['agree']}/{len(r['seeds'])})"
                                  for e in r["per_task"][t]["heads"]) or "none")
            for t in r["tasks"]
        )
        + "."
        for m in heads.get("roles_only", [])
        for r in [m["roles"]]
    )  # fmt: skip
    if other_families:
        other_families = " The other shipped models, labelled by the same rule over the same seeds." + other_families
    return (
        f"- **Which heads carry the task** (`interp figures heads`; {cfg['n_prompts']} prompts × {cfg['n_examples']} "
        f"examples; `figures/heads/heads_all.json`): on the embedded model the heads with the largest causal indirect "
        f"effect (their mean output patched into corrupted prompts: *sufficient*) are, for {a}: {_cie_top(main, a)}; "
        f"for {b}: {_cie_top(main, b)}. A sufficient head need not be necessary, and a head every task needs is not a "
        "task's "
        f"head: per head and task, over {len(roles['seeds'])} prompt seeds ({roles['n_prompts']} prompts each; mean "
        f"and 95% interval over seeds), sufficiency (CIE), necessity (the drop of P(correct) when the head is "
        f"mean-ablated on single-task prompts, the mean over the tasks {', '.join(tasks)}) and a label "
        "(docs/science.md §4) give " + "; ".join(_roles(main, t) for t in tasks) + ". "
        f"The function vector (top {cfg['top_k']} heads) added to zero-shot queries at the best passing layer raises "
        f"P(correct) by {_fv_steering(main, a)}; {_fv_steering(main, b)}. Of each task's top {cfg['top_k']} CIE heads, "
        f"{main['fv_heads_among_induction_heads'][a]} ({a}) and {main['fv_heads_among_induction_heads'][b]} ({b}) "
        f"are among the top {cfg['top_k']} induction-score heads. Attribution patching (one backward pass) against "
        "the exact CIE: "
        + "; ".join(_attribution(main, t) for t in (a, b))
        + f". Labelled heads per size: {sizes}."
        + other_families
        + " "
        "Checked first on the hand-built model with a query reader, whose task head (layer 2, head 0) is labelled "
        "shared, lookup heads (layer 3, heads 0 and 1) task-specific and reader (layer 3, head 2) reads the query in "
        "every seed, and whose task head's effect attribution patching misses but flags (tests/acceptance/"
        "test_heads.py)."
    )


def _heads_bullet_before_roles(heads: dict) -> str:
    """The heads bullet of a study JSON without head roles (mean-ablation on 50/50 prompts only)."""
    cfg = heads["config"]
    a, b = cfg["tasks"]
    main, others = heads["models"][0], heads["models"][1:]

    def ablation(t: str) -> str:
        m = np.array(main["ablation"][t]["mean"])
        la, h = np.unravel_index(int(np.argmin(m)), m.shape)
        return f"L{la}H{h} ({m[la, h]:+.3f})"

    sizes = "; ".join(
        f"{m['model']}: {a} L{m['cie'][a]['top'][0][0]}H{m['cie'][a]['top'][0][1]} "
        f"{m['cie'][a]['mean'][m['cie'][a]['top'][0][0]][m['cie'][a]['top'][0][1]]:.3f}, {b} "
        f"L{m['cie'][b]['top'][0][0]}H{m['cie'][b]['top'][0][1]} "
        f"{m['cie'][b]['mean'][m['cie'][b]['top'][0][0]][m['cie'][b]['top'][0][1]]:.3f}"
        for m in others
    )
    shared = set(map(tuple, main["cie"][a]["top"][:1])) == set(map(tuple, main["cie"][b]["top"][:1]))
    return (
        f"- **Which heads carry the task** (`interp figures heads`; {cfg['n_prompts']} prompts × {cfg['n_examples']} "
        f"examples; `figures/heads/heads_all.json`): on the embedded model the heads with the largest causal indirect "
        f"effect (their mean output patched into corrupted prompts) are, for {a}: {_cie_top(main, a)}; for {b}: "
        f"{_cie_top(main, b)}"
        + (" — one head carries both tasks' function vector." if shared else ".")
        + f" Mean-ablating a head on 50/50 prompts hurts {a} most at {ablation(a)} and {b} most at {ablation(b)}. "
        f"The function vector (top {cfg['top_k']} heads) added to zero-shot queries at the best passing layer raises "
        f"P(correct) by {_fv_steering(main, a)}; {_fv_steering(main, b)}. Of each task's top {cfg['top_k']} CIE heads, "
        f"{main['fv_heads_among_induction_heads'][a]} ({a}) and {main['fv_heads_among_induction_heads'][b]} ({b}) "
        f"are among the top {cfg['top_k']} induction-score heads. Top CIE head per size: {sizes}. Checked first on "
        "the hand-built model, whose task head (layer 2, head 0) and per-task lookup heads (layer 3) each measure "
        "singles out, and whose idle head none does (tests/acceptance/test_heads.py)."
    )


def collapse_bullet(collapse: dict) -> str:
    parts, collapsing = [], []
    threshold = collapse["config"].get("superposition_threshold")
    for c in collapse["curves"]:
        i = next((k for k, p in enumerate(c["proportions"]) if abs(p[0] - 0.5) < 1e-9), None)
        if i is None:
            continue
        a, b = c["tasks"]
        first = c["first_token"][i]
        commit = c["sampled_commit"]
        head = (
            f"{a}/{b} at 50/50: first token {first[0]:.2f} vs {first[1]:.2f} (other first tokens "
            f"{c['first_other'][i]:.2f})"
        )
        pre = c["precondition"][i]
        if not pre["superposed"]:
            weak = c["tasks"][pre["weakest"]]
            parts.append(
                f"{head}: no superposition to collapse ({weak} holds {pre['weakest_mass']:.2f} of the first token, "
                f"below the {threshold:g} a collapse claim needs)"
            )
            continue
        collapsing.append(f"{a}/{b}")
        parts.append(
            f"{head}; after a sampled first token the model completes that task's answer with P "
            f"{commit['mean'][i]:.2f} [{commit['ci95'][i][0]:.2f}, {commit['ci95'][i][1]:.2f}]; hybrid completions "
            f"{c['sampled_hybrid'][i]:.4f} of samples"
        )
    verdict = (
        f" Where there is superposition to collapse ({', '.join(collapsing)}), it lives in the first token's "
        "distribution and generated text commits to one task."
        if collapsing
        else " No pair holds both tasks in the first token's distribution: there is no collapse to show."
    )
    return (
        "- **Generation collapses (claim 5)** (`python experiments/two_digit_shift.py study`: two-character answers of "
        'the shipped model `load_model("two_digit")`, trained by the same script; '
        f"`figures/generation_collapse_two_digit/`; a pair counts only where both tasks hold ≥ {threshold:g} of the "
        "first token): " + "; ".join(parts) + "." + verdict
    )


def render(sources: dict) -> str:
    """The whole block, markers included."""
    lines = [START, *headline_table(sources["mixture"]), ""]
    lines += ["What they say, honestly (the model card, `interp/checkpoints/embedded/README.md`, has the details):"]
    lines += card_bullets(sources["card"], sources["bars"])
    lines += vector_bullets(sources["vectors"])
    lines += [
        solved_bullet(sources["solved"]),
        scaling_bullet(sources["scaling"]),
        collapse_bullet(sources["collapse"]),
    ]
    lines += [hendel_bullet(sources["hendel"])]
    lines += [heads_bullet(sources["heads"])]
    lines += [construction_bullet(sources["construction"]), ""]
    lines += ["![best layer](figures/task_vectors/best_layer.png)", ""]
    lines += ["![heads](figures/heads/heads.png)", ""]
    lines += ["![lambda stacked](figures/task_vectors/lambda_stacked.png)", END]
    return "\n".join(lines)


def row_note(r: dict) -> str:
    """What bounds or qualifies a benchmark row, from its ``info`` (empty when nothing does)."""
    info = r.get("info", {})
    if "studies_s" in info:
        studies = ", ".join(f"{name} {sec:.0f} s" for name, sec in info["studies_s"].items())
        speed = info.get("matmul_gflops_before")
        runs = info.get("runs_s")
        return (
            studies
            + (f"; machine speed then: {speed:.0f} GFLOP/s (float32 matmul, 2 threads)" if speed else "")
            + (f"; runs: {', '.join(f'{t:.1f} s' for t in runs)} (best counted)" if runs else "")
        )
    if "ceiling_vs_loop" in info and "paper loop" in r["name"]:
        return f"ceiling (loop ÷ last-token floor): {info['ceiling_vs_loop']:.2f}×"
    if "floor_last_token_s" in info and "vs floor" in r["name"]:
        return f"vs the last-token floor: {info['median_paired_vs_floor_last_token']:.2f}×"
    if "max_dev_from_exact_ours" in info:
        return (
            f"sampled shares vs exact odds, max deviation: {info['max_dev_from_exact_ours']:.3f} (one row per "
            f"sample: {info['max_dev_from_exact_per_sample']:.3f})"
        )
    if "baseline_route" in info and "beam search vs" in r["name"]:
        return f"baseline: {info['baseline_route']}"
    if "arithmetic_ceiling" in info and "per-cell" in r["name"]:
        return (
            f"ceiling (multiply-adds, per-cell ÷ least exact work): {info['arithmetic_ceiling']:.1f}×; "
            f"vocabulary log-softmax alone {info['unembed_floor_s']:.2g} s"
        )
    if "residual_max_abs" in info and "equality ·" in r["name"]:
        return (
            f"max|dx| {info['equality_max_abs']:.2g} on residuals up to {info['residual_max_abs']:.2g} (float32 "
            "rounding of different kernels)"
        )
    if "spearman" in info and "attribution agreement" in r["name"]:
        return (
            f"ratio = Spearman over {info['heads']} heads; top-3 overlap {info['top_k_overlap']:.2f}, max error "
            f"{info['max_abs_error']:.2f}; {info['off_by_more_than_tolerance']} heads off by > "
            f"{info['tolerance']:.2f}, {info['flagged']} flagged"
        )
    if "with_checks_over_forward" in info:
        return f"with its reliability checks: {info['with_checks_s']:.3g} s, {info['with_checks_over_forward']:.1f}×"
    if "floor_runs_s" in info:
        return (
            f"ours = one Hugging Face forward over the prompts (32 rows at a time), nothing else: no engine's lead "
            f"over the loop exceeds loop ÷ this; the engine's scoring is {info['ours_over_floor']:.2f}× this forward"
        )
    if "floor_s" in info:
        return (
            f"ours = the two passes every exact CIE needs (clean prompts to the last layer's z, corrupted keys and "
            f"values), nothing else; the loop runs {info['loop_forwards']} forwards; our full CIE is "
            f"{info['ours_over_floor']:.1f}× these two passes"
        )
    if "least_gflop" in info:
        return (
            f"ours = the least weight products any exact CIE does here ({info['least_gflop']:.3g} GFLOP) at the "
            f"fastest rate this CPU multiplies the model's shapes ({info['matmul_gflops']:.0f} GFLOP/s), nothing "
            f"else; our route does {info['route_over_least']:.2f}× those products and takes "
            f"{info['ours_over_bound']:.1f}× this time"
        )
    if "second_call_s" in info:
        return f"ratio = gathering ÷ the warm exact CIE; second call {info['second_call_s']:.1e} s"
    if "tokens_per_prompt" in r.get("info", {}) and "per-head loop" in r["name"]:
        tokens = info["tokens_per_prompt"]
        return f"baseline: one TransformerLens forward per head over the batch (hook_z); {tokens} tokens per prompt"
    if "ceiling_vs_per_cell" in info and "per-cell" in r["name"]:
        return f"ceiling (per-cell ÷ vocabulary log-softmax alone): {info['ceiling_vs_per_cell']:.1f}×"
    return ""


def render_versions(versions: dict) -> str:
    """The TransformerLens 3.9 → 4.x comparison of the same benchmark (``benchmarks/versions.json``)."""
    s, old, new = versions["summary"], versions["old_meta"], versions["new_meta"]
    by_name = {r["name"]: r for r in versions["rows"]}

    def listed(names: list[str]) -> str:
        return "; ".join(f"{n} ({by_name[n]['new_over_old']:.2f}×)" for n in names) or "none"

    return "\n".join(
        [
            VERSIONS_START,
            f"The same `make bench` on the same machine under TransformerLens {old.get('transformer_lens', '?')} and "
            f"{new.get('transformer_lens', '?')} (`benchmarks/compare_versions.py`, rows in both: {s['rows']}, timed: "
            f"{s['timed']}): the median cost of our route (time; peak memory in the capture rows) is "
            f"{s['median_new_over_old']:.2f}× on 4.x. Costlier beyond "
            f"the ×{versions['noise']} noise band: {listed(s['slower'])}. Faster: {listed(s['faster'])}. Verdicts "
            f"lost: {', '.join(s['newly_failing']) or 'none'}; gained: {', '.join(s['newly_passing']) or 'none'}.",
            VERSIONS_END,
        ]
    )


def render_performance(bench: dict) -> str:
    """The performance block: every benchmark line of ``benchmarks/results.json`` (``make bench``)."""
    meta = bench["meta"]
    lines = [
        PERF_START,
        f"`make bench` (`benchmarks/run.py`), {meta['threads']} thread(s), torch {meta['torch']}, "
        + (f"TransformerLens {meta['transformer_lens']}, " if "transformer_lens" in meta else "")
        + f"{meta['cpu_count']}-core CPU; {meta.get('note', '')}".rstrip("; "),
        "",
        *bench_table(bench["rows"]),
    ]
    return "\n".join([*lines, PERF_END])


def bench_table(rows: list[dict]) -> list[str]:
    """Benchmark rows as a Markdown table (baseline, ours, ratio, target, verdict, note)."""
    lines = ["| benchmark | baseline | ours | ratio | target | | note |", "|---|---|---|---|---|---|---|"]
    for r in rows:
        ratio = f"{r['ratio']:.2e}" if r["ratio"] < 0.01 else f"{r['ratio']:.2f}"
        unit = r.get("unit", "s")
        base, ours = (f"{r[k]:.3g} {unit}" if r[k] else "—" for k in ("baseline_s", "ours_s"))
        cells = [r["name"], base, ours, ratio, r["target"], "PASS" if r["pass"] else "FAIL", row_note(r)]
        lines.append("| " + " | ".join(c.replace("|", "\\|") for c in cells) + " |")  # a bare | splits a cell
    return lines


#: The benchmark row that records what each study sends on the nnsight engine.
REQUESTS_ROW = "nnsight requests per study"


def render_beyond(bench: dict) -> str:
    """The nnsight engine's measurements (``benchmarks/results_nnsight.json``, ``make bench-nnsight``): the rows
    against a per-prompt nnsight loop, a hand-batched trace and the fastest engine, and what each study sends."""
    meta = bench["meta"]
    timed = [r for r in bench["rows"] if not r["name"].startswith(REQUESTS_ROW)]
    studies = next(r for r in bench["rows"] if r["name"].startswith(REQUESTS_ROW))["info"]["studies"]
    version = next(iter(studies.values()))["nnsight_version"]
    sent = "; ".join(
        f"{name} {s['requests']} requests, {s['traces']} traces, {s['request_bytes'] / 1e3:.0f} kB in all "
        f"(largest {s['largest_request_bytes'] / 1e3:.0f} kB)"
        for name, s in studies.items()
    )
    return "\n".join(
        [
            BEYOND_START,
            f"`make bench-nnsight` (`benchmarks/nnsight_bench.py`), {meta['threads']} thread(s), torch {meta['torch']},"
            f" nnsight {version}, {meta['cpu_count']}-core CPU, embedded model:",
            "",
            *bench_table(timed),
            "",
            f"What each study sends on the engine (`interp figures STUDY --quick --engine nnsight --remote local`, "
            f"the embedded model; the `engine` record of its JSON): {sent}.",
            BEYOND_END,
        ]
    )


def render_profile(profile: dict) -> str:
    """The profile block: where the time of each profiled case goes (``benchmarks/profile.json``, ``make
    bench-profile``), as shares of the profiled self time, and the work any exact method must do."""
    meta = profile["meta"]
    lines = [
        PROFILE_START,
        f"`make bench-profile` (`benchmarks/where_time_goes.py`), {meta['threads']} thread(s), torch {meta['torch']}: "
        "share of the profiled time per kind of work",
        "",
    ]
    runs = [(n, label, c[key]) for n, c in profile["cases"].items()
            for key, label in (("ours", "ours"), ("floor_last_token", "last-token floor")) if key in c]  # fmt: skip
    shown = lambda k: any(r["kinds_s"][k] > 0.005 * r["profiled_s"] for *_, r in runs)  # noqa: E731
    kinds = [k for k in next(iter(runs))[2]["kinds_s"] if shown(k)]
    lines += ["| case | run | seconds | " + " | ".join(kinds) + " |", "|---" * (3 + len(kinds)) + "|"]
    for name, label, r in runs:
        shares = [f"{r['kinds_s'][k] / r['profiled_s']:.0%}" for k in kinds]
        lines.append("| " + " | ".join([name, label, f"{r['wall_s']:.2f}", *shares]) + " |")
    lines.append("")
    for name, c in profile["cases"].items():
        if c["section"] == "scoring":
            lines.append(
                f"- {name}: {c['prompt_tokens']} prompt tokens run once (the floor runs them too) and "
                f"{c['answer_tokens_fed']} answer tokens after them ({c['answer_tokens_over_prompt_tokens']:.1%} "
                "more: the work ours adds; the paired timings are in the table above)."
            )
        else:
            lines.append(
                f"- {name}: least exact work {c['multiply_adds_least_exact']:.3g} multiply-adds, "
                f"{c['unembedding_share_of_least_exact']:.0%} of them the unembedding (all {c['lambdas']} λ × "
                f"{c['layers']} layers × {c['distinct_queries']} queries need every vocabulary logit); per-cell "
                f"baseline ÷ that: {c['arithmetic_ceiling']:.2f}×."
            )
    return "\n".join([*lines, PROFILE_END])


def render_explore(explore: dict, bench: dict) -> str:
    """The pictures of ``interp.explore`` (experiments/explore_snapshot.py) with the numbers they show, and the
    update times measured by ``benchmarks/run.py --only explore``."""

    def bars(dist: dict) -> str:
        return ", ".join(f"P({k}) {v:.2f}" for k, v in dist.items())

    lines = [EXPLORE_START]
    for name, words in (
        ("explore_embedded", "the embedded model"),
        ("explore_constructed", "the hand-built retrieval model"),
    ):
        e = explore[name]
        s = e["settings"]
        mix = " : ".join(f"{t} {p:.2f}" for t, p in zip(s["tasks"], s["proportions"], strict=True))
        lines += [
            f"![interp.explore on {words}](figures/explore/{name}.png)",
            "",
            f"{words[0].upper()}{words[1:]} (`{e['model']}`, family {s['family']}): mixed prompts {mix} give "
            f"{bars(e['mixture'])}; {s['mode']} of v(λ = {s['lam']:.2f}) = {s['lam']:.2f}·v({s['tasks'][0]}) + "
            f"{1 - s['lam']:.2f}·v({s['tasks'][1]}) at layer {s['layer']} gives {bars(e['patched'])} "
            f"(the same queries, nothing patched: {bars(e['unpatched'])}).",
            "",
        ]
    rows = {r["name"]: r for r in bench["rows"]}
    updates = [r for name, r in rows.items() if name.startswith("explore update")]
    books = [r for name, r in rows.items() if name.startswith("notebook ·")]
    if updates:
        worst = ", ".join(f"{r['name'].split(' · ')[1].split(' ')[0]} {r['ours_s']:.2f} s" for r in updates)
        lines.append(f"Slowest update as the controls move (`make bench`, explore rows): {worst} (target ≤ 0.5 s).")
    if books:
        times = ", ".join(f"{r['name'].split(' · ')[1]} {r['ours_s']:.0f} s" for r in books)
        lines.append(f"Each notebook executed in a fresh kernel (notebook rows): {times} (target ≤ 60 s).")
    return "\n".join([*lines, EXPLORE_END])


def render_store(bench: dict) -> str:
    """The store's numbers (``benchmarks/results_store.json``, written by ``benchmarks/run.py --only store``)."""
    rows = {r["name"].split(" · ")[0]: r for r in bench["rows"] if r["name"].startswith("store ")}
    speed = next(r for name, r in rows.items() if name.startswith("store capture vs in-memory"))
    rss = next(r for name, r in rows.items() if name.startswith("store peak RSS"))
    equal = next(r for name, r in rows.items() if name.startswith("store equality"))
    info = speed["info"]
    sizes = info["prompts"]
    peaks = ", ".join(f"{info['peak_rss_mb'][str(n)]:.0f} MB at {n:,}" for n in sizes)
    verdict = lambda r: "PASS" if r["pass"] else "FAIL"  # noqa: E731
    return "\n".join([
        STORE_START,
        f"`make bench`, section store (`benchmarks/run.py --only store`; {bench['meta']['threads']} thread(s), "
        f"{bench['meta']['cpu_count']}-core shared CPU, each measurement a fresh process): {sizes[-1]:,} prompts "
        f"(bias_add, 20 examples, every layer) captured into a float32 store: {speed['ours_s']:.0f} s of store work "
        f"against {speed['baseline_s']:.0f} s for the in-memory path on the same prompts, timed side by side shard by "
        f"shard ({speed['ratio']:.2f}×; target ≤ 1.2×: {verdict(speed)}; the in-memory path over all of them at once "
        f"took {info['in_memory_s (own process, after)']:.0f} s in its own process); peak RSS "
        f"{peaks} prompts (the largest in the paired run, which also holds one shard's in-memory capture; "
        f"{rss['ratio']:.2f}× from the smallest to the largest; target ≤ 1.1×, flat: {verdict(rss)}; "
        f"in memory at {sizes[-1]:,}: {info['in_memory_peak_rss_mb']:.0f} MB); {info['bytes_per_prompt_float32']:.0f} "
        f"bytes on disk per prompt in float32 ({info['raw_bytes_per_prompt_float32']} of activations), "
        f"{info['bytes_per_prompt_bfloat16']:.0f} in bfloat16. Streaming the task vector back from the "
        f"{sizes[-1]:,}-prompt store took {info['read_task_vector_s']:.1f} s (every shard's SHA-256 checked; peak "
        f"RSS {info['read_peak_rss_mb']:.0f} MB) and gives the in-memory vector "
        + ("bit for bit." if equal["pass"] else f"to max |Δ| {equal['ratio']:.2g}."),
        STORE_END,
    ])  # fmt: skip


def render_calibration(cal: dict) -> str:
    """docs/science.md §7's measured rates of the claim rules (``figures/claims/calibration.json``)."""
    cfg, steering, trend = cal["config"], cal["steering"], cal["trend"]
    false = steering["random direction"]
    doses = [steering[f"dose {d:g}"] for d in cfg["doses"]]
    per_dose = ", ".join(
        f"{a['detected_rate']:.2f} at c = {a['dose']:g} (mean rise {a['mean_rise']:.3f}; single seeds reject "
        f"{a['single_rejection_rate']:.2f})"
        for a in doses
    )
    mde = [a["median_mde"] for a in [false, *doses] if a["median_mde"] is not None]
    noise, planted = trend["no trend"], next(v for k, v in trend.items() if k != "no trend")
    steer = (
        "Measured (`python experiments/claims_calibration.py`, `figures/claims/calibration.json`): on the hand-built "
        f"model, the steering claim (rise of P(pos1) when a vector is shifted into {cfg['n_prompts']} held-out "
        f"zero-shot queries at the task layer, against {cfg['n_random']} random vectors of its size), over "
        f"{cfg['trials']} trials of {cfg['replications']} prompt seeds each, is called *detected* in "
        f"{false['detected_rate']:.2f} of the trials where a random direction of the task vector's size is planted "
        f"(the rule's false-positive rate; single seeds reject {false['single_rejection_rate']:.2f}, the test's "
        f"level), and, with c times the built task vector planted, in {per_dose} of the trials (its power)."
    )
    power = (
        f" The simulated minimum detectable rise at n = {cfg['n_prompts']} is {min(mde):.3g}–{max(mde):.3g};"
        " *detected* needs every seed, so at a single test's minimum detectable effect its power is about "
        f"0.8^{cfg['replications']} = {0.8 ** cfg['replications']:.2f}."
        if mde
        else ""
    )
    trend_text = (
        f" The trend rule on {cfg['trend_blocks']} seeds × {cfg['trend_sizes']} sizes of unit-s.d. noise says "
        f'"rises with size" for {noise["rises_rate"]:.2f} and "falls with size" for {noise["falls_rate"]:.2f} of '
        f'{cfg["trend_trials"]} tables with no trend (its false-positive rate, per direction), and "rises" for '
        f"{planted['rises_rate']:.2f} with a rise of {planted['effect']:g} s.d. per size step planted."
    )
    return "\n".join([CALIBRATION_START, steer + power + trend_text, CALIBRATION_END])


def science_blocks(sources: dict) -> dict[tuple[str, str], str]:
    """Every generated block of docs/science.md by its markers."""
    return {(CALIBRATION_START, CALIBRATION_END): render_calibration(sources["calibration"])}


def readme_block(text: str, start: str = START, end: str = END) -> str:
    """The README's current block between ``start`` and ``end``, markers included."""
    i, j = text.index(start), text.index(end) + len(end)
    return text[i:j]


def rendered_blocks(sources: dict) -> dict[tuple[str, str], str]:
    """Every generated block of the README by its markers."""
    return {
        (START, END): render(sources),
        (PERF_START, PERF_END): render_performance(sources["bench"]),
        (PROFILE_START, PROFILE_END): render_profile(sources["profile"]),
        (EXPLORE_START, EXPLORE_END): render_explore(sources["explore"], sources["bench"]),
        (VERSIONS_START, VERSIONS_END): render_versions(sources["versions"]),
        (BEYOND_START, BEYOND_END): render_beyond(sources["bench_nnsight"]),
        (STORE_START, STORE_END): render_store(sources["store"]),
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--write", action="store_true", help="replace the README's (and docs/science.md's) blocks")
    ap.add_argument("--check", action="store_true", help="exit 1 when a block differs from the JSON")
    args = ap.parse_args(argv)
    sources = load_sources()
    targets = {README: rendered_blocks(sources), SCIENCE: science_blocks(sources)}
    if args.check:
        same = all(
            readme_block(path.read_text(), *marks) == block for path, blocks in targets.items()
            for marks, block in blocks.items()
        )  # fmt: skip
        print("README numbers match the JSON" if same else "README numbers differ from the JSON: run --write")
        return 0 if same else 1
    if args.write:
        for path, blocks in targets.items():
            text = path.read_text()
            for marks, block in blocks.items():
                text = text.replace(readme_block(text, *marks), block)
            atomic_write_bytes(path, text.encode())
            print(f"wrote the generated blocks of {path}")
        return 0
    print("\n\n".join([*targets[README].values(), *targets[SCIENCE].values()]))
    return 0


if __name__ == "__main__":
    sys.exit(main())
