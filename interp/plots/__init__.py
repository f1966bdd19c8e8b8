"""Plotting: pure functions from :mod:`interp.results` values to ``plotly.graph_objects.Figure``.

They never run a model and import neither torch nor TransformerLens. One module per kind of figure:
:mod:`interp.plots.mixtures` (claims 1, 2, 4), :mod:`interp.plots.scaling` (claim 4), :mod:`interp.plots.composition`
(claim 3), :mod:`interp.plots.generation` (claim 5), :mod:`interp.plots.heads`, :mod:`interp.plots.training`,
:mod:`interp.plots.distribution` (the live explorer's bars), with the shared colours and layout in
:mod:`interp.plots.style`.

>>> import numpy as np
>>> from interp.results import Distribution, MixtureCurve
>>> dist = Distribution(*(np.array([0.1, 0.9]),), np.array([[0.0, 0.2], [0.8, 1.0]]), *([np.array([0.1, 0.9])] * 6))
>>> curve = MixtureCurve("bias_add", ("add1", "add7"), (1, 7), (0.0, 1.0), dist, dist, dist, dist)
>>> len(mixture_sweep_figure([curve], title="demo").data) > 0
True
"""

from interp.plots.composition import (
    best_layer_figure,
    cosine_figure,
    decomposition_figure,
    lambda_heatmap_figure,
    lambda_stacked_figure,
    projection_figure,
)
from interp.plots.distribution import distribution_figure
from interp.plots.generation import generation_collapse_figure
from interp.plots.heads import dla_vs_fraction_figure, head_heatmaps_figure
from interp.plots.mixtures import mixture_sweep_figure, superposition_bars_figure, tasks_solved_figure
from interp.plots.scaling import scaling_figure, scaling_pairs_figure
from interp.plots.style import family_task_color, style_figure, task_color
from interp.plots.training import across_training_figure, loss_curve_figure

__all__ = [
    "across_training_figure",
    "best_layer_figure",
    "cosine_figure",
    "decomposition_figure",
    "distribution_figure",
    "dla_vs_fraction_figure",
    "family_task_color",
    "generation_collapse_figure",
    "head_heatmaps_figure",
    "lambda_heatmap_figure",
    "lambda_stacked_figure",
    "loss_curve_figure",
    "mixture_sweep_figure",
    "projection_figure",
    "scaling_figure",
    "scaling_pairs_figure",
    "style_figure",
    "superposition_bars_figure",
    "task_color",
    "tasks_solved_figure",
]
