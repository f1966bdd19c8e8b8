"""Exact answer probabilities: P(answer | prompt) by teacher forcing, for :class:`~interp.prompts.Prompt` values or
one's own strings.

For a prompt and a candidate answer, ``prompt + answer`` is tokenised *together* (BOS convention of
:func:`interp.tokenization.encode`); the scored tokens start where that sequence first departs from the prompt's own
tokens (an answer whose first token merges with the prompt's last one is counted in
:attr:`AnswerScores.n_merged`). The work itself is done by :func:`interp.engines.score` (the one door to the
engines: packed rows, a key-value cache or full rows, whichever is exact and fastest for the model); this module
checks the prompts, warns where a model's numbers are unreliable, reuses scores inside
:func:`interp.remember.remembering`, and returns :class:`~interp.results.AnswerScores`.

>>> from interp.prompts import build_prompts                       # doctest: +SKIP
>>> scores = score_answers(model, build_prompts("operands", n_prompts=8))  # doctest: +SKIP
>>> scores.probs.shape, scores.other.shape                          # doctest: +SKIP
((8, 3), (8,))
"""

from __future__ import annotations

import warnings
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import replace

import numpy as np

from interp.engines import score
from interp.engines.plan import check_batch_size
from interp.hooks import attached_hooks
from interp.models import trained_examples
from interp.prompts import Prompt, check_prompts
from interp.remember import scores_memo
from interp.results import AnswerScores
from interp.validate import (
    ArgumentError,
    ArgumentTypeError,
    check_choice,
    check_flag,
    check_model,
    check_sequence,
)


@contextmanager
def family_candidates(model, prompts: Sequence[Prompt], task: str) -> Iterator[None]:
    """For measurements whose candidates are every task of the family by design (best layer, head effects): inside,
    a hand-built model's "not built for" warning is raised once, for ``task`` only, not for every candidate."""
    if getattr(model, "interp_construction", None) is not None and prompts:
        p = prompts[0]
        warn_untrained(model, [replace(p, tasks=(task,), answers=(p.answer(task),))])
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="prompts: this hand-built model was built for")
        yield


#: ``Prompt.family`` of the prompts :func:`score_texts` makes from plain strings.
TEXTS_FAMILY = "texts"


def warn_untrained(model, prompts: Sequence[Prompt]) -> None:
    """Warn when a model trained by ``interp train`` meets a family it never saw, or a prompt whose query sits past
    the positions its training prompts reached (its numbers there are unreliable); and when a hand-built model
    (:mod:`interp.construction`) is asked about a family or tasks it was not built for (it answers those with
    near-uniform noise)."""
    built = getattr(model, "interp_construction", None)
    if built is not None and prompts:
        family, asked = prompts[0].family, prompts[0].tasks
        if family != built.family:
            warnings.warn(
                f"prompts: this hand-built model computes {built.family} tasks only, not {family!r}; its numbers "
                "here are noise",
                stacklevel=3,
            )
        elif not set(asked) <= set(built.tasks):
            missing = [t for t in asked if t not in built.tasks]
            warnings.warn(
                f"prompts: this hand-built model was built for {', '.join(built.tasks)}, not {', '.join(missing)}; "
                f"its numbers for those are noise (build it with tasks=... or "
                f"'constructed:{family}:tasks={'+'.join(asked)}')",
                stacklevel=3,
            )
    trained = trained_examples(model)
    if not trained or not prompts:
        return
    family = prompts[0].family
    longest = max(len(p.example_tasks) for p in prompts)
    if family == TEXTS_FAMILY:  # the caller's own strings: examples counted as lines, any trained family
        most = max(trained.values())
        if longest >= most:
            warnings.warn(
                f"prompts: up to {longest} example lines, but this model's training prompts held at most {most}; "
                f"the query sits at untrained positions — use at most {most - 1} examples",
                stacklevel=3,
            )
        return
    if family not in trained:
        warnings.warn(
            f"prompts: this model was trained on {', '.join(sorted(trained))} only, not on {family!r}",
            stacklevel=3,
        )
    elif longest >= trained[family]:
        warnings.warn(
            f"prompts: {longest} examples of {family}, but this model's training prompts held {trained[family]}; "
            f"the query sits at untrained positions — use at most {trained[family] - 1} examples",
            stacklevel=3,
        )


def score_answers(
    model,
    prompts: Sequence[Prompt],
    *,
    include_newline: bool = False,
    batch_size: int = 32,
) -> AnswerScores:
    """log P(answer_k | prompt) for every prompt and every candidate task (teacher-forced, exact).

    Args:
        model: a model from :func:`interp.models.load_model`.
        prompts: prompts of one candidate-task set (``Prompt.tasks`` equal across prompts).
        include_newline: also score the ``\\n`` that ends an answer (the complete output).
        batch_size: prompts per forward pass (the answers of a batch then run ``batch_size`` at a time).

    Raises ``ValueError`` (before any forward pass) when the prompts disagree on their tasks or a
    sequence exceeds the model's context.

    >>> s = score_answers(model, build_prompts("bias_add", ["add1", "add7"], n_prompts=4))  # doctest: +SKIP
    >>> s.log_probs.shape                                                                  # doctest: +SKIP
    (4, 2)
    """
    suffix = "\n" if check_flag(include_newline, "include_newline") else ""
    return _score_with_suffixes(model, prompts, (suffix,), batch_size)[0]


def score_texts(
    model,
    prompts: Sequence[str],
    answers: Sequence[Sequence[str]],
    *,
    include_newline: bool = False,
    batch_size: int = 32,
    labels: Sequence[str] | None = None,
) -> AnswerScores:
    """log P(answer | prompt) for your own prompt strings: ``answers[i][k]`` is the k-th candidate for
    ``prompts[i]`` (the same number for every prompt), scored exactly as :func:`score_answers` scores built prompts.

    The same checks apply: the context length (before any forward pass), and for a model trained by ``interp
    train`` a warning when a prompt has as many example lines as its training prompts or more (a prompt's
    examples are its lines before the last, the query). ``labels`` name the candidates (default ``a0``, ``a1``, ...).

    >>> s = score_texts(model, ["3>4\\n5>6\\n7>"], [["8", "2"]], labels=["add1", "add5"])   # doctest: +SKIP
    >>> s.tasks, s.log_probs.shape                                                          # doctest: +SKIP
    (('add1', 'add5'), (1, 2))
    """
    check_model(model)
    prompts = check_sequence(prompts, "prompts", what="prompt strings")
    bad = next((i for i, p in enumerate(prompts) if not isinstance(p, str)), None)
    if bad is not None:
        raise ArgumentTypeError(f"prompts[{bad}]", f"need a string, got {type(prompts[bad]).__name__}")
    answers = check_sequence(answers, "answers", what="lists of candidate strings (one list per prompt)")
    if len(answers) != len(prompts) or any(isinstance(a, str) or not isinstance(a, Sequence) for a in answers):
        raise ArgumentError(
            "answers", f"need one list of candidate strings per prompt ({len(prompts)}), e.g. [['8', '2'], ...]"
        )
    k = len(answers[0])
    if k == 0 or any(len(a) != k for a in answers):
        raise ArgumentError(
            "answers", f"every prompt needs the same number (>= 1) of candidates, got {[len(a) for a in answers]}"
        )
    for i, cands in enumerate(answers):
        if not all(isinstance(a, str) and a for a in cands):
            raise ArgumentError(f"answers[{i}]", f"need non-empty answer strings, got {list(cands)!r}")
    if labels is not None:
        check_sequence(labels, "labels", what="candidate names")
    names = tuple(labels) if labels is not None else tuple(f"a{j}" for j in range(k))
    if len(names) != k or len(set(names)) != k or not all(isinstance(n, str) for n in names):
        raise ArgumentError("labels", f"need {k} distinct names (one per candidate), got {list(names)}")
    check_flag(include_newline, "include_newline")
    built = [
        Prompt(
            text=text,
            family=TEXTS_FAMILY,
            tasks=names,
            answers=tuple(cands),
            example_tasks=("?",) * text.count("\n"),
            query=text.rsplit("\n", 1)[-1],
            query_input=None,
            proportions=(),
            seed=0,
            index=i,
        )
        for i, (text, cands) in enumerate(zip(prompts, answers, strict=True))
    ]
    return score_answers(model, built, include_newline=include_newline, batch_size=batch_size)


def score_answers_alone_and_complete(
    model, prompts: Sequence[Prompt], *, batch_size: int = 32
) -> tuple[AnswerScores, AnswerScores]:
    """:func:`score_answers` without and with ``include_newline`` from one forward pass over the prompts (the
    answers alone and the complete outputs share each prompt's row).

    >>> alone, complete = score_answers_alone_and_complete(model, prompts)  # doctest: +SKIP
    >>> bool((complete.log_probs <= alone.log_probs + 1e-6).all())                # doctest: +SKIP
    True
    """
    alone, complete = _score_with_suffixes(model, prompts, ("", "\n"), batch_size)
    return alone, complete


def _score_with_suffixes(
    model, prompts: Sequence[Prompt], suffixes: tuple[str, ...], batch_size: int
) -> list[AnswerScores]:
    """One :class:`AnswerScores` per suffix (appended to every answer), all candidates in one plan."""
    check_model(model)
    prompts = check_prompts(prompts)
    check_batch_size(batch_size)
    tasks = prompts[0].tasks
    answers = [[a + sfx for sfx in suffixes for a in p.answers] for p in prompts]
    memo = scores_memo(model) if not attached_hooks(model) else None  # see remembering()
    todo = [i for i, p in enumerate(prompts) if memo is None or any((p.text, a) not in memo for a in answers[i])]
    lp = np.empty((len(prompts), len(answers[0])))
    merged = np.zeros(lp.shape, dtype=bool)
    if todo:
        texts = [prompts[i].text for i in todo]
        scored = score(model, texts, [answers[i] for i in todo], batch_size=batch_size, across_prompts=True)
        lp[todo], merged[todo] = scored.log_probs[0], scored.merged
    warn_untrained(model, prompts)
    if memo is not None:
        done = set(todo)
        for i, p in enumerate(prompts):
            for j, a in enumerate(answers[i]):
                if i in done:
                    memo[p.text, a] = (float(lp[i, j]), bool(merged[i, j]))
                else:
                    lp[i, j], merged[i, j] = memo[p.text, a]
    k = len(tasks)
    return [
        AnswerScores(
            np.ascontiguousarray(lp[:, j * k : (j + 1) * k]),
            tuple(tasks),
            sfx == "\n",
            int(merged[:, j * k : (j + 1) * k].sum()),
        )
        for j, sfx in enumerate(suffixes)
    ]


def greedy_correct(model, prompts: Sequence[Prompt], task: str, *, batch_size: int = 32) -> np.ndarray:
    """Per prompt: is ``task``'s answer exactly what greedy decoding produces (every answer token the argmax)?

    Teacher-forced, so each prompt runs once: greedy decoding emits the answer iff each of its tokens
    is the argmax given the prompt and the answer's earlier tokens.

    >>> greedy_correct(model, build_prompts("bias_add", ["add1"], n_prompts=4), "add1")  # doctest: +SKIP
    array([ True,  True,  True,  True])
    """
    check_model(model)
    prompts = check_prompts(prompts)
    check_choice(task, "task", prompts[0].tasks, "is not a candidate of these prompts")
    check_batch_size(batch_size)
    scored = score(model, [p.text for p in prompts], [[p.answer(task)] for p in prompts], batch_size=batch_size,
                   across_prompts=True)  # fmt: skip
    warn_untrained(model, prompts)
    return scored.greedy[0, :, 0]
