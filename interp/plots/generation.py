"""Generation collapse figure (claim 5, docs/science.md §5): P(task) at token 1 next to the completed answers."""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import OTHER_COLOR, PALETTE, style_figure, task_color
from interp.results import CollapseCurve

HYBRID_COLOR = "#444444"


def _proportion_label(p: Sequence[float]) -> str:
    return "/".join(f"{x:g}" for x in p)


def generation_collapse_figure(curves: Sequence[CollapseCurve], *, title: str) -> go.Figure:
    """Per task set: stacked bars per proportion (token 1 | sampled completions) and commitment lines.

    Left panel of a row: for each proportion, two stacked bars side by side: P(each task's first answer token) and
    "other" (bar "token 1"), and the fraction of sampled completions equal to each task's answer, a hybrid, or none
    (bar "completed"). Right panel: P(finishing a task's answer | first token) after the greedy and after a sampled
    first token, and the share of completions that equal some task's answer.
    """
    if not curves:
        raise ValueError("curves: need at least one CollapseCurve")
    fig = make_subplots(
        rows=len(curves),
        cols=2,
        column_widths=[0.62, 0.38],
        horizontal_spacing=0.1,
        vertical_spacing=0.22 if len(curves) > 1 else 0.2,
        subplot_titles=[
            t
            for c in curves
            for t in (
                f"{c.family}: {' vs '.join(c.tasks)} (fractions of examples) · token 1 vs completed answers",
                "commitment after token 1",
            )
        ],
    )
    fig.update_annotations(font_size=12)
    shown: set[str] = set()
    for row, c in enumerate(curves, start=1):
        _stacked_bars(fig, c, row, shown)
        _commitment_lines(fig, c, row, show=row == 1)
        fig.update_xaxes(title_text="fraction of examples of " + c.tasks[0], row=row, col=2)
    fig.update_layout(barmode="stack")
    fig.update_yaxes(range=[0, 1.02])
    fig.update_yaxes(title_text="probability / share of samples", col=1)
    fig.update_xaxes(tickangle=0, tickfont=dict(size=10), col=1)
    return style_figure(fig, title, height=max(480, 420 * len(curves)))


def _stacked_bars(fig: go.Figure, c: CollapseCurve, row: int, shown: set[str]) -> None:
    labels = [_proportion_label(p) for p in c.proportions]
    stacks = {
        "token 1": [(t, c.first_token[:, j], task_color(c.task_index[j])) for j, t in enumerate(c.tasks)]
        + [("other", c.first_other, OTHER_COLOR)],
        "completed": [(t, c.sampled[:, j], task_color(c.task_index[j])) for j, t in enumerate(c.tasks)]
        + [("hybrid", c.sampled_hybrid, HYBRID_COLOR), ("none", c.sampled_none - c.sampled_hybrid, OTHER_COLOR)],
    }
    for group, parts in stacks.items():
        for name, values, color in parts:
            fig.add_trace(
                go.Bar(
                    x=[labels, [group] * len(labels)],
                    y=values.tolist(),
                    name=name,
                    marker_color=color,
                    marker_pattern_shape="/" if group == "completed" and name in c.tasks else "",
                    legendgroup=name,
                    showlegend=name not in shown and (group == "token 1" or name in ("hybrid", "none")),
                    hovertemplate=f"{name} · {group}<br>%{{x}}<br>%{{y:.3f}}<extra></extra>",
                ),
                row=row,
                col=1,
            )
            if group == "token 1" or name in ("hybrid", "none"):
                shown.add(name)


def _commitment_lines(fig: go.Figure, c: CollapseCurve, row: int, *, show: bool) -> None:
    x = [p[0] for p in c.proportions]
    lines = (
        ("P(finish | greedy token 1)", c.greedy_commit.mean, c.greedy_commit.ci95, PALETTE[4]),
        ("P(finish | sampled task token 1)", c.sampled_commit.mean, c.sampled_commit.ci95, PALETTE[5]),
        ("share of samples = a task's answer", 1 - c.sampled_none, None, "#000000"),
    )
    for name, values, ci, color in lines:
        error = None
        if ci is not None:
            error = dict(
                type="data",
                symmetric=False,
                array=(ci[:, 1] - values).tolist(),
                arrayminus=(values - ci[:, 0]).tolist(),
            )
        fig.add_trace(
            go.Scatter(
                x=x,
                y=values.tolist(),
                mode="lines+markers",
                name=name,
                line=dict(color=color, width=2, dash="dot" if ci is None else "solid"),
                error_y=error,
                legendgroup=name,
                showlegend=show,
                hovertemplate=f"{name}<br>%{{x}}: %{{y:.3f}}<extra></extra>",
            ),
            row=row,
            col=2,
        )
