"""Regenerate figures/mixture_sweep/ (HTML, PNG, JSON).

python experiments/mixture_sweep.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("mixture_sweep")
