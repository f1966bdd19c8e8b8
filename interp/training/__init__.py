"""Training a GPT-2-architecture model from scratch on single-task in-context prompts, one job per module.

Every training prompt holds examples of ONE task (families and tasks vary across prompts, never within one); the
loss is on answer characters and the newline after each answer. The model is a plain Hugging Face
``GPT2LMHeadModel`` with the project's character-level tokenizer; checkpoints are standard HF GPT-2 directories that
:func:`interp.models.load_model` reads. Evaluation uses the toolkit's one accuracy,
:func:`interp.scoring.greedy_correct`.

``config`` (TrainConfig, ranges, JSON loading) · ``data`` (batches via :mod:`interp.tasks`, prefetching) ·
``positions`` (position-table inits, the fresh model) · ``schedule`` (learning rate by step or by time) ·
``evaluate`` (the ONE accuracy) · ``checkpoints`` (atomic HF directories, resumable state) · ``loop`` (the loop) ·
``probe`` (throughput of candidate sizes). The package re-exports the public names.

>>> cfg = TrainConfig(families={"bias_add": 1.0}, n_layers=1, d_model=32, n_heads=2, n_ctx=64,
...                   n_examples={"bias_add": 8}, batch_size=4, steps=2, eval_every=0, checkpoint_every=0)
>>> cfg.steps
2
"""

from __future__ import annotations

from interp.training.checkpoints import load_state, save_checkpoint, save_state
from interp.training.config import CHECKPOINT_DTYPES, POSITION_INITS, PRECISIONS, TrainConfig, read_config_json
from interp.training.data import Prefetcher, SingleTaskBatches
from interp.training.evaluate import as_hooked, evaluate
from interp.training.loop import TRAIN_DEVICES, check_device, train, train_step
from interp.training.positions import init_model, model_config, periodic_positions, sinusoidal_positions
from interp.training.schedule import lr_factor, step_lr_factor, time_lr_factor

__all__ = [
    "CHECKPOINT_DTYPES",
    "POSITION_INITS",
    "PRECISIONS",
    "TRAIN_DEVICES",
    "Prefetcher",
    "SingleTaskBatches",
    "TrainConfig",
    "as_hooked",
    "check_device",
    "evaluate",
    "init_model",
    "load_state",
    "lr_factor",
    "model_config",
    "periodic_positions",
    "read_config_json",
    "save_checkpoint",
    "save_state",
    "sinusoidal_positions",
    "step_lr_factor",
    "time_lr_factor",
    "train",
    "train_step",
]
