"""Training figures: the loss curve and the across-training record of a run (from :mod:`interp.results` values)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import PALETTE, style_figure
from interp.results import CheckpointRecord, TrainingCurve


def loss_curve_figure(curve: TrainingCurve, *, title: str) -> go.Figure:
    """Training loss (answer tokens + their newline) vs step."""
    fig = go.Figure(
        go.Scatter(
            x=curve.steps.tolist(),
            y=curve.loss.tolist(),
            mode="lines",
            line=dict(color=PALETTE[4], width=1.5),
            name="loss",
            hovertemplate="step %{x}<br>loss %{y:.4f}<extra></extra>",
        )
    )
    fig.update_xaxes(title_text="training step (batch of prompts)")
    fig.update_yaxes(title_text="cross-entropy on answer tokens (nats)", type="log")
    return style_figure(fig, title, height=420)


def across_training_figure(
    history: Sequence[CheckpointRecord], *, title: str, chosen_step: int | None = None
) -> go.Figure:
    """Min/mean single-task accuracy and 50/50 mixed-prompt P(a_A), P(a_B) per pair vs training step.

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    steps = [h.step for h in history]
    fig = make_subplots(
        rows=1,
        cols=2,
        horizontal_spacing=0.1,
        subplot_titles=["single-task ICL accuracy (20 examples)", "50/50 mixed prompts: mean P"],
    )
    for fam_i, fam in enumerate(history[0].accuracy):
        color = PALETTE[(fam_i * 3) % len(PALETTE)]
        vals = [list(h.accuracy[fam].values()) for h in history]
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
    for j, pair in enumerate(history[0].pairs):
        color = PALETTE[j % len(PALETTE)]
        label = f"{pair.family}: {pair.tasks[0]}|{pair.tasks[1]}"
        fig.add_trace(
            go.Scatter(
                x=steps,
                y=[h.pairs[j].p_a for h in history],
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
                y=[h.pairs[j].p_b for h in history],
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
