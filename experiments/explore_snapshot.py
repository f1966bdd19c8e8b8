"""Regenerate figures/explore/ (HTML, PNG, JSON): what ``interp.explore`` draws, for the README.

The panel's sliders are live ipywidgets and need a Jupyter kernel; this script drives them from code, as a person
would move them, and saves :meth:`~interp.panel.ExplorePanel.snapshot` (both charts, the settings in the title):

* ``explore_embedded``: the embedded model, bias_add add7 : add1 = 1 : 1, and the shift of v(λ = 1) = v(add7) at
  layer 1 (where the self-patch control passes);
* ``explore_constructed``: the hand-built retrieval model, pos1 : pos2 = 3 : 1, and v(λ = 0.75) replaced at its task
  layer 2, where it steers exactly (P(pos1) = λ).

python experiments/explore_snapshot.py [--out DIR]
"""

from __future__ import annotations

import argparse
from pathlib import Path

from interp.atomic_folder import one_set
from interp.models import load_model
from interp.panel import explore
from interp.studies.common import write_outputs

SETTINGS = {
    "explore_embedded": dict(
        model="embedded", family="bias_add", tasks=("add7", "add1"), weights=(0.5, 0.5), layer=1, lam=1.0, mode="shift"
    ),
    "explore_constructed": dict(
        model="constructed:retrieval:K=2",
        family="retrieval",
        tasks=("pos1", "pos2"),
        weights=(0.75, 0.25),
        layer=2,
        lam=0.75,
        mode="replace",
    ),
}


def snapshot(name: str, out: str) -> dict:
    """Set the panel as ``SETTINGS[name]`` says, save its snapshot and numbers; return the written paths."""
    setting = SETTINGS[name]
    panel = explore(load_model(setting["model"]), n_prompts=24, seed=0)
    panel.family.value = setting["family"]
    panel.task_a.value, panel.task_b.value = setting["tasks"]
    for slider, weight in zip(panel.weights, (*setting["weights"], 0.0), strict=True):
        slider.value = weight
    panel.layer.value, panel.lam.value, panel.mode.value = setting["layer"], setting["lam"], setting["mode"]
    fig = panel.snapshot()
    numbers = {
        "model": setting["model"],
        "settings": panel.settings(),
        "mixture": panel.explorer.mixture(panel.family.value, panel.tasks, panel.proportions).as_dict(),
        "patched": panel.explorer.patched(
            panel.family.value, setting["tasks"], setting["layer"], setting["lam"], setting["mode"]
        ).as_dict(),
        "unpatched": panel.explorer.unpatched(panel.family.value, setting["tasks"]).as_dict(),
    }
    return write_outputs(fig, numbers, out, name)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", default="figures/explore", help="output folder (default: figures/explore)")
    args = parser.parse_args()
    if not args.out:
        parser.error("--out: must name a folder")
    with one_set(args.out) as staging:  # both pictures as one set: a failure part-way leaves the previous ones
        written = {name: snapshot(name, str(staging)) for name in SETTINGS}
    for paths in written.values():
        for kind, path in paths.items():
            if path:
                print(f"{kind}: {Path(args.out) / Path(path).name}")


if __name__ == "__main__":
    main()
