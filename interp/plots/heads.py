"""Head figures (:mod:`interp.studies.heads`): layer × head heatmaps per measure and task, and the direct logit
attribution of the top heads as the fraction of task A varies. Pure functions of the study's numbers."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import family_task_color, style_figure


def head_heatmaps_figure(panels: Sequence[tuple[str, np.ndarray, Sequence[int]]], *, title: str) -> go.Figure:
    """One heatmap per ``(panel title, values [layer, head], layers)``, rows = layers, columns = heads; each panel on
    its own symmetric colour scale (diverging: negative effects in red, positive in blue)."""
    if not panels:
        raise ValueError("panels: need at least one (title, values, layers)")
    n = len(panels)
    cols = min(n, 3)
    rows = (n + cols - 1) // cols
    fig = make_subplots(rows=rows, cols=cols, subplot_titles=[p[0] for p in panels], horizontal_spacing=0.08,
                        vertical_spacing=0.14)  # fmt: skip
    for i, (name, values, layers) in enumerate(panels):
        r, c = i // cols + 1, i % cols + 1
        v = np.asarray(values, dtype=float)
        span = float(np.max(np.abs(v))) or 1.0
        fig.add_trace(
            go.Heatmap(
                z=v,
                x=list(range(v.shape[1])),
                y=list(layers),
                zmin=-span,
                zmax=span,
                colorscale="RdBu",
                showscale=False,
                hovertemplate=f"{name}<br>layer %{{y}}, head %{{x}}<br>value %{{z:.4f}}<extra></extra>",
                text=np.round(v, 3),
                texttemplate="%{text}",
            ),
            row=r,
            col=c,
        )
        fig.update_xaxes(title_text="head", dtick=1, row=r, col=c)
        fig.update_yaxes(title_text="layer", dtick=1, autorange="reversed", row=r, col=c)
    return style_figure(fig, title, height=330 * rows)


def dla_vs_fraction_figure(
    d: Sequence[float], series: Sequence[tuple[str, str, str, np.ndarray, np.ndarray]], *, family: str, title: str
) -> go.Figure:
    """Direct logit attribution of heads to a task's answer vs the fraction ``d`` of task-A examples: one line per
    ``(head label, task, task's role "A"/"B", mean [point], ci95 [point, 2])``, coloured by task."""
    if not series:
        raise ValueError("series: need at least one head's curve")
    fig = go.Figure()
    for label, task, role, mean, ci in series:
        color = family_task_color(family, task)
        fig.add_trace(
            go.Scatter(
                x=list(d),
                y=list(map(float, mean)),
                mode="lines+markers",
                line=dict(color=color, dash="solid" if role == "A" else "dash"),
                name=f"{label} → {task}",
                error_y=dict(
                    type="data",
                    symmetric=False,
                    array=(np.asarray(ci)[:, 1] - mean).tolist(),
                    arrayminus=(mean - np.asarray(ci)[:, 0]).tolist(),
                ),  # fmt: skip
                hovertemplate=f"{label} → logit of {task}'s answer<br>d = %{{x}}<br>DLA %{{y:.4f}}<extra></extra>",
            )
        )
    fig.update_xaxes(title_text="fraction d of task-A examples", range=[0, 1])
    fig.update_yaxes(title_text="direct logit attribution (centred over candidates)")
    return style_figure(fig, title, height=480)
