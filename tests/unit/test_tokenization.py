import pytest

from interp.tokenization import CHARACTERS, bos_id, build_char_tokenizer, encode, encode_batch, is_char_level


def test_char_tokenizer_one_token_per_character(char_tokenizer):
    text = "qWeRtYuI>e\n34@57=91\nFrance->Paris\nsoixante et onze, dieciséis"
    ids = char_tokenizer(text, add_special_tokens=False)["input_ids"]
    assert len(ids) == len(text)
    assert char_tokenizer.decode(ids) == text
    assert char_tokenizer.unk_token_id not in ids


def test_char_tokenizer_specials_and_unknowns(char_tokenizer):
    assert (char_tokenizer.pad_token_id, char_tokenizer.bos_token_id, char_tokenizer.eos_token_id) == (0, 1, 2)
    assert char_tokenizer("€", add_special_tokens=False)["input_ids"] == [char_tokenizer.unk_token_id]
    assert len(char_tokenizer) == 4 + len(CHARACTERS)


def test_char_tokenizer_round_trips_through_save(tmp_path, char_tokenizer):
    from transformers import AutoTokenizer

    char_tokenizer.save_pretrained(tmp_path)
    again = AutoTokenizer.from_pretrained(str(tmp_path), local_files_only=True)
    assert encode(again, "3>5\n") == encode(char_tokenizer, "3>5\n")


def test_gpt2_tokenizer_matches_published_ids(gpt2_tokenizer):
    # GPT-2 ids of "Hello world!" and the special token, as published with GPT-2.
    assert gpt2_tokenizer("Hello world!", add_special_tokens=False)["input_ids"] == [15496, 995, 0]
    assert gpt2_tokenizer.eos_token_id == 50256 and len(gpt2_tokenizer) == 50257
    assert not is_char_level(gpt2_tokenizer) and is_char_level(build_char_tokenizer())


@pytest.mark.parametrize("fixture", ["char_tokenizer", "gpt2_tokenizer"])
def test_bos_convention_exactly_one_bos(fixture, request):
    tok = request.getfixturevalue(fixture)
    ids = encode(tok, "34@57=")
    assert ids[0] == bos_id(tok) and ids.count(bos_id(tok)) == 1
    assert encode_batch(tok, ["34@57=", "a"]) == [ids, encode(tok, "a")]


def test_bos_convention_matches_transformer_lens_to_tokens(tiny_gpt2_model, tiny_char_model):
    for model in (tiny_gpt2_model, tiny_char_model):
        assert model.to_tokens("12@34=46").tolist() == [encode(model.tokenizer, "12@34=46")]
