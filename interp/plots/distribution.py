"""Bar chart of an answer distribution with its 95% CIs (the live explorer's figure).

>>> import numpy as np
>>> from interp.results import AnswerDistribution
>>> d = AnswerDistribution.from_probs(np.array([[0.6, 0.3], [0.5, 0.4]]), "bias_add", ("add1", "add7"), "demo")
>>> fig = distribution_figure(d)
>>> list(fig.data[0].x), [round(y, 2) for y in fig.data[0].y]
(['add1', 'add7', 'other'], [0.55, 0.35, 0.1])
"""

from __future__ import annotations

import plotly.graph_objects as go

from interp.plots.style import OTHER_COLOR, style_figure, task_color
from interp.results import AnswerDistribution
from interp.tasks import get_family


def distribution_figure(
    dist: AnswerDistribution, *, reference: AnswerDistribution | None = None, height: int = 380
) -> go.Figure:
    """Mean P(each answer) as bars with 95% CI whiskers; ``reference`` (e.g. the unpatched queries) as outlined bars
    beside them."""
    names = get_family(dist.family).task_names
    colors = [task_color(names.index(t)) if t in names else OTHER_COLOR for t in dist.labels]
    fig = go.Figure()
    fig.add_trace(
        go.Bar(
            x=list(dist.labels),
            y=dist.mean.tolist(),
            name=f"mean over {dist.n_prompts} prompts",
            marker=dict(color=colors),
            error_y=dict(
                type="data",
                array=(dist.high - dist.mean).tolist(),
                arrayminus=(dist.mean - dist.low).tolist(),
                color="#222222",
            ),
        )
    )
    if reference is not None:
        fig.add_trace(
            go.Bar(
                x=list(reference.labels),
                y=reference.mean.tolist(),
                name=reference.title,
                marker=dict(color="rgba(0,0,0,0)", line=dict(color="#555555", width=1.5)),
                error_y=dict(
                    type="data",
                    array=(reference.high - reference.mean).tolist(),
                    arrayminus=(reference.mean - reference.low).tolist(),
                    color="#555555",
                ),
            )
        )
    style_figure(fig, dist.title, height=height)
    fig.update_layout(barmode="group", showlegend=reference is not None, margin=dict(t=60, b=60))
    fig.update_yaxes(title="P(answer)", range=[0, 1.05])
    return fig
