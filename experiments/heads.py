"""Regenerate figures/heads/ (HTML, PNG, JSON).

python experiments/heads.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("heads")
