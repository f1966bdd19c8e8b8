r"""The same benchmark under two TransformerLens versions, row by row: ``ours`` time on each, their ratio, each verdict.

``make bench`` writes ``benchmarks/results.json`` with the installed TransformerLens; run it once in each environment
(``.venv`` for 4.x, ``.venv-tl3`` for 3.9, writing the second to another file with ``--out``) on the same machine, then

    python benchmarks/compare_versions.py benchmarks/results_tl3.json benchmarks/results.json \
        --out benchmarks/versions.json

A row counts as slower when the newer run takes more than ``--noise`` times the older one's time (default 1.25: the
spread of repeated runs of the slowest rows on the 2-core machine). Equality rows (no time) compare verdicts only.
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]


def compare(old: dict, new: dict, noise: float = 1.25) -> dict:
    """Rows of both runs side by side (``old``/``new``: ``benchmarks/run.py`` JSON), with a summary.

    >>> row = {"name": "x", "ours_s": 1.0, "pass": True}
    >>> out = compare({"meta": {}, "rows": [row]}, {"meta": {}, "rows": [row | {"ours_s": 2.0}]})
    >>> out["rows"][0]["new_over_old"], out["summary"]["slower"]
    (2.0, ['x'])
    """
    if noise < 1:
        raise ValueError(f"noise: must be >= 1 (a ratio of times), got {noise!r}")
    before = {r["name"]: r for r in old["rows"]}
    rows = []
    for r in new["rows"]:
        o = before.get(r["name"])
        if o is None:
            continue
        timed = o["ours_s"] > 0 and r["ours_s"] > 0
        rows.append(
            {
                "name": r["name"],
                "old_s": o["ours_s"],
                "new_s": r["ours_s"],
                "new_over_old": r["ours_s"] / o["ours_s"] if timed else None,
                "old_pass": o["pass"],
                "new_pass": r["pass"],
            }
        )
    ratios = [r["new_over_old"] for r in rows if r["new_over_old"] is not None]
    return {
        "old_meta": old.get("meta", {}),
        "new_meta": new.get("meta", {}),
        "noise": noise,
        "rows": rows,
        "summary": {
            "rows": len(rows),
            "timed": len(ratios),
            "median_new_over_old": statistics.median(ratios) if ratios else None,
            "slower": [r["name"] for r in rows if r["new_over_old"] is not None and r["new_over_old"] > noise],
            "faster": [r["name"] for r in rows if r["new_over_old"] is not None and r["new_over_old"] < 1 / noise],
            "newly_failing": [r["name"] for r in rows if r["old_pass"] and not r["new_pass"]],
            "newly_passing": [r["name"] for r in rows if r["new_pass"] and not r["old_pass"]],
        },
    }


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("old", help="benchmarks/run.py JSON of the older version")
    ap.add_argument("new", help="benchmarks/run.py JSON of the newer version")
    ap.add_argument("--noise", type=float, default=1.25, help="ratio beyond which a row counts as slower")
    ap.add_argument("--out", default=None, help="write the comparison as JSON here")
    args = ap.parse_args(argv)
    old, new = (json.loads(Path(p).read_text()) for p in (args.old, args.new))
    out = compare(old, new, args.noise)
    tl = (out["old_meta"].get("transformer_lens", "?"), out["new_meta"].get("transformer_lens", "?"))
    print(f"{'name':<62} {'TL ' + tl[0]:>10} {'TL ' + tl[1]:>10} {'new/old':>8}  verdicts")
    for r in out["rows"]:
        ratio = "" if r["new_over_old"] is None else f"{r['new_over_old']:.2f}"
        verdicts = f"{'PASS' if r['old_pass'] else 'FAIL'} -> {'PASS' if r['new_pass'] else 'FAIL'}"
        print(f"{r['name'][:62]:<62} {r['old_s']:>10.3g} {r['new_s']:>10.3g} {ratio:>8}  {verdicts}")
    s = out["summary"]
    print(f"{s['rows']} rows in both, {s['timed']} timed; median new/old {s['median_new_over_old']:.2f}; "
          f"slower beyond x{args.noise}: {len(s['slower'])}; faster: {len(s['faster'])}; "
          f"newly failing: {s['newly_failing']}")  # fmt: skip
    if args.out:
        sys.path.insert(0, str(ROOT))
        from interp.export import atomic_write_bytes

        atomic_write_bytes(args.out, (json.dumps(out, indent=2) + "\n").encode())
    return 0


if __name__ == "__main__":
    sys.exit(main())
