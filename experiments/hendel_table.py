"""Hendel et al.'s table for every shipped model (docs/science.md §4): zero-shot, task-vector and in-context accuracy.

python experiments/hendel_table.py            # → figures/hendel/hendel_table.json
python experiments/hendel_table.py --quick    # the hand-built K=2 model only, into /tmp/hendel
"""

from __future__ import annotations

import argparse

from interp.studies.hendel_table import HendelConfig, run


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="the hand-built K=2 model, few prompts: a smoke run")
    ap.add_argument("--out", default=None, help="output folder (default figures/hendel, or /tmp/hendel with --quick)")
    args = ap.parse_args(argv)
    config = HendelConfig.quick() if args.quick else HendelConfig()
    result = run(config, args.out or ("/tmp/hendel" if args.quick else "figures/hendel"), progress=True)
    for m in result["numbers"]["models"]:
        s = m["mean_over_tasks"]
        tv = ", ".join(f"{mode} {s[mode]['task_vector']['mean']:.2f}" for mode in config.modes)
        print(
            f"{m['model']}: zero-shot {s['zero_shot']['mean']:.2f}, task vector {tv}, in-context {s['icl']['mean']:.2f}"
        )
    print(f"wrote {result['paths']['json']} in {result['numbers']['runtime_s']} s")
    return result


if __name__ == "__main__":
    main()
