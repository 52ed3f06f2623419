"""Context: sentence + previous unit + title as a text pair; a context can flip the voice."""

import numpy as np
import pytest
import torch

from mineral_stance.config import TrainConfig
from mineral_stance.context import Context, article_vectors, contexts_of_units, encode
from mineral_stance.labels import targets_from_records
from mineral_stance.model import load_encoder
from mineral_stance.predict import StanceClassifier
from mineral_stance.train import inner_validation_split

from .conftest import make_records, round_embeddings_like_onnx

# From the seeds: the quotation's speaker is named in the sentence before.
SPEAKER = "美國智庫戰略與國際問題研究中心(CSIS)高級研究員表示:"
NARRATION = "2022年12月,美国携手加、澳、法、德、英、日组建可持续关键矿产联盟。"
QUOTED = "这项合作将使供应链更加安全可靠。"


def test_the_context_is_cut_never_the_sentence(tiny_base_model):
    _, tokenizer = load_encoder(str(tiny_base_model))
    sentence = "美国应与盟友合作，确保供应链安全。" * 4
    alone = encode(tokenizer, [sentence], None, "", 24)
    paired = encode(tokenizer, [sentence], [Context("中国生产全球约60%的稀土。" * 10, "标题")],
                    "", 24, "previous+title", 16)
    sentence_tokens = int(alone["attention_mask"].sum())
    # the sentence keeps the tokens it has alone, the context gets at most 16 more
    assert int(paired["sentence_mask"].sum()) == sentence_tokens
    assert paired["input_ids"][0, :sentence_tokens].tolist() == alone["input_ids"][0].tolist()
    assert sentence_tokens < int(paired["attention_mask"].sum()) <= sentence_tokens + 16 + 1
    # no context, or mode "none": exactly the sentence alone
    empty = encode(tokenizer, [sentence], [Context()], "", 24, "previous", 16)
    assert torch.equal(empty["input_ids"], alone["input_ids"])
    with pytest.raises(ValueError, match="unknown context"):
        encode(tokenizer, [sentence], [Context()], "", 24, "everything", 16)


def test_title_only_in_previous_plus_title(tiny_base_model):
    _, tokenizer = load_encoder(str(tiny_base_model))
    context = [Context("前一句话。", "矿产安全伙伴关系")]
    previous = encode(tokenizer, ["这句话。"], context, "", 32, "previous", 32)
    with_title = encode(tokenizer, ["这句话。"], context, "", 32, "previous+title", 32)
    assert with_title["attention_mask"].sum() > previous["attention_mask"].sum()


def test_contexts_of_units_stay_inside_their_document():
    contexts = contexts_of_units(["a", "b", "c"], ["T1", "T1", "T2"], ["d1", "d1", "d2"])
    assert contexts == [Context("", "T1", "d1"), Context("a", "T1", "d1"), Context("", "T2", "d2")]


def voice_pairs(copies: int = 4) -> tuple[list[str], list[Context], list[dict]]:
    """The same sentences reported after a speaker's line, the author's after narration."""
    texts, contexts, records = [], [], []
    for record in make_records(1) + [{"text": QUOTED, "claim_types": [], "stance": "neutral"}]:
        for previous, voice in ((SPEAKER, "reported"), (NARRATION, "author")):
            for _ in range(copies):
                texts.append(record["text"])
                contexts.append(Context(previous, "关键矿产"))
                records.append({**record, "voice": voice})
    return texts, contexts, records


def context_config(base, method: str, **changes) -> TrainConfig:
    config = TrainConfig(base_model=str(base), method=method, trained_layers=1, epochs=0,
                         head_init="linear_probe", batch_size=8, lora_r=4, lora_alpha=8,
                         seed=3, context="previous+title", context_length=48, max_length=48)
    for key, value in changes.items():
        setattr(config, key, value)
    return config


def test_a_context_that_flips_the_voice_flips_the_prediction(tiny_base_model):
    texts, contexts, records = voice_pairs()
    classifier = StanceClassifier(context_config(tiny_base_model, "frozen"))
    classifier.fit(texts, targets_from_records(records), contexts=contexts)
    reported = classifier.predict([QUOTED], [Context(SPEAKER, "关键矿产")])[0]
    author = classifier.predict([QUOTED], [Context(NARRATION, "关键矿产")])[0]
    assert (reported.voice, author.voice) == ("reported", "author")
    # a sentence list without context still works, read alone
    assert len(classifier.predict([QUOTED])) == 1


@pytest.mark.parametrize(("method", "epochs"), [("frozen", 0), ("lora", 2), ("top_layers", 2)])
def test_every_method_with_context_saves_and_loads(tiny_base_model, tmp_path, method, epochs):
    texts, contexts, records = voice_pairs(copies=1)
    config = context_config(tiny_base_model, method, epochs=epochs)
    classifier = StanceClassifier(config).fit(texts, targets_from_records(records),
                                              contexts=contexts)
    classifier.temperatures = {"claims": 1.5, "stance": 0.8, "voice": 2.0}
    before = classifier.predict_proba(texts, contexts)
    reloaded = StanceClassifier.from_pretrained(classifier.save_pretrained(tmp_path / method))
    assert reloaded.model.config.context == "previous+title"
    assert reloaded.temperatures == {"claims": 1.5, "stance": 0.8, "voice": 2.0}
    after = reloaded.predict_proba(texts, contexts)
    assert np.allclose(before.voice, after.voice, atol=1e-5)
    assert np.allclose(before.claims, after.claims, atol=1e-5)


def test_classify_article_passes_the_previous_unit_and_the_heading(tiny_model_dir, monkeypatch):
    from mineral_stance.predict import load_classifier

    classifier = load_classifier(tiny_model_dir)
    seen = {}
    original = classifier._model_probabilities

    def spy(texts, contexts, batch_size):
        seen["texts"], seen["contexts"] = texts, contexts
        return original(texts, contexts, batch_size)

    monkeypatch.setattr(classifier, "_model_probabilities", spy)
    classifier.classify_article("美国关键矿产联盟\n\n他表示：\n这项合作将使供应链更加安全可靠。\n")
    assert seen["texts"][-1] == "这项合作将使供应链更加安全可靠。"
    assert seen["contexts"][-1] == Context("他表示：", "美国关键矿产联盟", article="0")
    assert seen["contexts"][0] == Context("", "美国关键矿产联盟", article="0")


def test_early_stopping_holds_out_whole_groups_and_keeps_the_best_epoch(tiny_base_model):
    groups = [f"outlet{i % 5}" for i in range(40)]
    train, validation = inner_validation_split(groups, 0.2, seed=1)
    assert {groups[i] for i in train}.isdisjoint({groups[i] for i in validation})
    assert len(validation) >= 8 and len(train) + len(validation) == 40

    records = make_records(4)
    config = TrainConfig(base_model=str(tiny_base_model), method="lora", trained_layers=1,
                         epochs=6, batch_size=4, lora_r=4, seed=3, validation_fraction=0.25,
                         patience=1)
    classifier = StanceClassifier(config).fit(
        [r["text"] for r in records], targets_from_records(records),
        groups=[r["doc_id"] for r in records],
    )
    training = classifier.model.config.training
    history = training["validation_loss"]
    assert 1 <= len(history) <= 6
    assert history[training["best_epoch"] - 1] == min(history)


@pytest.mark.parametrize("method", ["lora", "top_layers"])
def test_cross_validation_cache_predicts_as_the_full_forward_pass(tiny_base_model, method):
    texts, contexts, records = voice_pairs(copies=1)
    config = context_config(tiny_base_model, method, epochs=1)
    cached = StanceClassifier(config, cache_states=True).fit(
        texts[::2], targets_from_records(records[::2]), contexts=contexts[::2]
    )
    # unseen sentences go through the frozen layers once, then the trained ones
    through_cache = cached.predict_proba(texts, contexts)
    cached.cache_states = False
    full = cached.predict_proba(texts, contexts)
    assert np.allclose(through_cache.stance, full.stance, atol=1e-5)
    assert np.allclose(through_cache.claims, full.claims, atol=1e-5)


def test_frozen_states_kept_on_disk_are_reused_by_another_run(tiny_base_model, tmp_path,
                                                              monkeypatch):
    from mineral_stance import train
    from mineral_stance.model import ModelConfig

    monkeypatch.setenv(train.STATE_CACHE_ENV, str(tmp_path))
    encoder, tokenizer = load_encoder(str(tiny_base_model))
    config = ModelConfig(base_model=str(tiny_base_model), text_prefix="", max_length=32,
                         context="previous", context_length=16)
    texts, contexts = [QUOTED, NARRATION], [Context(SPEAKER, "t"), Context()]
    first = train.frozen_states(encoder, tokenizer, texts, config, 1, contexts)
    assert len(list(tmp_path.glob("frozen-states-*.pt"))) == 1
    monkeypatch.setattr(train, "_STATE_CACHE", {"key": None, "states": {}})  # a new process
    monkeypatch.setattr(train, "encode", lambda *a, **k: pytest.fail("encoded again"))
    second = train.frozen_states(encoder, tokenizer, texts, config, 1, contexts)
    assert all(torch.equal(a, b) for a, b in zip(first.states, second.states, strict=True))
    assert first.sentence_lengths == second.sentence_lengths


# --- article vectors: the heads read the mean vector of the sentence's article -----------

OPPOSING = ["美国拉拢盟友围堵中国，只会扰乱全球供应链。", "所谓矿产安全伙伴关系是排华的小圈子。"]
SUPPORTING = ["美国应与盟友合作，确保供应链安全。", "矿产安全伙伴关系将使供应链更加可靠。"]
LINE = "该伙伴关系成立于2022年。"  # no stance of its own: its article gives it one


def article_pairs(copies: int = 3) -> tuple[list[str], list[Context], list[dict]]:
    """LINE inside opposing articles labelled oppose, inside supporting ones support."""
    texts, contexts, records = [], [], []
    for copy in range(copies):
        for stance, article in (("oppose", OPPOSING), ("support", SUPPORTING)):
            name = f"{stance}{copy}"
            for text in [*article, LINE]:
                texts.append(text)
                contexts.append(Context("", "", article=name))
                records.append({"text": text, "claim_types": [], "stance": stance,
                                "voice": "author"})
    return texts, contexts, records


def article_model(tiny_base_model) -> StanceClassifier:
    texts, contexts, records = article_pairs()
    config = TrainConfig(base_model=str(tiny_base_model), method="frozen", epochs=0,
                         head_init="linear_probe", max_length=48, seed=3, article_vector=True)
    return StanceClassifier(config).fit(texts, targets_from_records(records), contexts=contexts)


def test_article_vectors_are_each_articles_normalised_mean():
    vectors = np.array([[1.0, 0.0], [0.0, 1.0], [3.0, 4.0], [0.6, 0.8]], dtype=np.float32)
    contexts = [Context(article="a"), Context(article="a"), Context(), Context(article="b")]
    got = article_vectors(vectors, contexts)
    np.testing.assert_allclose(got[0], [2**-0.5, 2**-0.5], atol=1e-6)
    np.testing.assert_allclose(got[1], got[0])
    np.testing.assert_allclose(got[2], [0.6, 0.8], atol=1e-6)  # no article: its own
    np.testing.assert_allclose(got[3], [0.6, 0.8], atol=1e-6)
    np.testing.assert_allclose(article_vectors(vectors, None)[2], [0.6, 0.8], atol=1e-6)


def test_the_article_a_sentence_is_in_decides_its_stance(tiny_base_model):
    classifier = article_model(tiny_base_model)
    in_opposing = classifier.predict(
        [*OPPOSING, LINE], [Context(article="x")] * 3
    )[2]
    in_supporting = classifier.predict(
        [*SUPPORTING, LINE], [Context(article="y")] * 3
    )[2]
    assert (in_opposing.stance, in_supporting.stance) == ("oppose", "support")
    # the same sentences given as two articles in one call are read apart
    both = classifier.predict(
        [*OPPOSING, LINE, *SUPPORTING, LINE],
        [Context(article="x")] * 3 + [Context(article="y")] * 3,
    )
    assert (both[2].stance, both[5].stance) == ("oppose", "support")
    # a sentence list without context still works: each sentence is its own article
    assert len(classifier.predict([LINE, LINE])) == 2


def test_article_vector_models_save_load_and_predict_as_onnx(tiny_base_model, tmp_path,
                                                             monkeypatch):
    from mineral_stance import onnx_backend
    from mineral_stance.predict import load_classifier

    monkeypatch.setattr(onnx_backend, "onnx_cache_root", lambda: tmp_path / "onnx")
    texts, contexts, _ = article_pairs(copies=1)
    classifier = article_model(tiny_base_model)
    directory = classifier.save_pretrained(tmp_path / "article-model")
    before = classifier.predict_proba(texts, contexts)
    reloaded = load_classifier(directory, backend="torch").predict_proba(texts, contexts)
    np.testing.assert_allclose(reloaded.stance, before.stance, atol=1e-6)
    np.testing.assert_allclose(reloaded.claims, before.claims, atol=1e-6)
    # the ONNX export stores int8 word-embedding rows: compare on the same rows
    same_rows = load_classifier(directory, backend="torch")
    round_embeddings_like_onnx(same_rows)
    expected = same_rows.predict_proba(texts, contexts)
    got = load_classifier(directory, backend="onnx").predict_proba(texts, contexts)
    np.testing.assert_allclose(got.stance, expected.stance, atol=1e-5)
    np.testing.assert_allclose(got.claims, expected.claims, atol=1e-5)
    # the progress bar's chunks keep articles whole: the same probabilities in small chunks
    monkeypatch.setattr("mineral_stance.predict.PROGRESS_CHUNK_BATCHES", 1)
    chunked = classifier.predict_proba(texts, contexts, batch_size=2, show_progress_bar=True)
    np.testing.assert_allclose(chunked.stance, before.stance, atol=1e-6)


@pytest.mark.parametrize(("method", "epochs"), [("lora", 2), ("top_layers", 2)])
def test_fine_tuned_article_vector_models_save_and_load(tiny_base_model, tmp_path, method,
                                                       epochs):
    """The article vectors come from the encoder as it trains (refreshed every epoch)."""
    texts, contexts, records = article_pairs(copies=1)
    config = TrainConfig(base_model=str(tiny_base_model), method=method, trained_layers=1,
                         epochs=epochs, batch_size=4, lora_r=4, max_length=48, seed=3,
                         head_init="linear_probe", article_vector=True)
    classifier = StanceClassifier(config).fit(texts, targets_from_records(records),
                                              contexts=contexts)
    before = classifier.predict_proba(texts, contexts)
    reloaded = StanceClassifier.from_pretrained(classifier.save_pretrained(tmp_path / method))
    assert reloaded.model.config.article_vector
    after = reloaded.predict_proba(texts, contexts)
    np.testing.assert_allclose(after.stance, before.stance, atol=1e-5)
    # the article changes what the model says of the same sentence
    alone = reloaded.predict_proba(texts)
    assert not np.allclose(alone.stance, before.stance, atol=1e-4)


def test_a_model_file_says_article_vector_is_true_or_false(tmp_path):
    import json

    from mineral_stance.model_files import InvalidModelError, validate_config

    path = tmp_path / "config.json"
    path.write_text(json.dumps({"method": "frozen", "article_vector": "yes"}), encoding="utf-8")
    with pytest.raises(InvalidModelError, match="config.json: article_vector: true or false"):
        validate_config(path)


def test_progress_chunks_never_split_an_article():
    from mineral_stance.predict import progress_chunks

    contexts = [Context(article=a) for a in "aaabbbbbc"] + [Context(), Context()]
    chunks = list(progress_chunks(contexts, len(contexts), 2))
    assert chunks == [(0, 3), (3, 8), (8, 10), (10, 11)]
    assert list(progress_chunks(None, 5, 2)) == [(0, 2), (2, 4), (4, 5)]


def test_rows_encoded_in_slices_equal_one_call(tiny_base_model):
    """Without context the sentences are tokenized in slices of ENCODE_SLICE; the ids
    are those of one call over all of them."""
    from transformers import AutoTokenizer

    from mineral_stance import context

    tokenizer = AutoTokenizer.from_pretrained(tiny_base_model)
    texts = [f"第{i}句：美国应与盟友合作。" * (1 + i % 3) for i in range(context.ENCODE_SLICE + 7)]
    rows = context.encode_rows(tokenizer, texts, None, "query: ", 32)
    expected = tokenizer(["query: " + t for t in texts], truncation=True, max_length=32)
    assert [list(ids) for ids, _ in rows] == expected["input_ids"]
    assert [n for _, n in rows] == [len(ids) for ids in expected["input_ids"]]
