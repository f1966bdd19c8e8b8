"""Shared figure style: fixed colour-blind-safe colours per task, layout, bands.

Colours are Okabe-Ito, then Paul Tol's muted set, fixed per task: a task's colour is its index in its family, so
the same task has the same colour in every figure; "other" is always grey; a mixture of tasks is the blend of their
colours. Figures that compare a task A with a task B in every panel use :data:`A_COLOR` and :data:`B_COLOR`.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go

from interp.tasks import get_family

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
#: Task A / task B colours of pair figures (the same in every panel).
A_COLOR, B_COLOR = "#D55E00", "#0072B2"
MIXED_COLOR = "#000000"
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


def band(fig, x, lo, hi, color, name, row, col, alpha, group, show):
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


def task_index(family: str, task: str) -> int:
    """Index of ``task`` in ``family`` (the key of its colour); a deterministic fallback for unknown names."""
    try:
        return get_family(family).task_names.index(task)
    except (ValueError, KeyError):
        return sum(map(ord, task)) % len(PALETTE)


def family_task_color(family: str, task: str) -> str:
    """The task's fixed colour (:func:`interp.plots.task_color` of its index in the family)."""
    return task_color(task_index(family, task))


def blend(colors: Sequence[str]) -> str:
    """Mean RGB of hex colours, as hex (the colour of a mixture of tasks).

    >>> blend(["#000000", "#FFFFFF"])
    '#7f7f7f'
    """
    rgb = np.array([[int(c.lstrip("#")[i : i + 2], 16) for i in (0, 2, 4)] for c in colors], dtype=float)
    return "#" + "".join(f"{int(v):02x}" for v in rgb.mean(axis=0))


def label_color(family: str, label: str) -> str:
    """Colour of a prompt group of :func:`interp.prompts.mixture_groups`: task, ``"a+b"`` blend, uniform black."""
    if label == "uniform":
        return MIXED_COLOR
    parts = label.split("+")
    try:
        known = get_family(family).task_names
    except (ValueError, KeyError):
        known = ()
    if all(p in known for p in parts):
        return blend([family_task_color(family, p) for p in parts])
    return OTHER_COLOR


def grid_shape(n: int, max_cols: int = 3) -> tuple[int, int]:
    """(rows, cols) for ``n`` panels: at most ``max_cols`` columns, as few rows, then as few empty cells, as possible.

    >>> grid_shape(4), grid_shape(3), grid_shape(5)
    ((2, 2), (1, 3), (2, 3))
    """
    best = None
    for cols in range(1, max(1, min(max_cols, n)) + 1):
        rows = (n + cols - 1) // cols
        key = (rows, rows * cols - n)
        if best is None or key < best[0]:
            best = (key, (rows, cols))
    return best[1] if best else (1, 1)
