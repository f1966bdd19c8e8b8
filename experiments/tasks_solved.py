"""Regenerate figures/tasks_solved/ (HTML, PNG, JSON).

python experiments/tasks_solved.py [--model SPEC] [--quick] [--out DIR]
"""

from interp.studies import script_main

if __name__ == "__main__":
    script_main("tasks_solved")
