"""Measure the claim rules' false-positive rate and power on the hand-built model (docs/science.md §7).

python experiments/claims_calibration.py            # → figures/claims/calibration.json
python experiments/claims_calibration.py --quick    # a smoke run into /tmp
"""

from __future__ import annotations

import argparse
import json

from interp.studies.claims_calibration import CalibrationConfig, run


def main(argv: list[str] | None = None) -> dict:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quick", action="store_true", help="two trials, one dose: a smoke run")
    ap.add_argument("--out", default=None, help="output folder (default figures/claims, or /tmp/claims with --quick)")
    args = ap.parse_args(argv)
    config = CalibrationConfig.quick() if args.quick else CalibrationConfig()
    out = args.out or ("/tmp/claims" if args.quick else "figures/claims")
    result = run(config, out)
    print(json.dumps({k: result["numbers"][k] for k in ("steering", "trend")}, indent=1))
    print(f"wrote {result['paths']['json']} in {result['numbers']['runtime_s']} s")
    return result


if __name__ == "__main__":
    main()
