"""Task-vector figures: pure functions from :mod:`interp.results` values to ``go.Figure`` (docs/science.md §4).

Nothing here runs a model. Every figure takes a *sequence of panels* (one per task pair, usually a family), so one
study writes one figure per view whatever the number of pairs. λ is the weight of task A everywhere
(v(λ) = λ·v_A + (1 − λ)·v_B).

- :func:`best_layer_figure`: mean P(correct) and candidate accuracy vs layer, with zero-shot, ICL and chance.
- :func:`lambda_heatmap_figure`: λ × layer heatmap of P(a_B), and P(a_B) − real-mixture P(a_B).
- :func:`lambda_stacked_figure`: stacked areas P(a_A), P(a_B), P(other) vs λ at one layer, above the real
  mixed-prompt stack (its boundaries also overlaid dashed).
- :func:`decomposition_figure`: residual norm vs layer for the true mixture and each control.
- :func:`projection_figure`: LDA/PCA scatter of per-prompt vectors with a layer slider.
- :func:`cosine_figure`: cosine-similarity matrices, small multiples (pair × layer).

>>> import numpy as np
>>> from interp.results import BestLayer
>>> bl = BestLayer("bias_add", "add1", (0, 1), np.array([0.2, 0.6]), np.array([0.1, 0.7]), 0.1, 0.0, 0.9, 1.0, 4, 0)
>>> fig = best_layer_figure([[bl]], title="demo")
>>> [t.name for t in fig.data][:1]
['add1 patched']
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import plotly.graph_objects as go
from plotly.subplots import make_subplots

from interp.plots.style import MIXED_COLOR, OTHER_COLOR, family_task_color, label_color, rgba, style_figure
from interp.results import BestLayer, CosineMatrix, Decomposition, MixtureSweep, Projection

LAYER_AXIS = "layer ℓ (patched at resid_post of block ℓ)"
LAMBDA_AXIS = "λ (weight of v_A in λ·v_A + (1−λ)·v_B)"
#: Default colours / dashes of the decomposition conditions (the third task gets its task colour).
CONDITION_STYLE = {
    "mixed": (MIXED_COLOR, "solid", "true 50/50 mixture"),
    "random_answers": (OTHER_COLOR, "dash", "control: mixed prompts, random answers"),
    "random_strings": ("#4D4D4D", "dot", "control: random strings"),
    "third_task": (OTHER_COLOR, "dashdot", "control: third task's vector"),
}


def _pair_title(sweep_or_family, tasks: Sequence[str]) -> str:
    fam = sweep_or_family if isinstance(sweep_or_family, str) else sweep_or_family.family
    return f"{fam}: {' vs '.join(tasks)}"


# ---------------------------------------------------------------------------------------------
# Best layer


def best_layer_figure(panels: Sequence[Sequence[BestLayer]], *, title: str) -> go.Figure:
    """Mean P(correct) (top row) and candidate accuracy (bottom row) vs patched layer, one column per panel.

    Each panel is the :class:`~interp.results.BestLayer` results of the tasks of one pair (same family, same mode).
    Horizontal references per task: dotted = zero-shot (no patch), dashed = ICL (in-context examples of the
    task, same queries); grey long-dash = chance (1 / number of candidates). Where the self-patch control was run,
    the bottom row also shows its candidate accuracy (thin dash-dot: the task's own vector patched into its own
    in-context prompts) and a cross marks each layer that fails it. A star marks each task's best layer (argmax
    mean P(correct) over the passing layers; none when no layer passes).

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    if not panels or any(not p for p in panels):
        raise ValueError("panels: need at least one panel, each with at least one BestLayer")
    n = len(panels)
    titles = [f"{_pair_title(p[0].family, [b.task for b in p])}<br>mode {p[0].mode} ({p[0].n_prompts} queries)"
              for p in panels]  # fmt: skip
    fig = make_subplots(
        rows=2,
        cols=n,
        shared_xaxes=True,
        vertical_spacing=0.1,
        horizontal_spacing=0.07,
        subplot_titles=titles + [""] * n,
    )
    for j, panel in enumerate(panels, start=1):
        for b in panel:
            color, group = family_task_color(b.family, b.task), f"{b.family}:{b.task}"
            layers = list(b.layers)
            for row, values, ref_zs, ref_icl, what in (
                (1, b.p_correct, b.zero_shot_p, b.icl_p, "mean P(correct)"),
                (
                    2,
                    b.candidate_accuracy,
                    b.zero_shot_candidate_accuracy,
                    b.icl_candidate_accuracy,
                    "candidate accuracy",
                ),
            ):
                show = j == 1 and row == 1
                fig.add_trace(
                    go.Scatter(
                        x=layers,
                        y=list(map(float, values)),
                        mode="lines+markers",
                        line=dict(color=color, width=2),
                        name=f"{b.task} patched",
                        legendgroup=group,
                        showlegend=show,
                        hovertemplate=(
                            f"{b.family}:{b.task} patched<br>layer %{{x}}<br>{what} = %{{y:.4f}}<extra></extra>"
                        ),
                    ),
                    row=row,
                    col=j,
                )
                for ref, dash, label in ((ref_zs, "dot", "zero-shot"), (ref_icl, "dash", "ICL")):
                    fig.add_trace(
                        go.Scatter(
                            x=[layers[0], layers[-1]],
                            y=[ref, ref],
                            mode="lines",
                            line=dict(color=color, dash=dash, width=1),
                            name=f"{b.task} {label}",
                            legendgroup=group,
                            showlegend=show,
                            hovertemplate=f"{b.task} {label} (no patch)<br>{what} = {ref:.4f}<extra></extra>",
                        ),
                        row=row,
                        col=j,
                    )
                if row == 2 and b.control_accuracy is not None:
                    fails = [la for la, ok in zip(layers, b.passes, strict=True) if not ok]
                    fig.add_trace(
                        go.Scatter(
                            x=layers,
                            y=list(map(float, b.control_accuracy)),
                            mode="lines+markers",
                            line=dict(color=color, dash="dashdot", width=1),
                            marker=dict(size=5),
                            name=f"{b.task} self-patch control",
                            legendgroup=group,
                            showlegend=j == 1,
                            hovertemplate=(
                                f"{b.task}: own vector into own in-context prompts<br>layer %{{x}}<br>candidate "
                                f"accuracy = %{{y:.4f}} (passes at >= "
                                f"{b.icl_candidate_accuracy - b.control_tolerance:.3f})<extra></extra>"
                            ),
                        ),
                        row=row,
                        col=j,
                    )
                    if fails:
                        fig.add_trace(
                            go.Scatter(
                                x=fails,
                                y=[float(b.control_accuracy[layers.index(la)]) for la in fails],
                                mode="markers",
                                marker=dict(symbol="x", size=11, color=color),
                                name=f"{b.task} fails the control",
                                legendgroup=group,
                                showlegend=False,
                                hovertemplate=f"{b.task}: control fails at layer %{{x}}: no steering claim here"
                                "<extra></extra>",
                            ),
                            row=row,
                            col=j,
                        )
                if b.best is None:
                    continue
                k = layers.index(b.best)
                fig.add_trace(
                    go.Scatter(
                        x=[b.best],
                        y=[float(values[k])],
                        mode="markers",
                        marker=dict(symbol="star", size=14, color=color, line=dict(color="black", width=1)),
                        name=f"{b.task} best layer",
                        legendgroup=group,
                        showlegend=False,
                        hovertemplate=f"{b.task} best layer {b.best}<br>{what} = %{{y:.4f}}<extra></extra>",
                    ),
                    row=row,
                    col=j,
                )
        chance = panel[0].chance
        if chance is not None:
            for row in (1, 2):
                fig.add_hline(y=chance, line_dash="longdash", line_color=OTHER_COLOR, line_width=1, row=row, col=j)
        fig.update_yaxes(title_text="mean P(correct answer)" if j == 1 else None, range=[-0.02, 1.02], row=1, col=j)
        fig.update_yaxes(title_text="candidate accuracy" if j == 1 else None, range=[-0.02, 1.02], row=2, col=j)
        fig.update_xaxes(title_text=LAYER_AXIS, dtick=1, row=2, col=j)
    return style_figure(fig, title, height=720)


# ---------------------------------------------------------------------------------------------
# λ sweeps


def _check_sweeps(sweeps: Sequence[MixtureSweep]) -> None:
    if not sweeps:
        raise ValueError("sweeps: need at least one MixtureSweep")
    for s in sweeps:
        if len(s.tasks) != 2:
            raise ValueError(f"sweeps: need two-task λ sweeps, got tasks {list(s.tasks)}")


def real_p_b(sweep: MixtureSweep) -> np.ndarray:
    """``Float[ndarray, "point"]``: real mixed-prompt P(a_B) at each λ (``ValueError`` if the sweep has none)."""
    if sweep.real_probs is None:
        raise ValueError("sweeps: the real mixed-prompt curve is missing (run lambda_sweep with mixed_reference=True)")
    return sweep.real_probs[:, 1]


def lambda_heatmap_figure(
    sweeps: Sequence[MixtureSweep], *, title: str, marked_layers: Sequence[int | None] | None = None
) -> go.Figure:
    """Top: patched P(a_B) over λ × layer. Bottom: patched P(a_B) − real-mixture P(a_B) at the same λ.

    One column per sweep; ``marked_layers`` (one per sweep, e.g. the pair's best layer) get a dotted line.

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    _check_sweeps(sweeps)
    n = len(sweeps)
    titles = [f"{_pair_title(s, s.tasks)}<br>patched P({s.tasks[1]})" for s in sweeps]
    titles += ["patched − real mixed-prompt P(a_B)"] * n
    fig = make_subplots(rows=2, cols=n, vertical_spacing=0.16, horizontal_spacing=0.08, subplot_titles=titles)
    for j, s in enumerate(sweeps, start=1):
        lam = s.lambdas.tolist()
        p_b = s.probs[:, :, 1].T  # [layer, point]
        diff = p_b - real_p_b(s)[None, :]
        fr = s.real_fractions[:, 1] if s.real_fractions is not None else s.lambdas
        custom = np.stack([np.broadcast_to(real_p_b(s), p_b.shape), np.broadcast_to(fr, p_b.shape)], axis=-1)
        fig.add_trace(
            go.Heatmap(
                x=lam,
                y=list(s.layers),
                z=p_b.tolist(),
                coloraxis="coloraxis",
                customdata=custom.tolist(),
                hovertemplate=(
                    f"λ=%{{x:.3f}}, layer %{{y}}<br>patched P({s.tasks[1]}) = %{{z:.4f}}<br>real mixture "
                    "P = %{customdata[0]:.4f} (B fraction %{customdata[1]:.3f})<extra></extra>"
                ),
            ),
            row=1,
            col=j,
        )
        fig.add_trace(
            go.Heatmap(
                x=lam,
                y=list(s.layers),
                z=diff.tolist(),
                coloraxis="coloraxis2",
                customdata=custom.tolist(),
                hovertemplate=(
                    f"λ=%{{x:.3f}}, layer %{{y}}<br>patched − real P({s.tasks[1]}) = %{{z:+.4f}}<br>real "
                    "mixture P = %{customdata[0]:.4f}<extra></extra>"
                ),
            ),
            row=2,
            col=j,
        )
        if marked_layers is not None and marked_layers[j - 1] is not None:
            for row in (1, 2):
                fig.add_hline(y=marked_layers[j - 1], line_dash="dot", line_color="white", line_width=2, row=row, col=j)
        for row in (1, 2):
            fig.update_xaxes(title_text=LAMBDA_AXIS if row == 2 else "λ", row=row, col=j)
            fig.update_yaxes(title_text="layer ℓ" if j == 1 else None, dtick=1, row=row, col=j)
    fig.update_layout(
        coloraxis=dict(
            colorscale="Cividis", cmin=0, cmax=1, colorbar=dict(title="P(a_B)", len=0.4, y=0.8, yanchor="middle")
        ),
        coloraxis2=dict(
            colorscale="RdBu",
            cmin=-1,
            cmax=1,
            cmid=0,
            colorbar=dict(title="Δ P(a_B)", len=0.4, y=0.2, yanchor="middle"),
        ),
    )
    return style_figure(fig, title, height=760)


def lambda_stacked_figure(
    sweeps: Sequence[MixtureSweep], layers: Sequence[int], *, title: str, notes: Sequence[str] | None = None
) -> go.Figure:
    """Stacked areas of P(a_A), P(a_B), P(other) vs λ at ``layers[i]`` for sweep ``i`` (top row), above the real
    mixed-prompt stack (bottom row, x = requested fraction λ of task-A examples). The real curve's boundaries
    P(a_A) and P(a_A) + P(a_B) are also overlaid dashed on the patched stack for direct comparison.

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    _check_sweeps(sweeps)
    if len(layers) != len(sweeps):
        raise ValueError(f"layers: need one layer per sweep ({len(sweeps)}), got {len(layers)}")
    n = len(sweeps)
    notes = list(notes) if notes is not None else [""] * n
    titles = [
        f"{_pair_title(s, s.tasks)}<br>patched, layer {la}" + (f" ({note})" if note else "")
        for s, la, note in zip(sweeps, layers, notes, strict=True)
    ]
    titles += [f"real prompts, fraction λ of {s.tasks[0]}" for s in sweeps]
    fig = make_subplots(
        rows=2, cols=n, shared_xaxes=True, vertical_spacing=0.12, horizontal_spacing=0.07, subplot_titles=titles
    )
    for j, (s, la) in enumerate(zip(sweeps, layers, strict=True), start=1):
        if la not in s.layers:
            raise ValueError(f"layers: layer {la} not in the sweep's layers {list(s.layers)}")
        li = s.layers.index(la)
        lam = s.lambdas.tolist()
        colors = [family_task_color(s.family, t) for t in s.tasks] + [OTHER_COLOR]
        names = [f"P({t})" for t in s.tasks] + ["P(other)"]
        real = s.real_probs
        for row, probs, sem, label in (
            (1, s.probs[:, li], s.sem[:, li], "patched"),
            (2, real, s.real_sem, "real mixture"),
        ):
            if probs is None:
                continue
            for k in range(3):
                fig.add_trace(
                    go.Scatter(
                        x=lam,
                        y=np.clip(probs[:, k], 0, None).tolist(),
                        mode="lines",
                        stackgroup=f"{row}-{j}",
                        line=dict(color=colors[k], width=0.5),
                        fillcolor=rgba(colors[k], 0.75),
                        name=names[k],
                        legendgroup=names[k] if k == 2 else f"{s.family}:{s.tasks[k]}",
                        showlegend=row == 1 and (k < 2 or j == 1),
                        customdata=np.stack([probs[:, k], sem[:, k]], axis=1).tolist(),
                        hovertemplate=(
                            f"{label} {names[k]}<br>λ=%{{x:.3f}}<br>mean = %{{customdata[0]:.4f}} ± "
                            "%{customdata[1]:.4f} (s.e.m.)<extra></extra>"
                        ),
                    ),
                    row=row,
                    col=j,
                )
        if real is not None:
            for boundary, dash, name in (
                (real[:, 0], "dash", "real-mixture P(a_A) boundary"),
                (real[:, 0] + real[:, 1], "dot", "real-mixture P(a_A)+P(a_B) boundary"),
            ):
                fig.add_trace(
                    go.Scatter(
                        x=lam,
                        y=boundary.tolist(),
                        mode="lines",
                        line=dict(color="black", dash=dash, width=2),
                        name=name,
                        legendgroup=name,
                        showlegend=j == 1,
                        hovertemplate=f"{name}<br>λ=%{{x:.3f}}<br>%{{y:.4f}}<extra></extra>",
                    ),
                    row=1,
                    col=j,
                )
        fig.update_xaxes(title_text=LAMBDA_AXIS, range=[0, 1], row=2, col=j)
        fig.update_xaxes(range=[0, 1], row=1, col=j)
        for row in (1, 2):
            fig.update_yaxes(title_text="P(answer), stacked" if j == 1 else None, range=[0, 1.02], row=row, col=j)
    return style_figure(fig, title, height=760)


# ---------------------------------------------------------------------------------------------
# Decomposition


def decomposition_figure(
    panels: Sequence[Mapping[str, Decomposition]],
    *,
    panel_titles: Sequence[str],
    title: str,
    marked_layers: Sequence[int] | None = None,
    colors: Sequence[Mapping[str, str]] | None = None,
) -> go.Figure:
    """Residual norm ‖y − ŷ‖ vs layer of the true 50/50 mixture and each control, one column per panel.

    ``panels[i]`` maps condition → :class:`~interp.results.Decomposition` (as returned by
    :func:`interp.decomposition.control_decompositions`); ``colors[i]`` overrides condition colours (e.g. the third
    task's own colour). Lower = better explained by span{v_A, v_B, 1}; hover shows the coefficients.

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    if len(panel_titles) != len(panels):
        raise ValueError(f"panel_titles: need one title per panel ({len(panels)}), got {len(panel_titles)}")
    n = len(panels)
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.07, subplot_titles=list(panel_titles))
    seen: set[str] = set()
    for j, panel in enumerate(panels, start=1):
        for cond, d in panel.items():
            color, dash, label = CONDITION_STYLE.get(cond, (OTHER_COLOR, "solid", cond))
            if colors is not None and cond in colors[j - 1]:
                color = colors[j - 1][cond]
            cond_number = d.condition_number if d.condition_number is not None else np.full(len(d.layers), np.nan)
            custom = np.column_stack([d.coefs, d.intercept, cond_number]).tolist()
            names = list(d.names)
            fig.add_trace(
                go.Scatter(
                    x=list(d.layers),
                    y=d.residual_norm.tolist(),
                    mode="lines+markers",
                    line=dict(color=color, dash=dash, width=3 if cond == "mixed" else 2),
                    name=label,
                    legendgroup=cond,
                    showlegend=cond not in seen,
                    customdata=custom,
                    hovertemplate=(
                        f"{label}<br>layer %{{x}}<br>‖residual‖ = %{{y:.4f}}<br>"
                        + "<br>".join(f"c_{nm} = %{{customdata[{i}]:.4f}}" for i, nm in enumerate(names))
                        + f"<br>intercept = %{{customdata[{len(names)}]:.4f}}"
                        + f"<br>condition number = %{{customdata[{len(names) + 1}]:.3g}} (coefficients unreliable "
                        + "above 1e4)<extra></extra>"
                    ),
                ),
                row=1,
                col=j,
            )
            seen.add(cond)
        if marked_layers is not None and marked_layers[j - 1] is not None:
            fig.add_vline(
                x=marked_layers[j - 1],
                line_dash="dot",
                line_color="black",
                row=1,
                col=j,
                annotation_text="best layer",
                annotation_position="top left",
            )
        fig.update_xaxes(title_text=LAYER_AXIS, dtick=1, row=1, col=j)
        fig.update_yaxes(
            title_text="‖residual‖ of unit target on span{v_A, v_B, 1}" if j == 1 else None,
            rangemode="tozero",
            row=1,
            col=j,
        )
    return style_figure(fig, title, height=560)


# ---------------------------------------------------------------------------------------------
# 2-D projections


def projection_figure(
    projections: Sequence[Projection],
    *,
    families: Sequence[str],
    panel_titles: Sequence[str],
    title: str,
    initial_layer: int | None = None,
) -> go.Figure:
    """Scatter of per-prompt vectors in 2-D (LDA or PCA fitted per layer), one column per panel, with a slider
    over the projections' layers (``Projection.layers``, equal in every panel). Point colour: task colour, blended
    for a mixture of two tasks, black for the uniform mixture; larger outlined markers show each group's centroid.

    Long on purpose: every mark of the figure is added here, in drawing order, so its look is read in one place.
    """
    if not projections or not (len(families) == len(panel_titles) == len(projections)):
        raise ValueError("projections: need one family and one panel title per projection (and at least one)")
    layers = list(projections[0].layers)
    for p in projections:
        if list(p.layers) != layers or p.coords.shape[0] != len(layers):
            raise ValueError(f"projections: every projection needs the layers {layers}, got {list(p.layers)}")
    n = len(projections)
    fig = make_subplots(rows=1, cols=n, horizontal_spacing=0.08, subplot_titles=list(panel_titles))
    layer_of_trace: list[int] = []
    first = layers.index(initial_layer) if initial_layer in layers else 0
    for j, (p, fam) in enumerate(zip(projections, families, strict=True), start=1):
        labels = np.array(p.labels)
        groups = list(dict.fromkeys(p.labels))
        axis = "LD" if p.method == "lda" else "PC"
        for li, la in enumerate(layers):
            for g in groups:
                xy = p.coords[li][labels == g]
                color = label_color(fam, g)
                ev = p.explained[li]
                fig.add_trace(
                    go.Scatter(
                        x=xy[:, 0].tolist(),
                        y=xy[:, 1].tolist(),
                        mode="markers",
                        visible=li == first,
                        marker=dict(color=color, size=7, opacity=0.7, symbol="circle" if "+" not in g else "diamond"),
                        name=g,
                        legendgroup=f"{fam}:{g}",
                        showlegend=li == first,
                        hovertemplate=(
                            f"{g} (layer {la})<br>{axis}1 = %{{x:.4f}}<br>{axis}2 = %{{y:.4f}}<br>"
                            f"explained {ev[0]:.3f}, {ev[1]:.3f}<extra></extra>"
                        ),
                    ),
                    row=1,
                    col=j,
                )
                c = xy.mean(axis=0)
                fig.add_trace(
                    go.Scatter(
                        x=[float(c[0])],
                        y=[float(c[1])],
                        mode="markers",
                        visible=li == first,
                        marker=dict(color=color, size=15, symbol="x", line=dict(color="black", width=1.5)),
                        name=f"{g} centroid",
                        legendgroup=f"{fam}:{g}",
                        showlegend=False,
                        hovertemplate=f"{g} centroid (layer {la})<br>({c[0]:.4f}, {c[1]:.4f})<extra></extra>",
                    ),
                    row=1,
                    col=j,
                )
                layer_of_trace += [la, la]
        fig.update_xaxes(title_text=f"{axis}1 (arbitrary units)", row=1, col=j)
        fig.update_yaxes(title_text=f"{axis}2 (arbitrary units)" if j == 1 else None, row=1, col=j)
    steps = []
    for la in layers:
        vis = [t == la for t in layer_of_trace]
        steps.append(
            dict(
                method="update",
                label=str(la),
                args=[{"visible": vis, "showlegend": [v and i % 2 == 0 for i, v in enumerate(vis)]}],
            )
        )
    fig.update_layout(
        sliders=[dict(active=first, steps=steps, currentvalue=dict(prefix="layer ℓ = "), pad=dict(t=60), y=-0.15)]
    )
    fig = style_figure(fig, title, height=640)
    fig.update_layout(legend=dict(y=-0.5), margin=dict(b=200))
    return fig


# ---------------------------------------------------------------------------------------------
# Cosine matrices


def cosine_figure(cosines: Sequence[CosineMatrix], *, panel_titles: Sequence[str], title: str) -> go.Figure:
    """Cosine similarity between vectors, small multiples: one row per panel, one column per layer.

    ``cosines[i]``: a :class:`~interp.results.CosineMatrix` (e.g. :func:`interp.decomposition.cosines`); all share
    their layers. Diverging colour scale fixed to [−1, 1]; each cell shows its value.
    """
    if len(cosines) != len(panel_titles) or not cosines:
        raise ValueError("cosines: need one panel title per matrix (and at least one)")
    layers = list(cosines[0].layers)
    matrices = [c.matrix for c in cosines]
    names = [c.names for c in cosines]
    rows, cols = len(matrices), len(layers)
    titles = [f"{pt} · layer {la}" for pt in panel_titles for la in layers]
    fig = make_subplots(
        rows=rows,
        cols=cols,
        subplot_titles=titles,
        horizontal_spacing=0.04,
        vertical_spacing=0.22 / max(rows - 1, 1) if rows > 1 else 0.1,
    )
    for i, (m, nm) in enumerate(zip(matrices, names, strict=True), start=1):
        m = np.asarray(m)
        if m.shape != (len(layers), len(nm), len(nm)):
            raise ValueError(f"matrices[{i - 1}]: expected shape {(len(layers), len(nm), len(nm))}, got {m.shape}")
        for j, la in enumerate(layers, start=1):
            fig.add_trace(
                go.Heatmap(
                    z=m[j - 1].tolist(),
                    x=list(nm),
                    y=list(nm),
                    coloraxis="coloraxis",
                    texttemplate="%{z:.2f}",
                    textfont=dict(size=9),
                    hovertemplate=f"layer {la}<br>cos(%{{y}}, %{{x}}) = %{{z:.4f}}<extra></extra>",
                ),
                row=i,
                col=j,
            )
            fig.update_yaxes(autorange="reversed", showticklabels=j == 1, row=i, col=j)
            fig.update_xaxes(tickangle=45, row=i, col=j)
    fig.update_layout(
        coloraxis=dict(colorscale="RdBu", cmin=-1, cmax=1, cmid=0, colorbar=dict(title="cosine similarity"))
    )
    return style_figure(fig, title, height=max(420, 380 * rows + 120))
