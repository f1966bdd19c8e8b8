"""Regenerate figures/generation_collapse/ (HTML, PNG, JSON).

python experiments/generation_collapse.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("generation_collapse")
