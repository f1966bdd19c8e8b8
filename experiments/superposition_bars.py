"""Regenerate figures/superposition_bars/ (HTML, PNG, JSON).

python experiments/superposition_bars.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("superposition_bars")
