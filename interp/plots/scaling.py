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
