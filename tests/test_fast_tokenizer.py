"""The tokenizers-only tokenizer gives what transformers' tokenizer gives, where we use it."""

from transformers import AutoTokenizer

from mineral_stance.base_encoder import resolve_base_model
from mineral_stance.config import DEFAULT_BASE_MODEL
from mineral_stance.context import Context, encode_rows
from mineral_stance.corpus import seed_paths, segment_file
from mineral_stance.fast_tokenizer import FastTokenizer, load_tokenizer
from mineral_stance.model_config import ModelConfig
from mineral_stance.truncation import fit_to_model


def test_fast_tokenizer_matches_transformers_on_the_seed_units():
    directory = resolve_base_model(DEFAULT_BASE_MODEL)
    fast, reference = load_tokenizer(directory), AutoTokenizer.from_pretrained(directory)
    assert isinstance(fast, FastTokenizer)
    texts = [u.text for path in seed_paths() for u in segment_file(path)]
    texts += ["x " * 600, ""]  # far over max_length; empty
    assert fast.pad_token_id == reference.pad_token_id == 1
    assert fast.num_special_tokens_to_add(pair=False) == reference.num_special_tokens_to_add()
    ids = fast(texts, truncation=True, max_length=64)["input_ids"]
    assert ids == reference(texts, truncation=True, max_length=64)["input_ids"]
    assert max(map(len, ids)) == 64
    # truncation is per call: the next call reads whole texts again
    assert len(fast(["x " * 600])["input_ids"][0]) > 64

    config = ModelConfig(max_length=32)
    assert fit_to_model(config, fast, texts) == fit_to_model(config, reference, texts)
    contexts = [Context(texts[i - 1] if i else "", "关键矿产联盟") for i in range(len(texts))]
    for mode in ("none", "previous+title"):
        rows = encode_rows(fast, texts, contexts, "query: ", 32, mode, 16)
        expected = encode_rows(reference, texts, contexts, "query: ", 32, mode, 16)
        assert [(list(ids), n) for ids, n in rows] == [(list(ids), n) for ids, n in expected]
