"""The hand-built superposition model next to the trained embedded model on the same mixture sweep.

For each retrieval pair (A, B), prompts hold a fraction d of task-A examples (exact counts, same seeds for both
models); the figure shows mean P(a_A) and P(a_B) with 95 % bootstrap intervals against d. The constructed model's
curve is the maths (P(a_A) = d); the embedded model's is what training produced.

    python experiments/construction_sweep.py [--quick] [--out figures/construction]

Writes ``construction_sweep.html`` (+ ``.png`` when a Chromium is available) and ``construction_sweep.json``.
"""

from __future__ import annotations

import argparse
from pathlib import Path

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.construction import load_constructed
from interp.models import load_model, model_info
from interp.studies.common import metadata, write_outputs
from interp.studies.mixture_sweep import DEFAULT_PAIRS, MixtureSweepConfig, mixture_curve

PAIRS = [p for p in DEFAULT_PAIRS if p[0] == "retrieval"]
CONSTRUCTED = "constructed:retrieval:tasks=" + "+".join(sorted({t for _, a, b in PAIRS for t in (a, b)}))
COLOURS = {"constructed": "#1f77b4", "embedded": "#d62728"}


def sweep(models: dict[str, object], config: MixtureSweepConfig) -> list[dict]:
    """One mixture curve per (model, pair), from :func:`interp.studies.mixture_sweep.mixture_curve`."""
    out = []
    for label, model in models.items():
        for fam, a, b in config.pairs:
            curve = mixture_curve(
                model, fam, a, b, config.d, n_prompts=config.n_prompts, n_examples=config.n_examples, seed=config.seed
            )
            out.append({"model": label, "model_id": model_info(model).model_id, **curve})
    return out


def figure(curves: list[dict], config: MixtureSweepConfig) -> go.Figure:
    """P(a_A) (solid) and P(a_B) (dotted) vs d, one panel per pair, one colour per model; the diagonal dashed."""
    pairs = [(a, b) for _, a, b in config.pairs]
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[f"A = {a}, B = {b}" for a, b in pairs])
    for c in curves:
        col = pairs.index(tuple(c["tasks"])) + 1
        for key, dash in (("a", "solid"), ("b", "dot")):
            mean = c[key]["mean"]
            hi = [ci[1] - m for ci, m in zip(c[key]["ci95"], mean, strict=True)]
            lo = [m - ci[0] for ci, m in zip(c[key]["ci95"], mean, strict=True)]
            fig.add_trace(
                go.Scatter(
                    x=c["d"],
                    y=mean,
                    error_y={"type": "data", "symmetric": False, "array": hi, "arrayminus": lo},
                    mode="lines+markers",
                    line={"color": COLOURS[c["model"]], "dash": dash},
                    name=f"{c['model']}: P(a_{key.upper()})",
                    legendgroup=f"{c['model']}{key}",
                    showlegend=col == 1,
                ),
                row=1,
                col=col,
            )
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line={"color": "grey", "dash": "dash"}, showlegend=False),
            row=1,
            col=col,
        )
    fig.update_xaxes(title_text="fraction d of task-A examples", range=[-0.02, 1.02])
    fig.update_yaxes(title_text="P(answer)", range=[-0.02, 1.02], col=1)
    fig.update_layout(
        title=f"Hand-built superposition model vs trained embedded model · {config.n_prompts} prompts × "
        f"{config.n_examples} examples per point (mean, 95% bootstrap CI)",
        height=520,
    )
    return fig


def main(argv: list[str] | None = None) -> dict:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 fractions, 16 prompts (a smoke run)")
    parser.add_argument("--out", default="figures/construction", help="output folder")
    args = parser.parse_args(argv)
    config = MixtureSweepConfig(pairs=[tuple(p) for p in PAIRS])
    if args.quick:
        config = MixtureSweepConfig(pairs=config.pairs, d=[0.0, 0.5, 1.0], n_prompts=16)
    config.validate()
    models = {"constructed": load_constructed(CONSTRUCTED), "embedded": load_model("embedded", device="cpu")}
    curves = sweep(models, config)
    numbers = {
        **metadata(models["constructed"], config, "construction_sweep"),
        "models": {k: model_info(m).to_dict() for k, m in models.items()},
        "curves": curves,
    }
    paths = write_outputs(figure(curves, config), numbers, Path(args.out), "construction_sweep")
    print("\n".join(f"{k}: {v}" for k, v in paths.items() if v))
    return numbers


if __name__ == "__main__":
    main()
