"""Recompute the trend verdicts of the committed scaling JSON from its own units (no model runs).

The verdicts (:func:`interp.studies.scaling_pairs.verdicts`: Page's L with the seeds as blocks, and the Spearman
correlations) are a pure function of the per-(size, seed, pair) units and the parameter counts the study wrote, so a
change of the rule is applied to the committed numbers without re-running the models (whose parameter counts, as
the bridge of TransformerLens 4.x reports them, differ from those of 3.9 that made the figures):

    python experiments/scaling_verdicts.py            # rewrite the verdicts of figures/scaling/*.json
    python experiments/scaling_verdicts.py --check    # exit 1 when a committed verdict differs from the rule
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from interp.export import round_floats, write_json
from interp.studies.scaling_pairs import verdicts

ROOT = Path(__file__).resolve().parents[1]
FILES = (ROOT / "figures" / "scaling" / "scaling.json", ROOT / "figures" / "scaling" / "scaling_pairs.json")


def pairs_block(numbers: dict) -> dict:
    """The seeds-and-pairs numbers of either file (nested in scaling.json, top level in scaling_pairs.json)."""
    return numbers.get("seeds_and_pairs", numbers)


def recomputed(block: dict) -> dict:
    """The verdicts the current rule gives for ``block``'s units."""
    params = {size: block["summary"][size]["n_params"] for size in block["sizes"]}
    units = [u for u in block["units"] if u["size"] not in block["extra"]]
    return verdicts(units, params, [s for s in block["sizes"] if s not in block["extra"]])


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--check", action="store_true", help="exit 1 when a committed verdict differs from the rule")
    args = ap.parse_args(argv)
    stale = []
    for path in FILES:
        numbers = json.loads(path.read_text())
        block = pairs_block(numbers)
        fresh = json.loads(json.dumps(recomputed(block)))
        if args.check:
            stale += [] if round_floats(fresh) == block["verdicts"] else [path.name]
            continue
        block["verdicts"] = fresh
        write_json(path, numbers)
        print(f"rewrote the verdicts of {path}")
    if stale:
        print(f"stale verdicts in {', '.join(stale)}: run python experiments/scaling_verdicts.py")
    return 1 if stale else 0


if __name__ == "__main__":
    sys.exit(main())
