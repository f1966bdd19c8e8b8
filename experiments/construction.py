"""Regenerate figures/construction/ (HTML, PNG, JSON): the hand-built model vs the embedded model.

python experiments/construction.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("construction")
