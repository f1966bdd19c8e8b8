"""A transformer built by hand (no training) that runs K retrieval tasks in superposition: ground truth.

The model is a TransformerLens model (a ``TransformerBridge`` around a TL-native model on 4.x, a ``HookedTransformer``
on 3.9) of standard GPT-2-style blocks (LayerNorm, attention, ReLU MLP), 5 layers, with hand-set weights, the
project's char tokenizer and the toolkit's BOS convention, so every ``interp`` function runs on it unchanged. Its
right answers are known in closed form (``docs/construction.md`` has the weights as maths):

- layer 0: one head finds each position's last delimiter (BOS or ``\\n``); the MLP turns the distance into the index
  of the position in its line: flags ``D_k`` (letter at position ``i_k`` of its string, one per task) and ``Ans``
  (the answer letter of an example).
- layer 1: one head, at each answer letter, finds the letter of the same example's string equal to it and copies
  its flags: ``T = e_k`` when the example belongs to task ``k`` (task identified from its (input, answer) pair).
- layer 2 (:data:`TASK_LAYER`): one head at the query attends uniformly to all answer letters and averages ``T``:
  the residual gains ``F = Σ_k f_k e_{F_k}``, ``f_k`` = in-context fraction of task ``k``. This is the task vector.
- layer 3: head ``k`` (one per task) copies the query's letter at position ``i_k`` (= task ``k``'s answer),
  reading only earlier positions (so it survives patching the query's residual); the MLP computes
  ``h_k ≈ 1 + log(f_k) / L`` (piecewise linear, clipped at 0).
- optionally (``reader=True``, spec ``:reader=yes``) one more layer-3 head, the *query reader*, averages the query
  string's letters (the keys in the query's own line) into a bag ``G`` that layer 4 also requires: one head that
  every task needs and that carries no task (what a trained model's query-reading head does).
- layer 4: the MLP gates ``h_k`` by the copied letter; the unembedding gives ``logit(v) = log f_k`` when ``v`` is
  task ``k``'s answer and ``-L`` for every other token, so ``P(task k's answer) = f_k`` (a mixture), up to the
  piecewise-linear log (knots ×1.1 apart: < 0.1 % relative error) and the ``e^{-L}`` mass left on other tokens.

LayerNorm is made (almost exactly) linear: every position carries a large constant anchor (``+M, -M``), so the
norm every LayerNorm divides by is constant to a relative ``‖rest‖²/(4M²)`` (< 1e-5), and every reading matrix has
zero column sums (a "sink" coordinate that is never written carries minus the column sum), so the centring does
nothing. Capacity: each task needs its own head in layer 3, so ``K ≤ n_heads`` (a :class:`ValueError` otherwise);
an in-context task the model has no head for gets no mass and the others share it: ``P(k) = f_k / Σ_{j≤K} f_j``
(:func:`predicted_probs`).

>>> model = build_constructed_model("retrieval", tasks=["pos1", "pos3"])
>>> model.interp_info.model_id, model.cfg.n_heads, model.cfg.n_layers
('constructed:retrieval:tasks=pos1+pos3', 2, 5)
>>> load_constructed("constructed:retrieval:K=3").interp_construction.tasks
('pos1', 'pos2', 'pos3')
"""

from __future__ import annotations

import math
import string
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from interp.models import LOADED_MODELS, ModelInfo, WeightProcessing, hooked_from_tl_weights
from interp.tasks import RETRIEVAL_LENGTH, get_family, resolve_tasks
from interp.tokenization import build_char_tokenizer, char_vocab

PREFIX = "constructed"
FAMILIES = ("retrieval",)
SPEC_KEYS = ("K", "tasks", "heads", "query", "reader")
#: Values of the spec's ``reader`` option.
READER_VALUES = ("yes", "no")
#: Score per position of line start that puts the query reader on the query's own line (a line is 11 positions
#: long, so the previous line's letters lose by 22).
LINE_GAIN = 2.0
#: Where the query's letters are looked up: ``"earlier"`` (layer 3, reading the query string at earlier positions,
#: so patching the query's own residual leaves them intact) or ``"last"`` (layer 1, copying them into the query's
#: last position, where a full replacement of the residual then erases them: the failure mode of ``x>`` prompts).
QUERY_READS = ("earlier", "last")
DTYPES = ("float32", "float64")
#: The layer whose ``resid_post`` at the query holds the task fractions (patch task vectors here).
TASK_LAYER = 2
N_LAYERS = 5
LETTERS = string.ascii_letters
#: Logit margin every hard attention pattern wins by (e^-20 ≈ 2e-9 of the weight leaks).
MARGIN = 20.0
#: Logit of every token that is no task's answer (``P ∝ e^-L``); also the floor of ``log f``.
LOG_FLOOR = 20.0
#: The anchor: every residual vector carries ``(+M, -M)`` so LayerNorm divides by a constant.
ANCHOR = 1000.0
#: Smallest fraction where the piecewise-linear log is exact at a knot; knots are ``LOG_RATIO`` apart.
LOG_MIN = 1 / 256
LOG_RATIO = 1.1
EXAMPLE_PERIOD = RETRIEVAL_LENGTH + 3  # "abcdefgh>c\n": string, separator, answer, newline
#: Longest context: every fraction a prompt can realise (≥ 1 / max examples) lies on the interpolated log.
MAX_CTX = round(1 / LOG_MIN) * EXAMPLE_PERIOD + RETRIEVAL_LENGTH + 2
ANSWER_INDEX = RETRIEVAL_LENGTH + 2  # an answer letter sits 10 positions after its line's delimiter


@dataclass(frozen=True)
class Layout:
    """Which residual coordinates hold what (indices into ``d_model``; names as in ``docs/construction.md``).

    >>> lay = Layout.for_tasks(2); lay.fractions, lay.d_model
    ((65, 66), 226)
    """

    n_tasks: int
    anchor: tuple[int, int]
    sink: int
    letters: tuple[int, ...]
    newline: int
    bos: int
    sep: int
    u: int
    u_delim: int
    d_flags: tuple[int, ...]
    ans: int
    t_flags: tuple[int, ...]
    fractions: tuple[int, ...]
    lookups: tuple[tuple[int, ...], ...]
    logs: tuple[int, ...]
    logit_letters: tuple[int, ...]
    logit_newline: int
    bag: tuple[int, ...]
    d_model: int

    @classmethod
    def for_tasks(cls, k: int, reader: bool = False) -> Layout:
        """Coordinates in order: anchor (2), sink, letters (52), flags, u, u_d, D (k), Ans, T (k), F (k),
        R (52 k), h (k), Z (52), Z_newline, and with the query reader the bag G (52)."""
        nxt = iter(range(10**6))

        def take(n: int) -> tuple[int, ...]:
            return tuple(next(nxt) for _ in range(n))

        one = lambda: next(nxt)  # noqa: E731 - reads like take(1)[0]
        n = len(LETTERS)
        return cls(
            n_tasks=k, anchor=(one(), one()), sink=one(), letters=take(n), newline=one(), bos=one(), sep=one(),
            u=one(), u_delim=one(), d_flags=take(k), ans=one(), t_flags=take(k), fractions=take(k),
            lookups=tuple(take(n) for _ in range(k)), logs=take(k), logit_letters=take(n), logit_newline=one(),
            bag=take(n if reader else 0), d_model=next(nxt),
        )  # fmt: skip


@dataclass(frozen=True)
class Construction:
    """What a constructed model computes: its tasks, their string positions, its heads and residual layout."""

    family: str
    tasks: tuple[str, ...]
    positions: tuple[int, ...]
    n_heads: int
    n_ctx: int
    layout: Layout
    task_layer: int = TASK_LAYER
    query: str = "earlier"
    reader: bool = False

    @property
    def reader_head(self) -> int | None:
        """The query reader's head in layer 3 (after the lookups there; ``None`` without one)."""
        if not self.reader:
            return None
        return len(self.tasks) if self.query == "earlier" else 0

    @property
    def lookup_layer(self) -> int:
        """The layer whose heads copy the query's letters (3 for ``query="earlier"``, 1 for ``"last"``)."""
        return 3 if self.query == "earlier" else 1

    @property
    def first_head(self) -> int:
        """Head of task 0's lookup in :attr:`lookup_layer` (layer 1's head 0 identifies the examples' tasks)."""
        return 0 if self.query == "earlier" else 1

    @property
    def model_id(self) -> str:
        fam = get_family(self.family)
        spec = f"{PREFIX}:{self.family}"
        spec += (
            f":K={len(self.tasks)}"
            if self.tasks == fam.task_names[: len(self.tasks)]
            else ":tasks=" + "+".join(self.tasks)
        )
        default_heads = len(self.tasks) + self.first_head + (self.reader and self.query == "earlier")
        spec += f":heads={self.n_heads}" if self.n_heads != default_heads else ""
        return spec + (":query=last" if self.query == "last" else "") + (":reader=yes" if self.reader else "")


# ---------------------------------------------------------------------------------------------
# Spec parsing and validation


def _spec_error(spec: str, why: str) -> ValueError:
    return ValueError(
        f"spec: {spec!r}: {why}. Valid: 'constructed:<family>[:K=<k>][:tasks=<t1>+<t2>...][:heads=<h>]"
        f"[:query=earlier|last][:reader=yes|no]' with "
        f"family one of {', '.join(FAMILIES)}, e.g. 'constructed:retrieval:K=4'"
    )


def parse_spec(spec: str) -> dict:
    """Arguments of :func:`build_constructed_model` from a spec like ``"constructed:retrieval:K=4"``.

    >>> parse_spec("constructed:retrieval:tasks=pos1+pos8:heads=4")
    {'family': 'retrieval', 'tasks': ['pos1', 'pos8'], 'n_heads': 4}
    """
    if not isinstance(spec, str):
        raise ValueError(f"spec: expected a string like 'constructed:retrieval:K=4', got {spec!r}")
    parts = spec.split(":")
    if parts[0] != PREFIX or len(parts) < 2:
        raise _spec_error(spec, f"must start with '{PREFIX}:<family>'")
    family = parts[1]
    if family not in FAMILIES:
        raise ValueError(f"family: {family!r} has no construction; valid: {', '.join(FAMILIES)} (spec {spec!r})")
    opts: dict[str, str] = {}
    for part in parts[2:]:
        key, eq, value = part.partition("=")
        if not eq or key not in SPEC_KEYS or key in opts or not value:
            raise _spec_error(
                spec, f"bad option {part!r} (options: {', '.join(k + '=' for k in SPEC_KEYS)}, once each)"
            )
        opts[key] = value
    if "K" in opts and "tasks" in opts:
        raise _spec_error(spec, "give K or tasks, not both")
    out: dict = {"family": family, "tasks": None, "n_heads": None}
    if "query" in opts:
        if opts["query"] not in QUERY_READS:
            raise _spec_error(spec, f"query must be one of {', '.join(QUERY_READS)}, got {opts['query']!r}")
        out["query"] = opts["query"]
    if "reader" in opts:
        if opts["reader"] not in READER_VALUES:
            raise _spec_error(spec, f"reader must be one of {', '.join(READER_VALUES)}, got {opts['reader']!r}")
        out["reader"] = opts["reader"] == "yes"
    names = get_family(family).task_names
    for key, name in (("K", "K"), ("heads", "n_heads")):
        if key in opts:
            if not opts[key].isdigit() or int(opts[key]) < 1:
                raise _spec_error(spec, f"{key} must be an integer >= 1, got {opts[key]!r}")
            out[name] = int(opts[key])
    if "K" in opts:
        k = out.pop("K")
        if k > len(names):
            raise ValueError(f"K: {k} tasks asked, family {family!r} has {len(names)}; valid: 1..{len(names)}")
        out["tasks"] = list(names[:k])
    if "tasks" in opts:
        out["tasks"] = opts["tasks"].split("+")
    return out


def _check_build_args(
    family: str,
    tasks: Sequence[str] | None,
    n_heads: int | None,
    n_ctx: int,
    dtype: str,
    query: str = "earlier",
    reader: bool = False,
):
    if query not in QUERY_READS:
        raise ValueError(f"query: {query!r} not supported; valid: {', '.join(QUERY_READS)}")
    if not isinstance(reader, bool):
        raise ValueError(f"reader: must be True or False, got {reader!r}")
    # query="last": layer 1's head 0 identifies tasks, lookups come after; a reader sits after layer 3's lookups
    extra = (0 if query == "earlier" else 1) + (reader and query == "earlier")
    if family not in FAMILIES:
        raise ValueError(f"family: {family!r} has no construction; valid: {', '.join(FAMILIES)}")
    if isinstance(tasks, str):
        tasks = [tasks]
    names = resolve_tasks(get_family(family), tasks)
    if n_heads is None:
        n_heads = len(names) + extra
    if not isinstance(n_heads, int) or n_heads < 1:
        raise ValueError(f"n_heads: must be an integer >= 1, got {n_heads!r}")
    if len(names) + extra > n_heads:
        where = "layer 3" if query == "earlier" else "layer 1, beside the task-identifying head"
        where += ", beside the query reader" if reader and query == "earlier" else ""
        raise ValueError(
            f"tasks: {len(names)} tasks need {len(names) + extra} heads (one lookup head per task in {where}), but "
            f"n_heads={n_heads}; valid: n_heads >= {len(names) + extra}, or at most {n_heads - extra} tasks"
        )
    if not isinstance(n_ctx, int) or not 2 * EXAMPLE_PERIOD <= n_ctx <= MAX_CTX:
        raise ValueError(
            f"n_ctx: must be an integer in {2 * EXAMPLE_PERIOD}..{MAX_CTX} (the log is interpolated down to a "
            f"fraction of {LOG_MIN:g}, one example in {round(1 / LOG_MIN)}), got {n_ctx!r}"
        )
    if dtype not in DTYPES:
        raise ValueError(f"dtype: {dtype!r} not supported; valid: {', '.join(DTYPES)}")
    return names, n_heads


# ---------------------------------------------------------------------------------------------
# Weights (float64 numpy, written as in docs/construction.md; readers are sink-corrected at the end)


@dataclass(frozen=True)
class Shape:
    """The hand-built model's sizes (what its weights are laid out by; TransformerLens's LayerNorm eps)."""

    n_layers: int
    d_model: int
    d_head: int
    n_heads: int
    d_mlp: int
    d_vocab: int
    n_ctx: int
    eps: float = 1e-5

    @property
    def attn_scale(self) -> float:
        """What attention scores are divided by: √d_head."""
        return math.sqrt(self.d_head)

    def fields(self) -> dict[str, int | float]:
        return {k: getattr(self, k) for k in self.__dataclass_fields__}


def _zeros(cfg: Shape) -> dict[str, np.ndarray]:
    d, h, dh, m, v = cfg.d_model, cfg.n_heads, cfg.d_head, cfg.d_mlp, cfg.d_vocab
    w: dict[str, np.ndarray] = {
        "embed.W_E": np.zeros((v, d)),
        "pos_embed.W_pos": np.zeros((cfg.n_ctx, d)),
        "ln_final.w": np.ones(d),
        "ln_final.b": np.zeros(d),
        "unembed.W_U": np.zeros((d, v)),
        "unembed.b_U": np.zeros(v),
    }
    for la in range(cfg.n_layers):
        p = f"blocks.{la}."
        w |= {p + "ln1.w": np.ones(d), p + "ln1.b": np.zeros(d), p + "ln2.w": np.ones(d), p + "ln2.b": np.zeros(d)}
        w |= {p + f"attn.W_{x}": np.zeros((h, d, dh)) for x in "QKV"}
        w |= {p + f"attn.b_{x}": np.zeros((h, dh)) for x in "QKV"}
        w |= {p + "attn.W_O": np.zeros((h, dh, d)), p + "attn.b_O": np.zeros(d)}
        w |= {p + "mlp.W_in": np.zeros((d, m)), p + "mlp.b_in": np.zeros(m)}
        w |= {p + "mlp.W_out": np.zeros((m, d)), p + "mlp.b_out": np.zeros(d)}
    return w


def _embeddings(w: dict, lay: Layout, n_ctx: int) -> None:
    vocab = char_vocab()
    for j, ch in enumerate(LETTERS):
        w["embed.W_E"][vocab[ch], lay.letters[j]] = 1.0
    w["embed.W_E"][vocab["\n"], lay.newline] = 1.0
    w["embed.W_E"][vocab["<|bos|>"], lay.bos] = 1.0
    w["embed.W_E"][vocab[">"], lay.sep] = 1.0
    w["pos_embed.W_pos"][:, lay.anchor[0]] = ANCHOR
    w["pos_embed.W_pos"][:, lay.anchor[1]] = -ANCHOR
    w["pos_embed.W_pos"][:, lay.u] = np.arange(n_ctx) / n_ctx  # u = p / n_ctx


def _trapezoid(w_in: np.ndarray, b_in: np.ndarray, w_out: np.ndarray, col: int, read: dict, center: float, out: int):
    """Neurons ``col..col+3``: output ``1`` where the read value is within 0.25 of ``center``, 0 beyond 0.75."""
    for j, (off, gain) in enumerate(((-0.75, 2.0), (-0.25, -2.0), (0.25, -2.0), (0.75, 2.0))):
        for dim, coef in read.items():
            w_in[dim, col + j] = coef
        b_in[col + j] = -(center + off)
        w_out[col + j, out] = gain
    return col + 4


def _layer0(w: dict, lay: Layout, c: Construction, scale: float) -> None:
    """Head 0: attend to the last delimiter, copy its ``u``; MLP: index = n_ctx (u − u_delim) → D_k, Ans."""
    rho = MARGIN / 10  # a newline beats the one 11 positions earlier by 2.2 MARGIN
    c_bos = 10 * rho + MARGIN  # beats the ≤ 10 more recent non-delimiters
    c_nl = c_bos + MARGIN  # a newline right after BOS (zero-shot prompts) beats BOS
    p = "blocks.0."
    w[p + "attn.b_Q"][0, 0] = scale
    w[p + "attn.W_K"][0, lay.newline, 0] = c_nl
    w[p + "attn.W_K"][0, lay.bos, 0] = c_bos
    w[p + "attn.W_K"][0, lay.u, 0] = rho * c.n_ctx
    w[p + "attn.W_V"][0, lay.u, 0] = 1.0
    w[p + "attn.W_O"][0, 0, lay.u_delim] = 1.0
    read = {lay.u: float(c.n_ctx), lay.u_delim: -float(c.n_ctx)}
    col = 0
    for pos, dim in zip(c.positions, lay.d_flags, strict=True):
        col = _trapezoid(w[p + "mlp.W_in"], w[p + "mlp.b_in"], w[p + "mlp.W_out"], col, read, pos, dim)
    _trapezoid(w[p + "mlp.W_in"], w[p + "mlp.b_in"], w[p + "mlp.W_out"], col, read, ANSWER_INDEX, lay.ans)


def _layer1(w: dict, lay: Layout, c: Construction, scale: float) -> None:
    """Head 0 at every letter: attend to the most recent equal letter that is not an answer; copy its D flags."""
    rho = MARGIN / 4  # the previous string's letters lie ≥ 4 positions before the current string's
    c_match = 9 * rho + MARGIN  # beats the ≤ 9 more recent non-matching positions
    c_ans = 9 * rho + MARGIN  # the answer itself (and earlier answers) lose to the matching string letter
    p = "blocks.1."
    n = len(LETTERS)
    for j in range(n):
        w[p + "attn.W_Q"][0, lay.letters[j], j] = c_match * scale
        w[p + "attn.W_K"][0, lay.letters[j], j] = 1.0
    w[p + "attn.b_Q"][0, n] = scale
    w[p + "attn.b_Q"][0, n + 1] = scale
    w[p + "attn.W_K"][0, lay.u, n] = rho * c.n_ctx
    w[p + "attn.W_K"][0, lay.ans, n + 1] = -c_ans
    for k in range(lay.n_tasks):
        w[p + "attn.W_V"][0, lay.d_flags[k], k] = 1.0
        w[p + "attn.W_O"][0, k, lay.t_flags[k]] = 1.0


def _layer2(w: dict, lay: Layout, scale: float) -> None:
    """Head 0 at the query: uniform attention over answer letters; F = mean of T = task fractions."""
    p = "blocks.2."
    w[p + "attn.b_Q"][0, 0] = scale
    w[p + "attn.W_K"][0, lay.ans, 0] = 1.5 * MARGIN  # ≤ n_ctx other positions share e^-30 of the weight
    for k in range(lay.n_tasks):
        w[p + "attn.W_V"][0, lay.t_flags[k], k] = 1.0
        w[p + "attn.W_O"][0, k, lay.fractions[k]] = 1.0


def log_knots() -> np.ndarray:
    """Knots ``0 < LOG_MIN = t_0 < … < t_J = 1`` (ratio ≤ ``LOG_RATIO``) of the piecewise-linear log."""
    n = math.ceil(math.log(1 / LOG_MIN) / math.log(LOG_RATIO))
    return np.exp(np.linspace(math.log(LOG_MIN), 0.0, n + 1))


def log_curve(f: np.ndarray | float) -> np.ndarray:
    """``h(f)``: the MLP's piecewise-linear ``1 + log(f)/L`` (exact at 0 → 0 and at the knots), clipped to [0, 1]."""
    xs = np.concatenate([[0.0], log_knots()])
    ys = np.concatenate([[0.0], 1 + np.log(log_knots()) / LOG_FLOOR])
    return np.interp(np.asarray(f, dtype=float), xs, ys)


def _lookups(w: dict, lay: Layout, c: Construction, scale: float) -> None:
    """Head k of :attr:`Construction.lookup_layer`: copy the most recent letter with flag D_k (the query's letter
    i_k, task k's answer) into ``R_k``. In layer 3 every position writes its own copy, and the query's is read at
    the query after the patch layer; in layer 1 (``query="last"``) the copy sits in the query's residual from then
    on, where a replacement of that residual erases it."""
    rho = MARGIN / 10  # the previous string's letter i_k is 11 positions earlier
    c_flag = 8 * rho + MARGIN  # beats the ≤ 8 more recent unflagged positions
    c_sep = rho * c.n_ctx + MARGIN  # '>' positions (the query itself, patched or not) never win
    p = f"blocks.{c.lookup_layer}."
    for k in range(lay.n_tasks):
        h = c.first_head + k
        w[p + "attn.b_Q"][h, :3] = scale
        w[p + "attn.W_K"][h, lay.d_flags[k], 0] = c_flag
        w[p + "attn.W_K"][h, lay.u, 1] = rho * c.n_ctx
        w[p + "attn.W_K"][h, lay.sep, 2] = -c_sep
        for j in range(len(LETTERS)):
            w[p + "attn.W_V"][h, lay.letters[j], j] = 1.0
            w[p + "attn.W_O"][h, j, lay.lookups[k][j]] = 1.0


def _layer3(w: dict, lay: Layout, c: Construction, scale: float) -> None:
    """MLP: h_k = log_curve(F_k) (and, for ``query="earlier"``, the lookup heads: :func:`_lookups`)."""
    p = "blocks.3."
    xs = np.concatenate([[0.0], log_knots()])
    ys = log_curve(xs)
    slopes = np.diff(ys) / np.diff(xs)
    gains = np.diff(np.concatenate([[0.0], slopes]))
    for k in range(lay.n_tasks):
        cols = np.arange(k * len(gains), (k + 1) * len(gains))
        w[p + "mlp.W_in"][lay.fractions[k], cols] = 1.0
        w[p + "mlp.b_in"][cols] = -xs[:-1]
        w[p + "mlp.W_out"][cols, lay.logs[k]] = gains


def _query_reader(w: dict, lay: Layout, c: Construction, scale: float) -> None:
    """Layer-3 head :attr:`Construction.reader_head`: uniform attention over the letters of the query's own line
    (keys whose line starts where the query's does, ``u_d``, beat earlier lines by ``LINE_GAIN`` per position; letters
    beat the line's delimiter and ``>`` by MARGIN), value ``ℓ_v → G_v`` × 8: ``G_v = 1`` for the query's letters."""
    p, h = "blocks.3.", c.reader_head
    w[p + "attn.b_Q"][h, :2] = scale
    w[p + "attn.W_K"][h, lay.u_delim, 0] = LINE_GAIN * c.n_ctx
    for j in range(len(LETTERS)):
        w[p + "attn.W_K"][h, lay.letters[j], 1] = MARGIN
        w[p + "attn.W_V"][h, lay.letters[j], j] = 1.0
        w[p + "attn.W_O"][h, j, lay.bag[j]] = float(RETRIEVAL_LENGTH)


def _layer4(w: dict, lay: Layout) -> None:
    """MLP: Z_v = Σ_k ReLU(h_k + R_k[v] − 1) (= h_k where v is task k's answer), with the query reader
    Σ_k ReLU(h_k + R_k[v] + G_v − 2) (v must also be a letter of the query); Z_newline = 2·Ans."""
    p = "blocks.4."
    n = len(LETTERS)
    gated = bool(lay.bag)
    for k in range(lay.n_tasks):
        for j in range(n):
            col = k * n + j
            w[p + "mlp.W_in"][lay.logs[k], col] = 1.0
            w[p + "mlp.W_in"][lay.lookups[k][j], col] = 1.0
            if gated:
                w[p + "mlp.W_in"][lay.bag[j], col] = 1.0
            w[p + "mlp.b_in"][col] = -2.0 if gated else -1.0
            w[p + "mlp.W_out"][col, lay.logit_letters[j]] = 1.0
    col = lay.n_tasks * n
    w[p + "mlp.W_in"][lay.ans, col] = 1.0
    w[p + "mlp.W_out"][col, lay.logit_newline] = 2.0


def _unembed(w: dict, lay: Layout) -> None:
    """logit(v) = L·Z_v − L: a task's answer gets L·h_k − L ≈ log f_k, every other token −L ('\\n' after answers: L)."""
    vocab = char_vocab()
    for j, ch in enumerate(LETTERS):
        w["unembed.W_U"][lay.logit_letters[j], vocab[ch]] = LOG_FLOOR
    w["unembed.W_U"][lay.logit_newline, vocab["\n"]] = LOG_FLOOR
    w["unembed.b_U"][:] = -LOG_FLOOR


def _normalise_readers(w: dict, lay: Layout, cfg) -> None:
    """LayerNorm gains = the anchor's norm scale; every matrix reading a LayerNorm output gets zero column sums."""
    gain = math.sqrt(2 * ANCHOR**2 / cfg.d_model + cfg.eps)
    for name in list(w):
        if name.endswith((".w",)) and "ln" in name:
            w[name][:] = gain
    readers = ["unembed.W_U"] + [f"blocks.{la}.mlp.W_in" for la in range(cfg.n_layers)]
    readers += [f"blocks.{la}.attn.W_{x}" for la in range(cfg.n_layers) for x in "QKV"]
    for name in readers:
        mat = np.moveaxis(w[name], -2, 0)  # [d_model, ...] view
        mat[lay.sink] = 0.0
        mat[lay.sink] = -mat.sum(axis=0)


# ---------------------------------------------------------------------------------------------
# Building


def build_constructed_model(
    family: str = "retrieval",
    tasks: Sequence[str] | None = None,
    *,
    n_heads: int | None = None,
    n_ctx: int = 2048,
    device: str = "cpu",
    dtype: str = "float32",
    query: str = "earlier",
    reader: bool = False,
):
    """The hand-built superposition model for ``tasks`` of ``family`` (default: all its tasks), as a TransformerLens
    model that looks like a :func:`interp.models.load_model` result.

    Args:
        family: ``"retrieval"`` (the only family with a construction).
        tasks: the K tasks it runs (``pos{i}``), one lookup head each.
        n_heads: heads per layer (default K); ``ValueError`` when K > n_heads (capacity).
        n_ctx: context length (positions, ≤ :data:`MAX_CTX`); retrieval prompts hold ``(n_ctx − 10) // 11`` examples
            (the default 2048 also fits the other families' prompts, which the model cannot solve).
        device, dtype: ``"float32"`` (default) or ``"float64"``.
        query: ``"earlier"`` (default: the lookups read the query string at earlier positions, after the task layer)
            or ``"last"`` (they copy the query's letters into its last position in layer 1, so that a replacement of
            that residual at layers ≥ 1 erases the query: the failure mode the self-patch control must catch).
        reader: add the query reader (a layer-3 head every task needs, carrying no task; one more head).

    The model carries ``model.interp_construction`` (:class:`Construction`: tasks, positions, residual layout).

    >>> m = build_constructed_model(tasks=["pos2", "pos5"])
    >>> m.interp_construction.positions, m.cfg.d_model
    ((2, 5), 226)
    """
    names, n_heads = _check_build_args(family, tasks, n_heads, n_ctx, dtype, query, reader)
    lay = Layout.for_tasks(len(names), reader=reader)
    positions = tuple(int(t.removeprefix("pos")) for t in names)
    construction = Construction(family, names, positions, n_heads, n_ctx, lay, query=query, reader=reader)
    n_letters = len(LETTERS)
    d_mlp = max(4 * (len(names) + 1), len(names) * len(log_knots()), len(names) * n_letters + 1)
    shape = Shape(
        n_layers=N_LAYERS,
        d_model=lay.d_model,
        d_head=n_letters + 4,
        n_heads=n_heads,
        d_mlp=d_mlp,
        d_vocab=len(char_vocab()),
        n_ctx=n_ctx,
    )
    w = _zeros(shape)
    scale = shape.attn_scale
    _embeddings(w, lay, n_ctx)
    _layer0(w, lay, construction, scale)
    _layer1(w, lay, construction, scale)
    _layer2(w, lay, scale)
    _lookups(w, lay, construction, scale)
    _layer3(w, lay, construction, scale)
    if reader:
        _query_reader(w, lay, construction, scale)
    _layer4(w, lay)
    _unembed(w, lay)
    _normalise_readers(w, lay, shape)
    model = hooked_from_tl_weights(
        {**shape.fields(), "act_fn": "relu", "model_name": construction.model_id}, w, device=device, dtype=dtype
    )
    return _finish(model, construction, device)


def _finish(model, construction: Construction, device: str):
    """Attach the tokenizer and metadata exactly as :func:`interp.models.hooked_from_hf` does."""
    tok = build_char_tokenizer()
    tok.padding_side = "right"  # the toolkit right-pads: causal attention needs no mask then
    model.tokenizer = tok
    model.cfg.tokenizer_prepends_bos = False
    model.interp_info = ModelInfo(construction.model_id, "constructed by interp.construction", WeightProcessing())
    model.interp_construction = construction
    LOADED_MODELS.add(model)
    return model


def load_constructed(spec: str, *, device: str = "cpu", dtype: str = "float32"):
    """The constructed model named by ``spec`` (``"constructed:retrieval:K=4"``, ``…:tasks=pos1+pos8``,
    ``…:heads=6``); a clear ``ValueError`` for anything else.

    >>> load_constructed("constructed:retrieval:K=2").interp_info.model_id
    'constructed:retrieval:K=2'
    """
    return build_constructed_model(**parse_spec(spec), device=device, dtype=dtype)


# ---------------------------------------------------------------------------------------------
# The known right answers


def construction_of(model) -> Construction:
    """The :class:`Construction` of a constructed model (``ValueError`` for any other model)."""
    c = getattr(model, "interp_construction", None)
    if c is None:
        raise ValueError("model: not a constructed model; build it with interp.construction.build_constructed_model")
    return c


def task_directions(model) -> torch.Tensor:
    """``Float[Tensor, "task d_model"]``: unit residual directions ``e_{F_k}`` that hold task k's fraction at the
    query after :data:`TASK_LAYER` (a task vector of task k is a task-independent vector plus ``e_{F_k}``)."""
    c = construction_of(model)
    out = torch.zeros(len(c.tasks), model.cfg.d_model, dtype=model.cfg.dtype)
    for k, dim in enumerate(c.layout.fractions):
        out[k, dim] = 1.0
    return out


def log_error() -> float:
    """δ = max over ``f`` in ``[LOG_MIN, 1]`` of ``|L (h(f) − 1) − log f|``: the logit error of the interpolated log
    (largest midway between knots, so a fine grid between each pair of knots finds it)."""
    knots = log_knots()
    f = np.concatenate([np.geomspace(a, b, 201) for a, b in zip(knots[:-1], knots[1:], strict=True)])
    return float(np.abs(LOG_FLOOR * (log_curve(f) - 1.0) - np.log(f)).max())


def probability_error_bound(n_tasks: int, vocab_size: int) -> float:
    """A bound on ``|P(a_k) − f_k|`` that holds for every prompt, every fraction and every K ≤ ``n_tasks``.

    With logits ``log f_k + ε_k``, ``|ε_k| ≤ δ`` (:func:`log_error`) and ``V − K`` other tokens at ``−L``:
    ``P_k = f_k e^{ε_k} / (Σ_j f_j e^{ε_j} + (V − K) e^{−L})``, so ``|P_k − f_k| ≤ f_k (e^{2δ} − 1) + (V − K) e^{−L}``,
    and ``f_k ≤ 1``.

    >>> round(probability_error_bound(4, 162), 4)
    0.0022
    """
    return math.expm1(2 * log_error()) + (vocab_size - 1) * math.exp(-LOG_FLOOR)


def predicted_probs(model, fractions: Sequence[float] | np.ndarray) -> np.ndarray:
    """The construction's prediction of P(answer of task k) from in-context fractions ``Float[ndarray, "... task"]``
    (columns = the model's tasks; fractions of tasks it has no head for just lower their sum).

    ``P_k = exp(L (h(f_k) − 1)) / (Σ_j exp(L (h(f_j) − 1)) + (V − K) e^{−L})`` with ``h`` = :func:`log_curve`
    (≈ ``f_k / Σ_j f_j``).
    """
    c = construction_of(model)
    f = np.asarray(fractions, dtype=float)
    if f.shape[-1] != len(c.tasks):
        raise ValueError(f"fractions: last axis must have one value per task ({len(c.tasks)}), got {f.shape}")
    num = np.exp(LOG_FLOOR * (log_curve(f) - 1.0))
    rest = (model.cfg.d_vocab - len(c.tasks)) * math.exp(-LOG_FLOOR)
    return num / (num.sum(axis=-1, keepdims=True) + rest)
