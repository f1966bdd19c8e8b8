"""``interp.explore(model)``: a live panel for Jupyter (ipywidgets) to play with task superposition.

Two halves, each a picker row, sliders and a bar chart of the answer distribution with 95% CIs over prompts:

* **Mixture**: family, tasks A, B and (optionally) C, one weight slider per task (normalised to the proportions of
  the examples) → P(each task's answer) on mixed prompts.
* **Intervention**: layer, λ and mode → P(answers) of zero-shot queries with v(λ) = λ·v_A + (1 − λ)·v_B put in at
  that layer, beside the same queries with nothing patched.

Sliders update when released (``continuous_update=False``: one update per move, not one per pixel), and repeated
settings come from :class:`~interp.explorer.Explorer`'s cache. A bad setting or a failed measurement shows its message
in the panel's status line; no traceback reaches the notebook. Without ipywidgets, :func:`explore` raises an
``ImportError`` saying what to install.

In a notebook cell, ``interp.explore(interp.load_model("embedded"))`` displays the panel. Driven from code:

>>> from interp.models import load_model
>>> panel = explore(load_model("constructed:retrieval:K=2"), n_prompts=8)
>>> panel.weights[1].value = 0.0          # what moving task B's weight slider to 0 does
>>> round(float(panel.mixture_figure.data[0].y[0]), 2)   # P(pos1's answer): all examples are pos1's now
1.0
"""

from __future__ import annotations

import html
import time
from typing import Any

from interp.explorer import SWEEP_MODES, Explorer
from interp.plots.distribution import distribution_figure
from interp.plots.style import style_figure

#: Label of the "no third task" choice.
NONE = "—"


def _widgets():
    try:
        import ipywidgets
    except ImportError as err:  # an optional dependency: say what to install
        raise ImportError(
            "interp.explore needs ipywidgets (and a Jupyter front end): pip install ipywidgets jupyterlab, "
            "or pip install -e '.[dev]' in this repository"
        ) from err
    return ipywidgets


class ExplorePanel:
    """The panel :func:`explore` returns: its controls are attributes (``family``, ``task_a``, ``task_b``,
    ``task_c``, ``weights``, ``layer``, ``lam``, ``mode``), as are the figures last drawn (``mixture_figure``,
    ``patch_figure``, plotly figures), the ``status`` line and ``timings`` (seconds of each update, newest last)."""

    def __init__(self, explorer: Explorer) -> None:
        w = _widgets()
        self.explorer = explorer
        self.mixture_figure = None
        self.patch_figure = None
        self.timings: list[float] = []
        families = explorer.families
        if not families:
            raise ValueError("model: knows no registered family (nothing to explore)")
        self.family = w.Dropdown(options=families, value=families[0], description="family")
        self.task_a = w.Dropdown(description="task A")
        self.task_b = w.Dropdown(description="task B")
        self.task_c = w.Dropdown(description="task C")
        slider = dict(min=0.0, max=1.0, step=0.05, continuous_update=False, readout_format=".2f")
        self.weights = [
            w.FloatSlider(value=v, description=f"weight {k}", **slider)
            for k, v in zip("ABC", (0.5, 0.5, 0.0), strict=True)
        ]
        self.layer = w.IntSlider(
            value=len(explorer.layers) // 2,
            min=0,
            max=len(explorer.layers) - 1,
            description="layer",
            continuous_update=False,
        )
        self.lam = w.FloatSlider(value=0.5, description="λ (task A)", **slider)
        self.mode = w.Dropdown(options=SWEEP_MODES, value="replace", description="mode")
        self.status = w.HTML()
        self._mixture_out, self._patch_out = w.Output(), w.Output()
        self._updating = False
        self._set_task_options()
        self.widget = w.VBox(
            [
                w.HTML("<b>Mixed prompts</b>: the proportions of each task's examples"),
                w.HBox([self.family, self.task_a, self.task_b, self.task_c]),
                w.HBox(self.weights),
                self._mixture_out,
                w.HTML("<b>Task vectors</b>: v(λ) = λ·v_A + (1 − λ)·v_B put into zero-shot queries"),
                w.HBox([self.layer, self.lam, self.mode]),
                self._patch_out,
                self.status,
            ]
        )
        self.family.observe(self._on_family, names="value")
        for control in (self.task_a, self.task_b, self.task_c):
            control.observe(self._on_tasks, names="value")
        for control in self.weights:
            control.observe(lambda _: self.update_mixture(), names="value")
        for control in (self.layer, self.lam, self.mode):
            control.observe(lambda _: self.update_patch(), names="value")
        self.update()

    # ------------------------------------------------------------------ display
    def _repr_mimebundle_(self, **kwargs: Any):
        return self.widget._repr_mimebundle_(**kwargs)

    # ------------------------------------------------------------------ controls
    def _set_task_options(self) -> None:
        tasks = self.explorer.tasks(self.family.value)
        self._updating = True
        try:
            self.task_a.options = tasks
            self.task_a.value = tasks[0]
            self.task_b.options = tasks
            self.task_b.value = tasks[1] if len(tasks) > 1 else tasks[0]
            self.task_c.options = (NONE, *tasks)
            self.task_c.value = NONE
        finally:
            self._updating = False

    def _on_family(self, _change) -> None:
        self._set_task_options()
        self.update()

    def _on_tasks(self, _change) -> None:
        if not self._updating:
            self.update()

    @property
    def tasks(self) -> tuple[str, ...]:
        """The tasks picked (A, B and C unless C is "—")."""
        picked = (self.task_a.value, self.task_b.value, self.task_c.value)
        return tuple(t for t in picked if t != NONE)

    @property
    def proportions(self) -> tuple[float, ...]:
        """The weights of the picked tasks, normalised to sum to 1."""
        weights = [s.value for s in self.weights[: len(self.tasks)]]
        total = sum(weights)
        if total <= 0:
            raise ValueError("weights: at least one task needs a weight above 0")
        return tuple(v / total for v in weights)

    # ------------------------------------------------------------------ updates
    def update(self) -> None:
        """Redraw both halves."""
        self.update_mixture()
        self.update_patch()

    def _run(self, what: str, compute) -> None:
        if self._updating:
            return
        start = time.perf_counter()
        try:
            compute()
        except Exception as err:  # shown in the panel: a notebook user sees the message, never a traceback
            self.status.value = f'<span style="color:#B00020">{what}: {html.escape(str(err))}</span>'
        else:
            self.status.value = ""
        finally:
            self.timings.append(time.perf_counter() - start)

    def update_mixture(self) -> None:
        """Measure and draw the mixed prompts of the current setting."""

        def compute() -> None:
            dist = self.explorer.mixture(self.family.value, self.tasks, self.proportions)
            self.mixture_figure = distribution_figure(dist)
            self._show(self._mixture_out, self.mixture_figure)

        self._run("mixture", compute)

    def update_patch(self) -> None:
        """Measure and draw the patched queries of the current setting (tasks A and B)."""

        def compute() -> None:
            family, pair = self.family.value, (self.task_a.value, self.task_b.value)
            dist = self.explorer.patched(family, pair, self.layer.value, self.lam.value, self.mode.value)
            self.patch_figure = distribution_figure(dist, reference=self.explorer.unpatched(family, pair))
            self._show(self._patch_out, self.patch_figure)

        self._run("intervention", compute)

    # ------------------------------------------------------------------ snapshot
    def settings(self) -> dict[str, Any]:
        """The controls' current values (what :meth:`snapshot` writes in its title and a script can save)."""
        return {
            "family": self.family.value,
            "tasks": list(self.tasks),
            "proportions": [round(p, 4) for p in self.proportions],
            "layer": int(self.layer.value),
            "lam": float(self.lam.value),
            "mode": self.mode.value,
        }

    def snapshot(self, *, height: int = 440):
        """Both charts as they stand, side by side in one plotly figure with the settings in its title: what the
        panel shows, for a file or a page without a kernel (the sliders themselves need a live kernel).

        Raises ``RuntimeError`` while the status line shows an error (the charts would not match the controls).
        """
        from plotly.subplots import make_subplots

        if self.status.value or self.mixture_figure is None or self.patch_figure is None:
            raise RuntimeError("snapshot: the panel's last update failed; fix the setting shown in its status line")
        s = self.settings()
        mix = ", ".join(f"{t} {p:.2f}" for t, p in zip(s["tasks"], s["proportions"], strict=True))
        pair = f"{self.task_a.value}, {self.task_b.value}"
        fig = make_subplots(
            rows=1,
            cols=2,
            horizontal_spacing=0.08,
            subplot_titles=(
                f"mixed prompts: {mix}",
                f"{s['mode']} v(λ={s['lam']:.2f}) of ({pair}) at layer {s['layer']}",
            ),
        )
        for trace in self.mixture_figure.data:  # copies: the panel's own figures stay as they are
            fig.add_trace(type(trace)(trace, showlegend=False), row=1, col=1)
        patched, *reference = self.patch_figure.data
        fig.add_trace(type(patched)(patched, name=f"patched ({patched.name})"), row=1, col=2)
        for trace in reference:
            fig.add_trace(type(trace)(trace), row=1, col=2)
        style_figure(fig, f"interp.explore on {s['family']}: P(answer), 95% CIs over prompts", height=height)
        fig.update_layout(barmode="group", margin=dict(t=90, b=60))
        fig.update_yaxes(title="P(answer)", range=[0, 1.05], row=1, col=1)
        fig.update_yaxes(range=[0, 1.05], row=1, col=2)
        return fig

    @staticmethod
    def _show(out, fig) -> None:
        from IPython import get_ipython
        from IPython.display import display

        if get_ipython() is None:  # no kernel (a script, a test): the figure is an attribute, nothing to draw
            return
        with out:
            out.clear_output(wait=True)
            display(fig)


def explore(
    model, *, n_prompts: int = 24, n_examples: int | None = None, seed: int = 0, queries: str = "zero_shot"
) -> ExplorePanel:
    """A live panel for ``model`` (see the module docstring); arguments as in :class:`~interp.explorer.Explorer`."""
    _widgets()  # before any work: the error names what to install
    return ExplorePanel(Explorer(model, n_prompts=n_prompts, n_examples=n_examples, seed=seed, queries=queries))
