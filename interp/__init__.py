"""interp: the reference toolkit for task superposition (Xiong et al., arXiv 2410.05603).

Data flows one way: tasks → prompts → model run (hooks) → tensors → metrics / vectors → figures.
Importing the package is cheap; heavy libraries load on first use.
"""

__version__ = "0.1.0"
