"""Oracle tests per architecture: a tiny random HF model of each family, saved to disk, loaded with ``load_model``.

Each family's real tokenizer class is built offline with a small vocabulary: Llama/Mistral/Gemma from a SentencePiece-
style (Metaspace) BPE trained here on the toolkit's own prompts; Qwen2 and GPT-NeoX from GPT-2's byte-level BPE files
(their real classes, with Qwen2's digit-splitting pre-tokenizer); Llama-3 as a byte-level BPE with
``<|begin_of_text|>``. The reference is the HF model itself: ``output_hidden_states`` for the residual stream and one
unbatched forward pass per (prompt, answer) for the scores.
"""

from __future__ import annotations

import copy
import json
import re
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch
from tokenizers import Tokenizer, decoders, models, pre_tokenizers, processors, trainers
from transformers import (
    Gemma3ForCausalLM,
    Gemma3TextConfig,
    GemmaConfig,
    GemmaForCausalLM,
    GemmaTokenizerFast,
    GPTNeoXConfig,
    GPTNeoXForCausalLM,
    GPTNeoXTokenizerFast,
    Llama4ForCausalLM,
    Llama4TextConfig,
    LlamaConfig,
    LlamaForCausalLM,
    LlamaTokenizerFast,
    MistralConfig,
    MistralForCausalLM,
    Olmo2Config,
    Olmo2ForCausalLM,
    PreTrainedTokenizerFast,
    Qwen2Config,
    Qwen2ForCausalLM,
    Qwen2TokenizerFast,
    Qwen3Config,
    Qwen3ForCausalLM,
)

from interp.bridge import is_bridge, tl_major
from interp.models import load_model, model_info
from interp.prompts import build_prompts
from interp.tokenization import CHARACTERS, encode, encode_batch, gpt2_tokenizer_files, pad_id

SMALL = dict(
    num_hidden_layers=2, hidden_size=64, intermediate_size=128, num_attention_heads=4, max_position_embeddings=512
)
ATOL = 1e-4
LLAMA3_BOS = "<|begin_of_text|>"
#: Families whose HF tokenizer prepends a BOS itself; Qwen2 and GPT-NeoX add none (the toolkit prepends <|endoftext|>).
HF_ADDS_BOS = ("gemma", "gemma3", "llama", "llama3", "llama4", "mistral")


# --- tokenizers --------------------------------------------------------------------------------------------------


def _corpus() -> list[str]:
    fams = ("operands", "country", "add_translate", "letters")
    return [p.text + a for f in fams for p in build_prompts(f, n_examples=6, n_prompts=40, seed=1) for a in p.answers]


def metaspace_bpe(specials: list[str]) -> tuple[dict[str, int], list[tuple[str, str]]]:
    """vocab + merges of a small SentencePiece-style BPE (``▁`` for spaces) trained on the toolkit's prompts."""
    core = Tokenizer(models.BPE(unk_token=specials[0]))
    core.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="first")
    alphabet = [c for c in CHARACTERS if c != " "] + ["▁"]
    trainer = trainers.BpeTrainer(
        vocab_size=400, special_tokens=specials, initial_alphabet=alphabet, show_progress=False
    )
    core.train_from_iterator(_corpus(), trainer)
    model = json.loads(core.to_str())["model"]
    merges = [tuple(m) if isinstance(m, list) else tuple(m.split(" ")) for m in model["merges"]]
    return model["vocab"], merges


def gpt2_bpe() -> tuple[dict[str, int], list[tuple[str, str]]]:
    vocab_path, merges_path = gpt2_tokenizer_files()
    vocab = json.loads(vocab_path.read_text(encoding="utf-8"))
    lines = merges_path.read_text(encoding="utf-8").splitlines()
    return vocab, [tuple(x.split(" ")) for x in lines if x and not x.startswith("#version")]


def llama_tokenizer():
    vocab, merges = metaspace_bpe(["<unk>", "<s>", "</s>"])
    return LlamaTokenizerFast(vocab=vocab, merges=merges, add_bos_token=True), "<s>"


def gemma_tokenizer():
    vocab, merges = metaspace_bpe(["<unk>", "<pad>", "<bos>", "<eos>", "<mask>"])
    return GemmaTokenizerFast(vocab=vocab, merges=merges, add_bos_token=True), "<bos>"


def qwen2_tokenizer():
    vocab, merges = gpt2_bpe()  # the real Qwen2 class: byte-level BPE, digits split one by one, no BOS token
    return Qwen2TokenizerFast(vocab=vocab, merges=merges), "<|endoftext|>"


def neox_tokenizer():
    vocab, merges = gpt2_bpe()
    return GPTNeoXTokenizerFast(vocab=vocab, merges=merges), "<|endoftext|>"


def llama3_tokenizer():
    """Byte-level BPE whose post-processor prepends ``<|begin_of_text|>``, as Llama-3's ``tokenizer.json`` does."""
    vocab, merges = gpt2_bpe()
    core = Tokenizer(models.BPE(vocab=vocab, merges=merges))
    core.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    core.decoder = decoders.ByteLevel()
    core.add_special_tokens(["<|begin_of_text|>", "<|end_of_text|>"])
    bos = core.token_to_id("<|begin_of_text|>")
    core.post_processor = processors.TemplateProcessing(
        single="<|begin_of_text|> $A", special_tokens=[(LLAMA3_BOS, bos)]
    )
    tok = PreTrainedTokenizerFast(tokenizer_object=core, bos_token=LLAMA3_BOS, eos_token="<|end_of_text|>")
    return tok, LLAMA3_BOS


# --- the tiny models ---------------------------------------------------------------------------------------------


@dataclass
class Family:
    name: str
    config_cls: type
    model_cls: type
    tokenizer: object
    config: dict


FAMILIES = {
    "llama": Family("llama", LlamaConfig, LlamaForCausalLM, llama_tokenizer, {}),
    "llama3": Family(
        "llama3",
        LlamaConfig,
        LlamaForCausalLM,
        llama3_tokenizer,
        dict(
            num_key_value_heads=2,
            rope_parameters={
                "rope_type": "llama3",
                "rope_theta": 500000.0,
                "factor": 8.0,
                "low_freq_factor": 1.0,
                "high_freq_factor": 4.0,
                "original_max_position_embeddings": 64,
            },
        ),
    ),
    "mistral": Family(
        "mistral", MistralConfig, MistralForCausalLM, llama_tokenizer, dict(num_key_value_heads=2, sliding_window=16)
    ),
    "qwen2": Family("qwen2", Qwen2Config, Qwen2ForCausalLM, qwen2_tokenizer, dict(num_key_value_heads=2)),
    "neox": Family(
        "neox",
        GPTNeoXConfig,
        GPTNeoXForCausalLM,
        neox_tokenizer,
        dict(rope_parameters={"rope_type": "default", "rope_theta": 10000.0, "partial_rotary_factor": 0.25}),
    ),
    "gemma": Family("gemma", GemmaConfig, GemmaForCausalLM, gemma_tokenizer, dict(num_key_value_heads=1, head_dim=16)),
    # Only TransformerLens 4.x's TransformerBridge runs these (3.x has no converter for them):
    "qwen3": Family("qwen3", Qwen3Config, Qwen3ForCausalLM, qwen2_tokenizer, dict(num_key_value_heads=2, head_dim=16)),
    "gemma3": Family(  # local (sliding-window) and global layers; the window is shorter than the longest text
        "gemma3",
        Gemma3TextConfig,
        Gemma3ForCausalLM,
        gemma_tokenizer,
        dict(num_key_value_heads=1, head_dim=16, sliding_window=16),
    ),
    "olmo2": Family("olmo2", Olmo2Config, Olmo2ForCausalLM, neox_tokenizer, dict(num_key_value_heads=2)),
    "llama4": Family(  # mixture of experts in every layer, chunked attention shorter than the longest text
        "llama4",
        Llama4TextConfig,
        Llama4ForCausalLM,
        llama3_tokenizer,
        dict(
            num_key_value_heads=2,
            head_dim=16,
            intermediate_size_mlp=128,
            num_local_experts=2,
            num_experts_per_tok=1,
            interleave_moe_layer_step=1,
            attention_chunk_size=16,
        ),
    ),
}
#: Families only the TransformerLens 4.x bridge loads.
BRIDGE_ONLY = ("qwen3", "gemma3", "olmo2", "llama4")


def build_dir(fam: Family, d: Path, seed: int = 0):
    """Save a seeded 2-layer HF model of ``fam`` and its tokenizer to ``d``; return (HF model, tokenizer, BOS)."""
    tok, bos = fam.tokenizer()
    torch.manual_seed(seed)
    config = fam.config_cls(**SMALL, vocab_size=len(tok), initializer_range=0.1, **fam.config)
    config.architectures = [fam.model_cls.__name__]
    hf = fam.model_cls(config).eval()
    with torch.no_grad():  # norm weights and biases start at 1/0: move them so their conversion is tested
        for p in hf.parameters():
            if p.ndim == 1:
                p.add_(0.2 * torch.randn_like(p))
    hf.save_pretrained(d)
    tok.save_pretrained(d)
    return hf, tok, bos


@pytest.fixture(scope="module", params=sorted(FAMILIES))
def family(request, tmp_path_factory):
    fam = FAMILIES[request.param]
    if fam.name in BRIDGE_ONLY and tl_major() < 4:
        pytest.skip(f"{fam.model_cls.__name__} needs TransformerLens 4.x (TransformerBridge); 3.x has no converter")
    d = tmp_path_factory.mktemp(fam.name)
    hf, tok, bos = build_dir(fam, d)
    model = load_model(str(d), device="cpu")
    return fam, d, hf, model, bos


# --- oracles -----------------------------------------------------------------------------------------------------

TEXTS = [
    "Hello world! The cat sat on the mat.",
    "\n34@57=91\n12@40=52\n86@67=",
    "France->Paris\nJapan->Tokyo\nSaint Lucia->",
    "12+38->cinquante\n28+26->54\n86+67->ciento cincuenta y tres " * 2,
]


def _layer_outputs(hf) -> tuple[list, list]:
    """Forward hooks capturing every HF decoder layer's output (the raw residual stream after the layer)."""
    base = hf.base_model
    layers = base.layers if hasattr(base, "layers") else base.model.layers  # Llama 4: the text model one level down
    outs: list = []

    def grab(_module, _inputs, output):
        outs.append(output[0] if isinstance(output, tuple) else output)

    return outs, [layer.register_forward_hook(grab) for layer in layers]


def test_loads_offline_with_its_architecture(family):
    fam, d, hf, model, _ = family
    info = model_info(model)
    assert info.architecture == fam.model_cls.__name__ and info.source == str(d) and info.dtype == "float32"
    assert model.cfg.n_layers == 2 and model.cfg.d_vocab == hf.config.vocab_size
    assert info.trained_examples is None


def test_logits_and_every_resid_post_equal_hf(family):
    fam, _, hf, model, _ = family
    tok = model.tokenizer
    ids = encode_batch(tok, TEXTS)
    assert max(map(len, ids)) > 16  # longer than Mistral's sliding window: the window is exercised
    x = torch.full((len(ids), max(map(len, ids))), pad_id(tok))
    mask = torch.zeros_like(x)
    for i, row in enumerate(ids):
        x[i, : len(row)] = torch.tensor(row)
        mask[i, : len(row)] = 1
    outs, handles = _layer_outputs(hf)
    try:
        with torch.no_grad():
            ref = hf(x, attention_mask=mask, output_hidden_states=True)
    finally:
        for h in handles:
            h.remove()
    with torch.no_grad():
        logits, cache = model.run_with_cache(x, names_filter=lambda n: n.endswith("hook_resid_post"))
        final = model.ln_final(cache["blocks.1.hook_resid_post"])
    worst = 0.0
    for i, row in enumerate(ids):
        n = len(row)
        pairs = [(logits[i, :n], ref.logits[i, :n]), (final[i, :n], ref.hidden_states[2][i, :n])]
        pairs += [(cache[f"blocks.{la}.hook_resid_post"][i, :n], outs[la][i, :n]) for la in range(2)]
        pairs += [(cache["blocks.0.hook_resid_post"][i, :n], ref.hidden_states[1][i, :n])]
        for ours, theirs in pairs:
            torch.testing.assert_close(ours, theirs, atol=ATOL, rtol=0)
            worst = max(worst, float((ours - theirs).abs().max()))
    assert logits.abs().max() > 1.0  # not a near-uniform model: the comparison has teeth
    print(f"{fam.name}: max |TL - HF| = {worst:.2e}")


def _hf_log_prob(hf, tok, bos: int, prompt: str, answer: str) -> float:
    """log P(answer | prompt) from one unbatched HF forward pass: the answer's tokens are those of
    ``tokens(prompt + answer)`` from the first one that differs from ``tokens(prompt)``."""
    p = [bos] + tok(prompt, add_special_tokens=False)["input_ids"]
    full = [bos] + tok(prompt + answer, add_special_tokens=False)["input_ids"]
    start = next(i for i, (a, b) in enumerate(zip(p + [None] * len(full), full, strict=False)) if a != b)
    with torch.no_grad():
        logp = torch.log_softmax(hf(torch.tensor([full])).logits[0].double(), dim=-1)
    return float(sum(logp[j - 1, full[j]] for j in range(start, len(full))))


@pytest.mark.parametrize("fam_name", ["operands", "country", "add_translate"])
def test_score_answers_equals_a_per_candidate_hf_loop(family, fam_name):
    from interp.scoring import score_answers

    fam, _, hf, model, bos_token = family
    tok = model.tokenizer
    bos = tok.convert_tokens_to_ids(bos_token)
    prompts = build_prompts(fam_name, n_examples=4, n_prompts=3, seed=2)
    scores = score_answers(model, prompts, include_newline=fam_name == "country")
    suffix = "\n" if fam_name == "country" else ""
    ref = np.array([[_hf_log_prob(hf, tok, bos, p.text, a + suffix) for a in p.answers] for p in prompts])
    np.testing.assert_allclose(scores.log_probs, ref, atol=ATOL, rtol=0)
    assert np.isfinite(ref).all() and (ref < 0).all()
    if fam.name in ("gemma", "llama", "mistral") and fam_name == "country":
        assert scores.n_merged > 0  # answers merging with the "->" separator are exercised


def test_bos_convention_per_family(family):
    fam, _, _, model, bos_token = family
    tok = model.tokenizer
    for text in ("France->Paris", " Saint Lucia->Castries\n", "86@67="):
        ids = encode(tok, text)
        assert ids[0] == tok.convert_tokens_to_ids(bos_token)
        assert ids[1:] == tok(text, add_special_tokens=False)["input_ids"]
        if fam.name in HF_ADDS_BOS:
            assert ids == tok(text)["input_ids"]  # exactly what the family's own tokenizer feeds its model
        else:
            assert tok(text)["input_ids"] == ids[1:] and bos_token == "<|endoftext|>"
        assert model.to_tokens(text)[0].tolist() == ids  # TransformerLens's own tokenisation agrees


def test_capture_and_patch_run(family):
    from interp.capture import capture_resid
    from interp.patching import patch
    from interp.scoring import score_answers

    _, _, hf, model, _ = family
    prompts = build_prompts("operands", n_examples=4, n_prompts=2, seed=3)
    resid = capture_resid(model, prompts, layers=[0, 1])
    assert resid.shape == (2, 2, model.cfg.d_model)
    ids = encode(model.tokenizer, prompts[0].text)
    with torch.no_grad():
        hs = hf(torch.tensor([ids]), output_hidden_states=True).hidden_states
    torch.testing.assert_close(resid[0, 0], hs[1][0, -1], atol=ATOL, rtol=0)
    before = score_answers(model, prompts).log_probs
    last = min(len(encode(model.tokenizer, p.text)) for p in prompts) - 1  # within Mistral's window of the answer
    with patch(model, resid[0].mean(0) * 3, layer=0, positions=last):
        patched = score_answers(model, prompts).log_probs
    after = score_answers(model, prompts).log_probs
    assert np.abs(patched - before).max() > 1e-3 and np.array_equal(after, before)


def test_a_resid_mid_patch_reaches_the_residual_stream(family):
    """Oracle: the MLP acts per position, so giving a position the residual another prompt had between attention
    and MLP gives it that prompt's residual after the block too (on a bridge the hook point aliases the MLP norm's
    input, and a patch there alone would leave the stream unchanged)."""
    from interp.hooks import forward_logits, hook_name, hooked

    _, _, _, model, _ = family
    a, b = (torch.tensor([encode(model.tokenizer, t)]) for t in ("France->Paris\nJapan->", "\n34@57=91\n12@40="))
    mid, post = hook_name(0, "resid_mid"), hook_name(0, "resid_post")
    if getattr(model.cfg, "parallel_attn_mlp", False):  # GPT-NeoX: attention and MLP read the same input
        if is_bridge(model):
            with pytest.raises(ValueError, match="resid_mid does not exist"), hooked(model, [(mid, lambda x, hook: x)]):
                pass
        return
    seen: dict = {}

    def keep(key):
        def fn(act, hook):
            seen[key] = act[0, -1].clone()

        return fn

    with torch.inference_mode():
        with hooked(model, [(mid, keep("mid_b")), (post, keep("post_b"))]):
            forward_logits(model, b)
        with hooked(model, [(post, keep("post_a"))]):
            forward_logits(model, a)

        def put(act, hook):
            act = act.clone()
            act[0, -1] = seen["mid_b"]
            return act

        with hooked(model, [(mid, put), (post, keep("post_patched"))]):
            forward_logits(model, a)
    assert (seen["post_a"] - seen["post_b"]).abs().max() > 1e-2  # the two prompts differ there
    torch.testing.assert_close(seen["post_patched"], seen["post_b"], atol=ATOL, rtol=0)


# --- precision and devices (one architecture suffices: the path is shared) ------------------------------------------


@pytest.fixture(scope="module")
def llama_dir(tmp_path_factory):
    d = tmp_path_factory.mktemp("llama-precision")
    hf, _, _ = build_dir(FAMILIES["llama"], d, seed=5)
    return d, hf


def test_float64_on_cpu_matches_hf_in_float64(llama_dir, tmp_path):
    from transformers import GPT2Config, GPT2LMHeadModel

    from interp.tokenization import build_gpt2_tokenizer

    torch.manual_seed(0)  # GPT-2 (no rotary tables): float64 end to end, so TL and HF agree to ~1e-13
    gpt2 = GPT2LMHeadModel(GPT2Config(n_layer=2, n_embd=64, n_head=4, n_positions=128)).eval()
    gpt2.save_pretrained(tmp_path)
    build_gpt2_tokenizer().save_pretrained(tmp_path)
    d, hf = llama_dir
    for directory, ref_model, atol in ((tmp_path, gpt2, 1e-10), (d, hf, 1e-5)):
        model = load_model(str(directory), device="cpu", dtype="float64")
        assert model.cfg.dtype == torch.float64 and model_info(model).dtype == "float64"
        x = torch.tensor([encode(model.tokenizer, TEXTS[2])])
        with torch.no_grad():
            ref = ref_model.double()(x).logits
            ref_model.float()
            ours = model(x)
        assert ours.dtype == torch.float64
        # Llama: both implementations build their rotary tables in float32, so float64 agrees to ~1e-6 only.
        torch.testing.assert_close(ours, ref, atol=atol, rtol=0)


def test_bfloat16_matches_hf_in_bfloat16(family):
    """Every family loads and runs in bfloat16 and stays with Hugging Face run in bfloat16 (OLMo 2 on the bridge
    failed here before interp.bridge.keep_rotated_qk_in_model_dtype)."""
    fam, d, hf, _, _ = family
    model = load_model(str(d), device="cpu", dtype="bfloat16")
    assert model.cfg.dtype == torch.bfloat16 and model.W_E.dtype == torch.bfloat16
    hf_half = copy.deepcopy(hf).to(torch.bfloat16)
    x = torch.tensor([encode(model.tokenizer, TEXTS[2])])
    with torch.no_grad():
        ours, ref, full = model(x).float(), hf_half(x).logits.float(), hf(x).logits
    # Neither the bridge (it re-implements attention, softmax in float32) nor HookedTransformer rounds exactly as
    # Hugging Face does: measured 0.02-0.06 on logits of scale ~4 for every family on 3.9 and 4.3, as far as HF's
    # own bfloat16 run is from its float32 one. A wrong conversion is off by the logits' scale.
    assert (ours - ref).abs().max() < 0.15, fam.name
    assert (ours - full).abs().max() < 0.25, fam.name


def test_precision_and_device_arguments_fail_early(llama_dir):
    d, _ = llama_dir
    with pytest.raises(ValueError, match="dtype: float64 is CPU-only"):
        load_model(str(d), device="cuda", dtype="float64")
    with pytest.raises(ValueError, match="n_devices: 2 needs device 'cuda'"):
        load_model(str(d), device="cpu", n_devices=2)
    with pytest.raises(ValueError, match="n_devices: must be an integer >= 1"):
        load_model(str(d), device="cpu", n_devices=0)
    if not torch.cuda.is_available():
        with pytest.raises(ValueError, match="device: 'cuda' requested but CUDA is not available"):
            load_model(str(d), device="cuda")
    else:  # pragma: no cover - needs a GPU
        with pytest.raises(ValueError, match="n_devices: 64 requested"):
            load_model(str(d), device="cuda", n_devices=64)


def test_unsupported_architecture_is_refused_before_the_weights(tmp_path):
    from interp.models import WeightsNotFoundError

    (tmp_path / "config.json").write_text(json.dumps({"model_type": "bert", "architectures": ["BertForMaskedLM"]}))
    (tmp_path / "model.safetensors").write_bytes(b"not read")
    with pytest.raises(ValueError, match="architecture 'BertForMaskedLM' not supported; valid: GPT2LMHeadModel"):
        load_model(str(tmp_path), device="cpu")
    with pytest.raises(WeightsNotFoundError, match="no such directory"):
        load_model(str(tmp_path / "missing" / "dir"), device="cpu")


# --- names resolve in the local Hugging Face cache (issue: 'org/name' was treated as a path) -------------------------


@pytest.fixture()
def hub_cache(tmp_path, monkeypatch):
    """An empty local HF hub cache (the real one is never touched)."""
    from huggingface_hub import constants

    cache = tmp_path / "hub"
    cache.mkdir()
    monkeypatch.setattr(constants, "HF_HUB_CACHE", str(cache))
    monkeypatch.setenv("HF_HUB_CACHE", str(cache))
    return cache


def _put_in_cache(cache: Path, repo: str) -> Path:
    """Lay out ``repo`` as ``hf download`` would: ``models--org--name/snapshots/<rev>`` + ``refs/main``."""
    root = cache / ("models--" + repo.replace("/", "--"))
    snap = root / "snapshots" / "0123456789abcdef0123456789abcdef01234567"
    snap.mkdir(parents=True)
    (root / "refs").mkdir()
    (root / "refs" / "main").write_text(snap.name)
    return snap


def test_repo_id_and_alias_load_from_the_local_cache(hub_cache):
    snap = _put_in_cache(hub_cache, "EleutherAI/pythia-14m")
    hf, _, _ = build_dir(FAMILIES["neox"], snap, seed=7)
    x = torch.tensor([[0, 5, 6, 7]])
    with torch.no_grad():
        ref = hf(x).logits
    for name in ("EleutherAI/pythia-14m", "pythia-14m"):  # repo id, and TransformerLens's alias of it
        model = load_model(name, device="cpu")
        assert model_info(model).model_id == name and model_info(model).source == str(snap)
        with torch.no_grad():
            torch.testing.assert_close(model(x), ref, atol=ATOL, rtol=0)


def test_a_name_missing_from_the_cache_fails_fast_naming_both_ways(hub_cache, monkeypatch):
    """Fails fast, judged by what ran, not by seconds (issue 36): no model or tokenizer is read before the refusal."""
    import interp.models
    from interp.models import WeightsNotFoundError

    def never(*args, **kwargs):
        raise AssertionError("a model or tokenizer was read before the refusal")

    monkeypatch.setattr(interp.models, "_hf_from_dir", never)
    monkeypatch.setattr(interp.models, "load_tokenizer", never)
    with pytest.raises(WeightsNotFoundError) as err:
        load_model("Qwen/Qwen1.5-0.5B", device="cpu")
    msg = str(err.value)
    assert "\n" not in msg and "no such directory" not in msg
    assert "local directory" in msg and "Hugging Face cache" in msg and "`hf download Qwen/Qwen1.5-0.5B`" in msg
    assert "huggingface-cli" not in msg


# --- the README's "Your own model" Python lines run as written on a tiny saved Qwen2 directory ---------------------

README = Path(__file__).resolve().parents[2] / "README.md"


@pytest.mark.parametrize("name", sorted(FAMILIES))
def test_readme_your_own_model_python_runs(tmp_path, name):
    """The README's block, run as written on a directory of each tested family in place of Qwen1.5-0.5B."""
    fam = FAMILIES[name]
    if name in BRIDGE_ONLY and tl_major() < 4:
        pytest.skip(f"{fam.model_cls.__name__} needs TransformerLens 4.x (TransformerBridge); 3.x has no converter")
    section = README.read_text().split("## Your own model\n", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```py\n(.*?)```", section, flags=re.S)
    assert len(blocks) == 1 and "/models/Qwen1.5-0.5B" in blocks[0]
    own = tmp_path / name
    build_dir(fam, own)
    code = blocks[0].replace("/models/Qwen1.5-0.5B", str(own))
    namespace: dict = {}
    exec(compile(code, str(README), "exec"), namespace)  # noqa: S102 - our own documentation
    assert model_info(namespace["model"]).architecture == fam.model_cls.__name__
    assert namespace["scores"].log_probs.shape == (20, 3) and np.isfinite(namespace["scores"].log_probs).all()
    several = (
        re.search(r"# several GPUs: (load_model\(.*\))", code).group(1).replace("/models/Meta-Llama-3-70B", str(own))
    )
    if torch.cuda.device_count() < 4:  # the multi-GPU line fails at once, before any weights are read
        with pytest.raises(ValueError, match="n_devices: 4 requested but|device: 'cuda' requested but CUDA is not"):
            eval(several, namespace)  # noqa: S307 - our own documentation
    else:  # pragma: no cover - needs 4 GPUs
        assert eval(several, namespace).cfg.n_devices == 4  # noqa: S307


def test_bos_falls_back_to_the_document_separator_then_eos():
    from interp.tokenization import bos_id, build_char_tokenizer, build_gpt2_tokenizer

    gpt2 = build_gpt2_tokenizer()
    gpt2.bos_token, gpt2.eos_token = None, "!"  # no BOS: <|endoftext|> (the document separator) wins over EOS
    assert bos_id(gpt2) == 50256
    chars = build_char_tokenizer()
    chars.bos_token = None  # no BOS and no <|endoftext|>: EOS
    assert bos_id(chars) == chars.eos_token_id == 2


def test_sharded_checkpoint_loads(llama_dir, tmp_path):
    from transformers import AutoTokenizer

    d, hf = llama_dir
    hf.save_pretrained(tmp_path, max_shard_size="100KB")
    AutoTokenizer.from_pretrained(str(d)).save_pretrained(tmp_path)
    assert (tmp_path / "model.safetensors.index.json").is_file() and not (tmp_path / "model.safetensors").exists()
    model = load_model(str(tmp_path), device="cpu")
    x = torch.tensor([encode(model.tokenizer, TEXTS[1])])
    with torch.no_grad():
        torch.testing.assert_close(model(x), hf(x).logits, atol=ATOL, rtol=0)


def test_leading_and_trailing_spaces_score_exactly(family):
    """Answers with a leading space, and prompts ending in a space that the answer's first token absorbs."""
    from interp.prompts import Prompt
    from interp.scoring import score_answers

    fam, _, hf, model, bos_token = family
    tok = model.tokenizer
    bos = tok.convert_tokens_to_ids(bos_token)
    texts = ["France: Paris\nJapan: Tokyo\nChile:", "France: Paris\nJapan: Tokyo\nChile: ", "12 + 38 = 50\n86 + 67 ="]
    answers = [(" Santiago", " Lima"), ("Santiago", "Lima"), (" 153", " 154")]
    prompts = [
        Prompt(t, "custom", ("a", "b"), a, (), "", None, (0.5, 0.5), 0, i)
        for i, (t, a) in enumerate(zip(texts, answers, strict=True))
    ]
    scores = score_answers(model, prompts)
    ref = np.array([[_hf_log_prob(hf, tok, bos, p.text, a) for a in p.answers] for p in prompts])
    np.testing.assert_allclose(scores.log_probs, ref, atol=ATOL, rtol=0)
    assert scores.n_merged >= 2  # the trailing space merges into the answer's first token


def test_logit_attribution_refuses_blocks_that_normalise_their_outputs(family):
    """Gemma 2/3 and OLMo 2 normalise each sublayer's output before adding it, so a head's write is not its direct
    contribution: logit attribution refuses them in one line (a bridge's config does not say so; its blocks do);
    every other family's parts (a parallel residual's too) sum to its centred logits."""
    from interp.heads import COMPONENTS, direct_logit_attribution, logit_components
    from interp.hooks import forward_logits

    fam, _, _, model, _ = family
    prompts = build_prompts("operands", ["copy_first", "sum"], n_examples=3, n_prompts=2, seed=1)
    if fam.name in ("gemma2", "gemma3", "olmo2"):
        for fn in (logit_components, direct_logit_attribution):
            with pytest.raises(ValueError, match="^model: its blocks normalise their sublayers' outputs"):
                fn(model, prompts)
        return
    parts = logit_components(model, prompts)
    assert set(parts) == set(COMPONENTS)
    total = sum(p.reshape(len(prompts), -1, p.shape[-1]).sum(axis=1) for p in parts.values())
    answer = [[model.tokenizer(a, add_special_tokens=False)["input_ids"][0] for a in p.answers] for p in prompts]
    assert any(len(set(a)) > 1 for a in answer)  # candidates that differ: the centred logits are not all zero
    with torch.inference_mode():
        for i, p in enumerate(prompts):
            logits = forward_logits(model, torch.tensor([encode(model.tokenizer, p.text)]))[0, -1].double()
            want = logits[answer[i]] - logits[answer[i]].mean()
            np.testing.assert_allclose(total[i], want.numpy(), atol=1e-4, err_msg=fam.name)  # the scale is the run's
