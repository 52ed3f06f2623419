"""Defect 13: a sentence over the model's max_length is flagged and read the same way by the
encoder and the textual cues, so nothing past the cut can change its labels."""

import json

import numpy as np
import pytest

from mineral_stance.config import TrainConfig
from mineral_stance.labels import targets_from_records
from mineral_stance.predict import StanceClassifier
from mineral_stance.train import predict_probabilities
from mineral_stance.truncation import fit_to_model

from .conftest import make_records

HEAD = "美国与盟友讨论关键矿产供应链的安排，" * 30  # far over 24 tokens


@pytest.fixture(scope="module")
def cue_model(tiny_base_model):
    """A tiny model whose heads read the textual cues, with a short max_length."""
    records = make_records()
    config = TrainConfig(base_model=str(tiny_base_model), method="frozen", epochs=0,
                         head_init="linear_probe", text_cues=True, max_length=24)  # fmt: skip
    return StanceClassifier(config).fit([r["text"] for r in records], targets_from_records(records))


def test_long_sentences_are_flagged_in_predict_results(cue_model):
    results = cue_model.predict(["美国应与盟友合作。", HEAD + "美国应与盟友合作。"])
    assert [r.truncated for r in results] == [False, True]
    table = results.to_pandas()
    assert list(table["truncated"]) == [False, True]
    assert table.loc[1, "text"] == HEAD + "美国应与盟友合作。"  # the result keeps the whole text


def test_the_cut_text_is_exactly_what_the_encoder_reads(cue_model):
    config, tokenizer = cue_model.model.config, cue_model.tokenizer
    (fitted,), (truncated,) = fit_to_model(config, tokenizer, [HEAD])
    assert truncated and HEAD.startswith(fitted) and len(fitted) < len(HEAD)
    ids = tokenizer(config.text_prefix + fitted)["input_ids"]
    whole = tokenizer(config.text_prefix + HEAD, truncation=True, max_length=config.max_length)
    assert ids == whole["input_ids"]


def test_a_change_past_the_cut_changes_nothing(cue_model):
    """The cues used to read the whole sentence: a modal in the unseen tail moved the labels."""
    with_modal = HEAD + "因此美国必须应该建议呼吁与盟友合作，占全球60%。"
    without = HEAD + "合作。"
    a, b = cue_model.predict_proba([with_modal, without]).stance
    assert np.allclose(a, b, atol=1e-6)
    # without the cut, the heads see the tails' different cues (the old behaviour)
    uncut = predict_probabilities(cue_model.model, cue_model.tokenizer, [with_modal, without])
    assert not np.allclose(uncut.stance[0], uncut.stance[1], atol=1e-4)


def test_article_records_carry_the_flag(cue_model):
    article = cue_model.classify_article("标题\n" + HEAD + "结束。\n短句。\n图源:新华社\n", doc_id="d")
    flags = {(u["kind"], u["text"][:2]): u["truncated"] for u in article.units}
    assert flags == {("heading", "标题"): False, ("body", "美国"): True, ("body", "短句"): False,
                     ("caption", "图源"): False}  # fmt: skip
    caption = article.units[-1]
    assert caption["p_stance_support"] is None  # same columns for every unit, empty here
    json.dumps(article.units)


def test_texts_are_fitted_in_slices_as_they_would_be_one_by_one(cue_model):
    """Tokenized in slices (to bound peak memory), with long sentences on the slice edges."""
    from mineral_stance.context import ENCODE_SLICE

    config, tokenizer = cue_model.model.config, cue_model.tokenizer
    texts = [f"第{i}句：美国应与盟友合作。" for i in range(2 * ENCODE_SLICE + 3)]
    for edge in (ENCODE_SLICE - 1, ENCODE_SLICE, 2 * ENCODE_SLICE + 2):
        texts[edge] = HEAD + texts[edge]
    fitted, truncated = fit_to_model(config, tokenizer, texts)
    one_by_one = [fit_to_model(config, tokenizer, [text]) for text in texts]
    assert fitted == [f[0] for f, _ in one_by_one]
    assert truncated == [t[0] for _, t in one_by_one]
    assert sum(truncated) == 3
