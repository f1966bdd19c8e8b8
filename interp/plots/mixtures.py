"""Figures of measurements on mixed prompts: mixture sweeps, the Figure-2 bars, tasks solved (claims 1, 2, 4).

Pure functions from :mod:`interp.results` values to ``plotly.graph_objects.Figure``; nothing here runs a model.
"""

from __future__ import annotations

from collections.abc import Sequence

import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import A_COLOR, B_COLOR, OTHER_COLOR, PALETTE, band, grid_shape, style_figure, task_color
from interp.results import MixtureCurve, TasksSolvedCurve, UniformMixture

#: What the marks of :func:`mixture_sweep_figure` mean (its subtitle).
MIXTURE_LEGEND = (
    "lines: mean P over prompts · dark band: 95% bootstrap CI of the mean · pale band: 10–90% of single prompts · "
    "dashed diagonal: ideal P = the task's fraction of examples"
)


def _mixture_task_traces(fig: go.Figure, c: MixtureCurve, row: int, col: int, first: bool) -> None:
    """Bands, mean line and ideal diagonal of task A and task B in one panel."""
    d = list(c.d)
    for dist, role, task, color, ideal in (
        (c.a, "A", c.tasks[0], A_COLOR, d),
        (c.b, "B", c.tasks[1], B_COLOR, [1 - x for x in d]),
    ):
        ci = dist.ci95.tolist()
        band(fig, d, dist.q10, dist.q90, color, f"task {role}: 10–90% of prompts", row, col, 0.12, role, False)
        band(
            fig,
            d,
            [lo for lo, _ in ci],
            [hi for _, hi in ci],
            color,
            f"task {role}: 95% CI",
            row,
            col,
            0.35,
            role,
            False,
        )
        fig.add_trace(
            go.Scatter(
                x=d,
                y=dist.mean.tolist(),
                mode="lines+markers",
                line=dict(color=color, width=2),
                marker=dict(size=5),
                name=f"P(task {role})",
                legendgroup=role,
                showlegend=first,
                customdata=[[lo, hi, q1, q9] for (lo, hi), q1, q9 in zip(ci, dist.q10, dist.q90, strict=True)],
                hovertemplate=(
                    f"task {role} = {task}<br>d=%{{x:.2f}}<br>mean P=%{{y:.4f}}<br>95% CI [%{{customdata[0]:.4f}}, "
                    "%{customdata[1]:.4f}]<br>10–90%: [%{customdata[2]:.3f}, %{customdata[3]:.3f}]<extra></extra>"
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
                name=f"ideal P(task {role}) = its fraction",
                hoverinfo="skip",
                legendgroup=role,
                showlegend=first,
            ),
            row=row,
            col=col,
        )


def mixture_sweep_figure(curves: Sequence[MixtureCurve], *, title: str, max_cols: int = 3) -> go.Figure:
    """Mean P(task A), P(task B), P(other) vs the fraction d of task-A examples, one panel per pair.

    Task A is orange and task B blue in every panel (the panel title names them); "other" is grey. Dark band:
    95% CI of the mean; pale band: 10–90% of single prompts; dashed: ideal P = fraction (:data:`MIXTURE_LEGEND`
    is written under the title).
    """
    if not curves:
        raise ValueError("curves: need at least one MixtureCurve")
    rows, cols = grid_shape(len(curves), max_cols)
    fig = make_subplots(
        rows=rows,
        cols=cols,
        horizontal_spacing=0.08,
        vertical_spacing=0.16,
        subplot_titles=[f"{c.family}: A = {c.tasks[0]}, B = {c.tasks[1]}" for c in curves],
    )
    for i, c in enumerate(curves):
        row, col = i // cols + 1, i % cols + 1
        _mixture_task_traces(fig, c, row, col, first=i == 0)
        fig.add_trace(
            go.Scatter(
                x=list(c.d),
                y=c.other.mean.tolist(),
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
    return style_figure(fig, f"{title}<br><sup>{MIXTURE_LEGEND}</sup>", height=360 * rows + 160)


#: What the marks of :func:`superposition_bars_figure` mean (its subtitle).
BARS_LEGEND = (
    "bars: mean P over prompts with 95% bootstrap CI · dotted: target fraction 1/K · "
    "KL = mean KL(t ‖ p) in nats, the paper's definition (p not renormalised) · bottom: per-prompt P sorted, averaged"
)


def superposition_bars_figure(results: Sequence[UniformMixture], *, title: str) -> go.Figure:
    """The paper's Figure-2 view: per family, mean P per task answer and "other" (95% CI), the rank view, KL.

    One column per :class:`~interp.results.UniformMixture`; the top row's title names family, K, model and KL,
    the bottom row's the rank view of the same column (:data:`BARS_LEGEND` is written under the title).

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    if not results:
        raise ValueError("results: need at least one UniformMixture")
    n = len(results)
    fig = make_subplots(
        rows=2,
        cols=n,
        vertical_spacing=0.24,
        horizontal_spacing=0.1,
        subplot_titles=[f"{r.family}, K={len(r.tasks)}<br>{r.model} · KL {r.kl:.2f}" for r in results]
        + [f"rank view: {r.family}, K={len(r.tasks)}" for r in results],
    )
    fig.update_annotations(font_size=12)
    for j, r in enumerate(results, start=1):
        names = list(r.tasks) + ["other"]
        means = r.mean.tolist() + [r.other]
        cis = r.ci95.tolist() + [list(r.other_ci95)]
        colors = [task_color(i) for i in r.task_index] + [OTHER_COLOR]
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
        uniform = 1 / len(r.tasks)
        fig.add_trace(  # a trace, not add_hline: the dotted shape did not render on these categorical axes
            go.Scatter(
                x=names,
                y=[uniform] * len(names),
                mode="lines",
                line=dict(color="black", dash="dot", width=1.5),
                showlegend=False,
                hovertemplate=f"target fraction 1/{len(r.tasks)} = {uniform:.3f}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        ranks = [f"top-{k + 1}" for k in range(len(r.rank_view))]
        fig.add_trace(
            go.Bar(
                x=ranks,
                y=r.rank_view.tolist(),
                marker_color="#4D4D4D",
                showlegend=False,
                hovertemplate="%{x}: mean P=%{y:.4f}<extra></extra>",
            ),
            row=2,
            col=j,
        )
        fig.update_yaxes(title_text="mean P(answer)" if j == 1 else None, range=[0, 1], row=1, col=j)
        fig.update_yaxes(title_text="mean P, sorted per prompt" if j == 1 else None, range=[0, 1], row=2, col=j)
    fig = style_figure(fig, f"{title}<br><sup>{BARS_LEGEND}</sup>", height=780)
    fig.update_layout(margin=dict(t=150))  # room for the subtitle above two-line panel titles
    return fig


def tasks_solved_figure(series: Sequence[TasksSolvedCurve], *, title: str) -> go.Figure:
    """Tasks solved and KL vs the number of tasks K in the prompt, one line per model and family."""
    fig = make_subplots(rows=1, cols=2, subplot_titles=["tasks solved", "KL(t ‖ p)"], horizontal_spacing=0.12)
    for i, s in enumerate(series):
        color = PALETTE[(i * 4) % len(PALETTE)]
        label = f"{s.model} · {s.family}"
        for col, key in ((1, "solved"), (2, "kl")):
            values, ci = getattr(s, key).tolist(), getattr(s, f"{key}_ci95").tolist()
            fig.add_trace(
                go.Scatter(
                    x=list(s.k),
                    y=values,
                    mode="lines+markers",
                    line=dict(color=color, width=2),
                    name=label,
                    showlegend=col == 1,
                    legendgroup=label,
                    error_y=dict(
                        type="data",
                        symmetric=False,
                        array=[hi - m for m, (_, hi) in zip(values, ci, strict=True)],
                        arrayminus=[m - lo for m, (lo, _) in zip(values, ci, strict=True)],
                    ),
                    customdata=ci,
                    hovertemplate=f"{label}<br>K=%{{x}}<br>{key}=%{{y:.3f}}<br>95% CI "
                    "[%{customdata[0]:.3f}, %{customdata[1]:.3f}]<extra></extra>",
                ),
                row=1,
                col=col,
            )
        if series:
            fig.add_trace(
                go.Scatter(
                    x=list(series[0].k),
                    y=list(series[0].k),
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


#: Colours of the models compared by :func:`model_comparison_figure`, in order.
MODEL_COLORS = ("#0072B2", "#D55E00", "#009E73", "#CC79A7")


def model_comparison_figure(curves: Sequence[tuple[str, MixtureCurve]], *, title: str) -> go.Figure:
    """P(a_A) (solid) and P(a_B) (dotted) vs the fraction d of task-A examples, one panel per pair, one colour per
    model (``curves``: ``(model label, curve)``); the ideal P = d dashed grey; error bars: 95% bootstrap CIs."""
    if not curves:
        raise ValueError("curves: need at least one (model, MixtureCurve)")
    pairs = list(dict.fromkeys((c.family, *c.tasks) for _, c in curves))
    labels = list(dict.fromkeys(label for label, _ in curves))
    fig = make_subplots(rows=1, cols=len(pairs), subplot_titles=[f"{f}: A = {a}, B = {b}" for f, a, b in pairs])
    for label, c in curves:
        col = pairs.index((c.family, *c.tasks)) + 1
        color = MODEL_COLORS[labels.index(label) % len(MODEL_COLORS)]
        for role, dist, dash in (("A", c.a, "solid"), ("B", c.b, "dot")):
            ci = dist.ci95
            fig.add_trace(
                go.Scatter(
                    x=list(c.d), y=dist.mean.tolist(), mode="lines+markers", line=dict(color=color, dash=dash),
                    error_y=dict(type="data", symmetric=False, array=(ci[:, 1] - dist.mean).tolist(),
                                 arrayminus=(dist.mean - ci[:, 0]).tolist()),
                    name=f"{label}: P(task {role})", legendgroup=f"{label}{role}", showlegend=col == 1,
                ),
                row=1, col=col,
            )  # fmt: skip
    for col in range(1, len(pairs) + 1):
        fig.add_trace(
            go.Scatter(x=[0, 1], y=[0, 1], mode="lines", line=dict(color="grey", dash="dash"), name="ideal P(A) = d",
                       showlegend=col == 1),
            row=1, col=col,
        )  # fmt: skip
    fig.update_xaxes(title_text="fraction d of task-A examples", range=[-0.02, 1.02])
    fig.update_yaxes(title_text="P(answer)", range=[-0.02, 1.02], col=1)
    return style_figure(fig, title, height=520)
