"""Training a GPT-2-architecture model from scratch on single-task in-context prompts, one job per module.

``config`` (TrainConfig, ranges, JSON loading) · ``data`` (batches via :mod:`interp.tasks`, prefetching) ·
``positions`` (position-table inits, the fresh model) · ``schedule`` (learning rate by step or by time) ·
``evaluate`` (the ONE accuracy, :func:`interp.scoring.greedy_correct`) · ``checkpoints`` (atomic HF directories,
resumable state) · ``loop`` (the loop) · ``probe`` (throughput of candidate sizes). :mod:`interp.train`
re-exports the public names.
"""
