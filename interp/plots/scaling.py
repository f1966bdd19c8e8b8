"""Scale figure (claim 4, docs/science.md §5): calibration, tasks solved, accuracy and "other" vs parameters."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import OTHER_COLOR, style_figure
from interp.results import Distribution, ScalingPoint

#: One colour per K (light to dark: more tasks mixed).
K_COLORS = ("#9ecae1", "#6baed6", "#4292c6", "#2171b5", "#08519c", "#08306b", "#041a3a")
PANELS = (
    ("kl", "KL(t ‖ p), paper's definition (nats)"),
    ("kl_renormalized", "KL(t ‖ p), p renormalised over the K answers"),
    ("solved", "tasks solved per prompt (beam search rule)"),
    ("accuracy", "single-task greedy accuracy; 'other' mass per K"),
)


def _error(values: Sequence[float], ci: np.ndarray) -> dict:
    v = np.asarray(values, dtype=float)
    return dict(type="data", symmetric=False, array=(ci[:, 1] - v).tolist(), arrayminus=(v - ci[:, 0]).tolist())


def _line(fig, points, values, ci, *, name, color, row, col, show, dash="solid", group=None, labels=False):
    fig.add_trace(
        go.Scatter(
            x=[p.n_params for p in points],
            y=list(values),
            text=[p.model for p in points],
            mode="lines+markers+text" if labels else "lines+markers",
            textposition="bottom center",
            textfont=dict(size=10),
            name=name,
            legendgroup=group or name,
            showlegend=show,
            line=dict(color=color, width=2, dash=dash),
            error_y=_error(values, np.asarray(ci)),
            hovertemplate=f"{name}<br>%{{text}}<br>%{{x:,}} parameters<br>%{{y:.3f}}<extra></extra>",
        ),
        row=row,
        col=col,
    )


def _k_value(dist: Distribution, i: int) -> tuple[float, list[float]]:
    return float(dist.mean[i]), [float(x) for x in dist.ci95[i]]


def scaling_figure(points: Sequence[ScalingPoint], *, title: str) -> go.Figure:
    """2×2 panels vs number of parameters (log x): KL, renormalised KL, tasks solved (one line per K), accuracy.

    The last panel also shows the "other" mass per K (dotted) and names each model under its accuracy marker.
    Error bars: 95% bootstrap CIs over prompts.
    """
    if not points:
        raise ValueError("points: need at least one ScalingPoint")
    fig = make_subplots(rows=2, cols=2, subplot_titles=[t for _, t in PANELS], vertical_spacing=0.2)
    fig.update_annotations(font_size=12)
    ks = points[0].k
    for i, k in enumerate(ks):
        color = K_COLORS[min(i, len(K_COLORS) - 1)]
        for j, (key, _) in enumerate(PANELS[:3]):
            vals = [_k_value(getattr(p, key), i) for p in points]
            _line(fig, points, [v for v, _ in vals], [c for _, c in vals], name=f"K={k}", color=color,
                  row=j // 2 + 1, col=j % 2 + 1, show=j == 0)  # fmt: skip
        other = [_k_value(p.other, i) for p in points]
        _line(fig, points, [v for v, _ in other], [c for _, c in other], name=f"K={k}", color=color,
              row=2, col=2, show=False, dash="dot")  # fmt: skip
    acc = [p.mean_accuracy for p in points]
    _line(fig, points, acc, [list(p.mean_accuracy_ci95) for p in points], name="single-task accuracy",
          color="#D55E00", row=2, col=2, show=True, labels=True)  # fmt: skip
    fig.add_trace(
        go.Scatter(x=[None], y=[None], mode="lines", line=dict(color=OTHER_COLOR, dash="dot"), name="'other' mass"),
        row=2,
        col=2,
    )
    fig.update_xaxes(type="log", title_text="parameters (log)")
    fig.update_yaxes(rangemode="tozero")
    return style_figure(fig, title, height=820)


#: Panels of :func:`scaling_pairs_figure`: metric key and axis title.
PAIR_PANELS = (
    ("kl", "KL(t ‖ p) (nats)"),
    ("tv", "total variation"),
    ("hedging", "hedging: P(other)"),
    ("preference", "preference: |mean share − ½|"),
    ("commitment", "commitment: var(share)"),
)
SEED_COLORS = ("#1b9e77", "#d95f02", "#7570b3", "#e7298a", "#66a61e")


def scaling_pairs_figure(result: dict, *, title: str) -> go.Figure:
    """One panel per metric of :mod:`interp.studies.scaling_pairs` against parameters (log): every (seed, pair) unit
    as a small dot coloured by seed, and per size the mean over units with its 95% bootstrap CI (black)."""
    sizes, summary, units = result["sizes"], result["summary"], result["units"]
    if not sizes:
        raise ValueError("result: no sizes measured")
    fig = make_subplots(rows=1, cols=len(PAIR_PANELS), subplot_titles=[t for _, t in PAIR_PANELS],
                        horizontal_spacing=0.05)  # fmt: skip
    seeds = sorted({u["seed"] for u in units})
    for j, (key, _) in enumerate(PAIR_PANELS, start=1):
        for i, seed in enumerate(seeds):
            mine = [u for u in units if u["seed"] == seed]
            fig.add_trace(
                go.Scatter(
                    x=[summary[u["size"]]["n_params"] * (1 + 0.04 * (i - (len(seeds) - 1) / 2)) for u in mine],
                    y=[u[key] for u in mine],
                    mode="markers",
                    marker=dict(size=5, color=SEED_COLORS[i % len(SEED_COLORS)], opacity=0.6),
                    name=f"seed {seed}",
                    legendgroup=f"seed {seed}",
                    showlegend=j == 1,
                    text=[f"{u['size']} seed {seed} {'/'.join(u['pair'])}" for u in mine],
                    hovertemplate="%{text}<br>" + key + " = %{y:.4f}<extra></extra>",
                ),
                row=1,
                col=j,
            )
        mean = [summary[s][key]["mean"] for s in sizes]
        ci = np.array([summary[s][key]["ci95"] for s in sizes])
        fig.add_trace(
            go.Scatter(
                x=[summary[s]["n_params"] for s in sizes],
                y=mean,
                mode="lines+markers+text",
                text=sizes,
                textposition="top center",
                line=dict(color="black", width=2),
                error_y=_error(mean, ci),
                name="mean over seeds × pairs (95% CI)",
                legendgroup="mean",
                showlegend=j == 1,
                hovertemplate="%{text}<br>" + key + " = %{y:.4f}<extra></extra>",
            ),
            row=1,
            col=j,
        )
        fig.update_xaxes(type="log", title_text="parameters", row=1, col=j)
    return style_figure(fig, title, height=460)
