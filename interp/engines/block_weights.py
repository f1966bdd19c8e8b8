"""What the fused forward reads of a block's attention and MLP, gathered once per weight version.

On TransformerLens 3.x ``attn.W_Q`` is a parameter; on a 4.x ``TransformerBridge`` it is a property that rebuilds a
view of the Hugging Face weight on every access (about a millisecond each on the embedded model), and the fused
forward reads a dozen such names per layer per call. Here they are read once and kept, keyed on the module's own
parameters (their storage and version counter: an in-place edit or a replaced weight is noticed, whatever name it
was reached by). With autograd on, nothing is kept: the weights must be in the graph.

>>> import torch
>>> from interp.models import load_model
>>> attn = load_model("embedded").blocks[0].attn
>>> with torch.no_grad():  # kept without autograd only
...     w = attention_weights(attn)
...     kept = attention_weights(attn) is w
>>> w.w_qkv.shape[1] == 3 * w.n_live * w.d_head and kept
True
"""

from __future__ import annotations

import contextvars
import math
import time
import weakref
from collections.abc import Iterator
from contextlib import contextmanager
from typing import NamedTuple

import torch

from interp.engines.exact import fused_forward_exact
from interp.engines.weights_cache import cached_from_weights

_CONSTANT = contextvars.ContextVar("interp_constant_weights", default=False)


@contextmanager
def constant_weights() -> Iterator[None]:
    """Inside, with autograd on, the weights are read as constants (gathered and kept as without autograd, outside
    the graph): a backward pass reaches the activations only, which is all a gradient with respect to an input or an
    activation needs (attribution patching), and the kept weights are not gathered again per call."""
    token = _CONSTANT.set(True)
    try:
        yield
    finally:
        _CONSTANT.reset(token)


def weights_in_graph() -> bool:
    """Whether the weights must be read into the autograd graph (autograd on, outside :func:`constant_weights`)."""
    return torch.is_grad_enabled() and not _CONSTANT.get()


#: Layers up to this many query/key/value weights keep their side-by-side copy between calls (GPT-2 medium: 3.1M);
#: larger ones build it per call (a copy of every layer's weights would cost more memory than it saves time).
QKV_CACHE_MAX = 4_000_000


class AttentionWeights(NamedTuple):
    """An attention's weights as the fused forward uses them (``live``: the heads that write, ``None`` for all).

    ``w_qkv``: ``Float[Tensor, "d_model 3·live·d_head"]`` (queries, keys, values side by side); ``b_qkv``:
    ``Float[Tensor, "3·live·d_head"]``; ``w_o``: ``Float[Tensor, "live·d_head d_model"]``; ``b_o``:
    ``Float[Tensor, "d_model"]``; ``scale``: what scores are divided by.
    """

    live: torch.Tensor | None
    w_qkv: torch.Tensor
    b_qkv: torch.Tensor
    w_o: torch.Tensor
    b_o: torch.Tensor
    d_head: int
    scale: float

    @property
    def n_live(self) -> int:
        """How many heads write (0: the attention adds its output bias only)."""
        return self.w_o.shape[0] // self.d_head


def _scale(attn, d_head: int) -> float:
    """TransformerLens 3.x's ``attn_scale``; a 4.x bridge's attention has none, and reaches the fused forward only
    where it is √d_head (:func:`interp.engines.exact.bridge_gpt2_style`)."""
    scale = getattr(attn, "attn_scale", None)
    return float(scale) if scale is not None else math.sqrt(d_head)


def _live_heads(w_o, w_v, b_v) -> torch.Tensor | None:
    """Indices of the heads that can write to the residual stream (``None``: all of them).

    A head whose output weights ``W_O[h]`` are all zero, or whose values are zero whatever the input (``W_V[h]`` and
    ``b_V[h]`` all zero), adds exactly nothing: hand-built and pruned models have many.
    """
    writes = w_o.flatten(1).ne(0).any(1) & (w_v.flatten(1).ne(0).any(1) | b_v.ne(0).any(1))
    return None if bool(writes.all()) else writes.nonzero().flatten()


def _gather_attention(attn) -> AttentionWeights:
    w_q, w_k, w_v, w_o = attn.W_Q, attn.W_K, attn.W_V, attn.W_O
    b = [attn.b_Q, attn.b_K, attn.b_V]
    with torch.no_grad():
        live = _live_heads(w_o, w_v, b[2])
    w = [w_q, w_k, w_v]
    if live is not None:
        w, b, w_o = [x[live] for x in w], [x[live] for x in b], w_o[live]
    w_all = torch.cat(w)  # [3 · heads, d_model, d_head]
    d_head = w_q.shape[-1]
    return AttentionWeights(
        live=live,
        w_qkv=w_all.permute(1, 0, 2).reshape(w_all.shape[1], -1),
        b_qkv=torch.cat(b).reshape(-1),
        w_o=w_o.reshape(-1, w_o.shape[-1]),
        b_o=attn.b_O,
        d_head=d_head,
        scale=_scale(attn, d_head),
    )


def attention_weights(attn) -> AttentionWeights:
    """``attn``'s :class:`AttentionWeights`: kept per module until one of its parameters changes (without autograd,
    and for layers up to :data:`QKV_CACHE_MAX` query/key/value weights); built afresh with autograd on."""
    if weights_in_graph():
        return _gather_attention(attn)
    cfg = getattr(attn, "cfg", None) or attn.config  # a HookedTransformer's ``cfg``, a bridge component's ``config``
    if 3 * cfg.d_model * cfg.n_heads * cfg.d_head > QKV_CACHE_MAX:
        return _gather_attention(attn)
    return cached_from_weights(attn, "fused attention", tuple(attn.parameters()), lambda: _gather_attention(attn))


def silent_heads_only(attn) -> bool:
    """Whether every head the fused attention leaves out (see :func:`_live_heads`) has values that are zero whatever
    the input, so that its ``z`` is exactly zero, as the fused forward's ``z_tap`` reports it; ``False`` where a head
    is left out for its zero ``W_O`` alone (its ``z``, which ``hook_z`` reads, is not zero). Kept like
    :func:`attention_weights`."""
    if attention_weights(attn).live is None:
        return True

    def check() -> bool:
        with torch.no_grad():
            w_v, b_v = attn.W_V, attn.b_V
            return not bool((w_v.flatten(1).ne(0).any(1) | b_v.ne(0).any(1))[_dead(attn)].any())

    if weights_in_graph():
        return check()
    return cached_from_weights(attn, "silent heads only", tuple(attn.parameters()), check)


def _dead(attn) -> torch.Tensor:
    """``Bool[Tensor, "head"]``: the heads the fused attention leaves out."""
    live = attention_weights(attn).live
    out = torch.ones(attn.W_O.shape[0], dtype=torch.bool)
    if live is not None:
        out[live.cpu()] = False
    return out


def output_weights(attn) -> tuple[torch.Tensor, torch.Tensor]:
    """Every head's output weights ``Float[Tensor, "head·d_head d_model"]`` (dead heads included, unlike
    :class:`AttentionWeights`) and the output bias ``Float[Tensor, "d_model"]``: what a patched head's ``z`` is written
    through. Kept per module like :func:`attention_weights` (without autograd)."""

    def gather() -> tuple[torch.Tensor, torch.Tensor]:
        w_o = attn.W_O
        return w_o.reshape(-1, w_o.shape[-1]), attn.b_O

    if weights_in_graph():
        return gather()
    return cached_from_weights(attn, "output weights", tuple(attn.parameters()), gather)


class MlpWeights(NamedTuple):
    """The weights of an MLP's neurons that write (``W_out`` row not all zero): ``w_in``
    ``Float[Tensor, "d_model live"]``, ``b_in`` ``Float[Tensor, "live"]``, ``w_out`` ``Float[Tensor, "live d_model"]``
    (the weights themselves when all write, copies of the slices when some do; ``n_live == 0``: none does) and
    ``b_out``."""

    w_in: torch.Tensor
    b_in: torch.Tensor
    w_out: torch.Tensor
    b_out: torch.Tensor

    @property
    def n_live(self) -> int:
        return self.w_out.shape[0]


def _gather_mlp(mlp) -> MlpWeights:
    w_in, b_in, w_out = mlp.W_in, mlp.b_in, mlp.W_out
    with torch.no_grad():
        writes = w_out.ne(0).any(1)
    if not bool(writes.all()):
        idx = writes.nonzero().flatten()
        w_in, b_in, w_out = w_in[:, idx].contiguous(), b_in[idx].contiguous(), w_out[idx].contiguous()
    return MlpWeights(w_in, b_in, w_out, mlp.b_out)


def mlp_weights(mlp) -> MlpWeights:
    """``mlp``'s :class:`MlpWeights`, kept per module until one of its parameters changes; built afresh with autograd
    on."""
    if weights_in_graph():
        return _gather_mlp(mlp)
    return cached_from_weights(mlp, "fused mlp", tuple(mlp.parameters()), lambda: _gather_mlp(mlp))


#: Seconds the first :func:`gather_weights` of each model took (weakly keyed: gone with the model).
_GATHERED: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def plain_mlp_activation(mlp):
    """The activation of a plain two-layer MLP (``W_in``, activation, ``W_out``, no gate, no inner norm) whose
    weights the fast path may read: TransformerLens 3.x's ``MLP`` or a bridge around Hugging Face's GPT-2 MLP or a
    TL-native one; ``None`` for anything else (the module then runs itself)."""
    if type(mlp).__name__ == "MLP":
        return mlp.act_fn if getattr(mlp, "ln", None) is None else None
    inner = getattr(mlp, "original_component", None)
    if type(inner).__name__ in ("GPT2MLP", "NativeMLP") and getattr(inner, "ln", None) is None:
        return inner.act
    return None


def gather_weights(model) -> float:
    """Gather what the fused forward reads of every block (side-by-side Q/K/V, live heads, output weights, the MLP's
    writing neurons) now, once per model, and return the seconds that first gathering took (the same number on every
    later call: nothing is gathered again until a weight changes, and then lazily, by the call that needs it).

    Without it the first call of a study pays this cost inside its first measurement (≈ the cost of one warm call on
    a TransformerBridge, whose weights are views rebuilt on every access); studies and benchmarks call it first and
    report it apart. 0 for a model the fused forward does not run (:func:`interp.engines.exact.fused_forward_exact`).

    >>> from interp.models import load_model
    >>> gather_weights(load_model("embedded")) >= 0
    True
    """
    if model in _GATHERED:
        return _GATHERED[model]
    if not fused_forward_exact(model):
        return 0.0
    start = time.perf_counter()
    with torch.no_grad():
        for block in model.blocks:
            attention_weights(block.attn)
            output_weights(block.attn)
            if plain_mlp_activation(block.mlp) is not None:
                mlp_weights(block.mlp)
    _GATHERED[model] = time.perf_counter() - start
    return _GATHERED[model]
