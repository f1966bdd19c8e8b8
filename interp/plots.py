"""Plotting: pure functions from numbers to ``plotly.graph_objects.Figure`` (they never run a model).

Colours are colour-blind safe (Okabe-Ito, then Paul Tol's muted set) and fixed per task: a task's
colour is its index in its family, so the same task has the same colour in every figure; "other"
is always grey.

>>> fig = mixture_sweep_figure([{"family": "bias_add", "tasks": ["add1", "add2"], "task_index": [1, 2],
...     "d": [0.0, 1.0], "a": {"mean": [0.1, 0.9], "ci95": [[0, 0.2], [0.8, 1]], "q10": [0, 0.5], "q90": [0.3, 1]},
...     "b": {"mean": [0.9, 0.1], "ci95": [[0.8, 1], [0, 0.2]], "q10": [0.5, 0], "q90": [1, 0.3]},
...     "other": {"mean": [0.0, 0.0]}}], title="demo")
>>> len(fig.data) > 0
True
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

PALETTE = (
    "#E69F00",
    "#56B4E9",
    "#009E73",
    "#CC79A7",
    "#0072B2",
    "#D55E00",
    "#F0E442",
    "#332288",
    "#882255",
    "#44AA99",
    "#999933",
    "#AA4499",
)
OTHER_COLOR = "#9E9E9E"
FONT = dict(family="Helvetica, Arial, sans-serif", size=13)


def task_color(index: int) -> str:
    """Colour of the task at ``index`` in its family (stable across figures)."""
    return PALETTE[index % len(PALETTE)]


def rgba(hex_color: str, alpha: float) -> str:
    h = hex_color.lstrip("#")
    r, g, b = (int(h[i : i + 2], 16) for i in (0, 2, 4))
    return f"rgba({r},{g},{b},{alpha})"


def style_figure(fig: go.Figure, title: str, height: int = 560) -> go.Figure:
    fig.update_layout(
        title=dict(text=title, x=0.01, xanchor="left"),
        font=FONT,
        template="simple_white",
        height=height,
        legend=dict(orientation="h", yanchor="bottom", y=-0.28, x=0),
        margin=dict(l=70, r=20, t=80, b=90),
        hovermode="closest",
    )
    return fig


def _band(fig, x, lo, hi, color, name, row, col, alpha, group, show):
    fig.add_trace(
        go.Scatter(
            x=list(x) + list(x)[::-1],
            y=list(hi) + list(lo)[::-1],
            fill="toself",
            fillcolor=rgba(color, alpha),
            line=dict(width=0),
            hoverinfo="skip",
            name=name,
            legendgroup=group,
            showlegend=show,
        ),
        row=row,
        col=col,
    )


def mixture_sweep_figure(curves: Sequence[dict], *, title: str, cols: int = 3) -> go.Figure:
    """Mean P(task A), P(task B), P(other) vs the fraction d of task-A examples, one panel per pair.

    Each curve dict holds ``family``, ``tasks`` (A, B), ``task_index`` (their indices in the family),
    ``d``, and for ``a``/``b``: ``mean``, ``ci95`` (pairs), ``q10``/``q90`` (per-prompt spread); ``other``: ``mean``.
    Shaded dark band: 95% CI of the mean; light band: 10-90% of single prompts; dashed: ideal P = fraction.
    """
    n = len(curves)
    cols = min(cols, n)
    rows = (n + cols - 1) // cols
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=[f"{c['family']}: {c['tasks'][0]} vs {c['tasks'][1]}" for c in curves],
        horizontal_spacing=0.06,
        vertical_spacing=0.14,
    )
    for i, c in enumerate(curves):
        row, col = i // cols + 1, i % cols + 1
        d = c["d"]
        for key, task, idx, ideal in (
            ("a", c["tasks"][0], c["task_index"][0], d),
            ("b", c["tasks"][1], c["task_index"][1], [1 - x for x in d]),
        ):
            s, color, group = c[key], task_color(idx), f"{c['family']}:{task}"
            _band(fig, d, s["q10"], s["q90"], color, f"{task}: 10-90% of prompts", row, col, 0.12, group, False)
            _band(
                fig,
                d,
                [lo for lo, _ in s["ci95"]],
                [hi for _, hi in s["ci95"]],
                color,
                f"{task}: 95% CI",
                row,
                col,
                0.35,
                group,
                False,
            )
            fig.add_trace(
                go.Scatter(
                    x=d,
                    y=s["mean"],
                    mode="lines+markers",
                    line=dict(color=color, width=2),
                    marker=dict(size=5),
                    name=f"P({task})",
                    legendgroup=group,
                    showlegend=True,
                    customdata=[
                        [lo, hi, q1, q9] for (lo, hi), q1, q9 in zip(s["ci95"], s["q10"], s["q90"], strict=True)
                    ],
                    hovertemplate=(
                        f"{task}<br>d=%{{x:.2f}}<br>mean P=%{{y:.4f}}<br>95% CI [%{{customdata[0]:.4f}}, "
                        "%{customdata[1]:.4f}]<br>10-90%: [%{customdata[2]:.3f}, %{customdata[3]:.3f}]<extra></extra>"
                    ),
                ),
                row=row,
                col=col,
            )
            fig.add_trace(
                go.Scatter(
                    x=d,
                    y=ideal,
                    mode="lines",
                    line=dict(color=color, dash="dash", width=1),
                    name=f"ideal P({task}) = its fraction",
                    hoverinfo="skip",
                    legendgroup=group,
                    showlegend=False,
                ),
                row=row,
                col=col,
            )
        fig.add_trace(
            go.Scatter(
                x=d,
                y=c["other"]["mean"],
                mode="lines",
                line=dict(color=OTHER_COLOR, width=1.5),
                name="P(other)",
                legendgroup="other",
                showlegend=i == 0,
                hovertemplate="other<br>d=%{x:.2f}<br>mean P=%{y:.4f}<extra></extra>",
            ),
            row=row,
            col=col,
        )
        fig.update_xaxes(title_text="fraction of task-A examples d", range=[-0.02, 1.02], row=row, col=col)
        fig.update_yaxes(title_text="P(answer)" if col == 1 else None, range=[-0.02, 1.02], row=row, col=col)
    return style_figure(fig, title, height=360 * rows + 140)


def superposition_bars_figure(results: Sequence[dict], *, title: str) -> go.Figure:
    """The paper's Figure-2 view: per family, mean P per task answer and "other" (95% CI), the rank view, KL.

    Each result dict: ``family``, ``model``, ``tasks``, ``task_index``, ``mean``, ``ci95``, ``other`` (mean),
    ``other_ci95``, ``rank_view``, ``kl`` (mean), ``kl_ci95``.
    """
    n = len(results)
    fig = make_subplots(
        rows=2,
        cols=n,
        vertical_spacing=0.22,
        horizontal_spacing=0.07,
        subplot_titles=[f"{r['family']} ×{len(r['tasks'])} ({r['model']}) · KL {r['kl']:.2f}" for r in results]
        + [f"rank view: {r['family']}" for r in results],
    )
    for j, r in enumerate(results, start=1):
        names = list(r["tasks"]) + ["other"]
        means = list(r["mean"]) + [r["other"]]
        cis = list(r["ci95"]) + [r["other_ci95"]]
        colors = [task_color(i) for i in r["task_index"]] + [OTHER_COLOR]
        fig.add_trace(
            go.Bar(
                x=names,
                y=means,
                marker_color=colors,
                showlegend=False,
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=[hi - m for m, (_, hi) in zip(means, cis, strict=True)],
                    arrayminus=[m - lo for m, (lo, _) in zip(means, cis, strict=True)],
                ),
                customdata=cis,
                hovertemplate="%{x}<br>mean P=%{y:.4f}<br>95% CI [%{customdata[0]:.4f}, "
                "%{customdata[1]:.4f}]<extra></extra>",
            ),
            row=1,
            col=j,
        )
        uniform = 1 / len(r["tasks"])
        fig.add_trace(  # a trace, not add_hline: the dotted shape did not render on these categorical axes
            go.Scatter(
                x=names,
                y=[uniform] * len(names),
                mode="lines",
                line=dict(color="black", dash="dot", width=1.5),
                showlegend=False,
                hovertemplate=f"target fraction 1/{len(r['tasks'])} = {uniform:.3f}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        ranks = [f"top-{k + 1}" for k in range(len(r["rank_view"]))]
        fig.add_trace(
            go.Bar(
                x=ranks,
                y=r["rank_view"],
                marker_color="#4D4D4D",
                showlegend=False,
                hovertemplate="%{x}: mean P=%{y:.4f}<extra></extra>",
            ),
            row=2,
            col=j,
        )
        fig.update_yaxes(title_text="mean P(answer)" if j == 1 else None, range=[0, 1], row=1, col=j)
        fig.update_yaxes(title_text="mean P, sorted per prompt" if j == 1 else None, range=[0, 1], row=2, col=j)
    return style_figure(fig, title, height=720)


def tasks_solved_figure(series: Sequence[dict], *, title: str) -> go.Figure:
    """Tasks solved and KL vs the number of tasks K in the prompt, one line per model.

    Each series dict: ``model``, ``k`` (list), ``solved`` (means), ``solved_ci95``, ``kl``, ``kl_ci95``.
    """
    fig = make_subplots(rows=1, cols=2, subplot_titles=["tasks solved", "KL(t ‖ p)"], horizontal_spacing=0.12)
    for i, s in enumerate(series):
        color = PALETTE[(i * 4) % len(PALETTE)]
        for col, key in ((1, "solved"), (2, "kl")):
            ci = s[f"{key}_ci95"]
            fig.add_trace(
                go.Scatter(
                    x=s["k"],
                    y=s[key],
                    mode="lines+markers",
                    line=dict(color=color, width=2),
                    name=s["model"],
                    showlegend=col == 1,
                    legendgroup=s["model"],
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=[hi - m for m, (_, hi) in zip(s[key], ci, strict=True)],
                        arrayminus=[m - lo for m, (lo, _) in zip(s[key], ci, strict=True)],
                    ),
                    customdata=ci,
                    hovertemplate=f"{s['model']}<br>K=%{{x}}<br>{key}=%{{y:.3f}}<br>95% CI "
                    "[%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>",
                ),
                row=1,
                col=col,
            )
        if series:
            fig.add_trace(
                go.Scatter(
                    x=series[0]["k"],
                    y=series[0]["k"],
                    mode="lines",
                    line=dict(color="black", dash="dash", width=1),
                    name="all K solved",
                    showlegend=i == 0,
                    hoverinfo="skip",
                ),
                row=1,
                col=1,
            )
    fig.update_xaxes(title_text="number of tasks K in the prompt", dtick=1)
    fig.update_yaxes(title_text="tasks solved per prompt", row=1, col=1)
    fig.update_yaxes(title_text="KL (nats)", row=1, col=2)
    return style_figure(fig, title, height=520)


def loss_curve_figure(steps: Sequence[int], losses: Sequence[float], *, title: str) -> go.Figure:
    """Training loss (answer tokens + their newline) vs step."""
    fig = go.Figure(
        go.Scatter(
            x=list(steps),
            y=list(losses),
            mode="lines",
            line=dict(color=PALETTE[4], width=1.5),
            name="loss",
            hovertemplate="step %{x}<br>loss %{y:.4f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="training step (batch of prompts)")
    fig.update_yaxes(title_text="cross-entropy on answer tokens (nats)", type="log")
    return style_figure(fig, title, height=420)


def across_training_figure(history: Sequence[dict], *, title: str, chosen_step: int | None = None) -> go.Figure:
    """Min/mean single-task accuracy and 50/50 mixed-prompt P(a_A), P(a_B) per pair vs training step.

    Each history item: ``step``, ``accuracy`` (family → task → value), ``pairs`` (list of dicts with
    ``family``, ``tasks``, ``p_a``, ``p_b``).
    """
    steps = [h["step"] for h in history]
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=["single-task ICL accuracy (20 examples)", "50/50 mixed prompts: mean P"],
    )
    for fam_i, fam in enumerate(history[0]["accuracy"]):
        color = PALETTE[(fam_i * 3) % len(PALETTE)]
        vals = [[v for v in h["accuracy"][fam].values()] for h in history]
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[min(v) for v in vals],
                mode="lines+markers",
                name=f"{fam}: min over tasks",
                line=dict(color=color, dash="dot"),
            ),
            row=1,
            col=1,
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[float(np.mean(v)) for v in vals],
                mode="lines+markers",
                name=f"{fam}: mean over tasks",
                line=dict(color=color),
            ),
            row=1,
            col=1,
        )
    for j, pair in enumerate(history[0]["pairs"]):
        color = PALETTE[j % len(PALETTE)]
        label = f"{pair['family']}: {pair['tasks'][0]}|{pair['tasks'][1]}"
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[h["pairs"][j]["p_a"] for h in history],
                mode="lines",
                name=f"{label} P(A)",
                line=dict(color=color),
            ),
            row=1,
            col=2,
        )
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[h["pairs"][j]["p_b"] for h in history],
                mode="lines",
                name=f"{label} P(B)",
                line=dict(color=color, dash="dash"),
            ),
            row=1,
            col=2,
        )
    if chosen_step is not None:
        for col in (1, 2):
            fig.add_vline(x=chosen_step, line_color="black", line_dash="dot", row=1, col=col)
    fig.add_hline(y=0.95, line_color="grey", line_dash="dot", row=1, col=1)
    fig.update_xaxes(title_text="training step")
    fig.update_yaxes(title_text="accuracy", range=[0, 1.02], row=1, col=1)
    fig.update_yaxes(title_text="mean P(answer)", range=[0, 1.02], row=1, col=2)
    style_figure(fig, title, height=560)
    fig.update_layout(
        legend=dict(orientation="v", x=1.02, y=1, yanchor="top", font=dict(size=11)), margin=dict(r=300, b=60)
    )
    return fig
