"""The gold corpus as a datasets.Dataset, and splits that hold out whole outlets."""

import json

import numpy as np
import pandas as pd
import pytest

from mineral_stance.config import CLAIM_TYPES, GOLD_PATH, PERSPECTIVES, STANCES
from mineral_stance.dataset import (
    corpus_frame,
    fold_groups,
    held_out_split,
    load_corpus,
    outlet_folds,
    site_of,
)

from .conftest import make_records


@pytest.fixture(scope="module")
def corpus():
    return load_corpus()


def test_load_corpus_has_label_features_and_group_columns(corpus):
    gold_lines = sum(1 for line in GOLD_PATH.read_text("utf-8").split("\n") if line.strip())
    assert corpus.num_rows == gold_lines
    assert corpus.features["stance"].names == list(STANCES)
    assert corpus.features["claim_types"].feature.names == list(CLAIM_TYPES)
    assert corpus.features["perspective"].names == list(PERSPECTIVES)
    for column in ("doc_id", "outlet", "perspective", "script", "fold_group", "previous"):
        assert column in corpus.column_names
    first = corpus[0]
    assert first["previous"] == "" and isinstance(first["stance"], int)


def test_previous_is_the_sentence_before_in_the_same_article(corpus):
    frame = corpus.to_pandas()
    same_doc = frame["doc_id"] == frame["doc_id"].shift(1)
    assert (frame.loc[same_doc, "previous"] == frame["text"].shift(1)[same_doc]).all()
    assert (frame.loc[~same_doc, "previous"] == "").all()


def test_held_out_split_never_shares_an_outlet_group(corpus):
    split = held_out_split(corpus, fold=0)
    assert set(split["train"]["fold_group"]).isdisjoint(split["test"]["fold_group"])
    assert split["train"].num_rows + split["test"].num_rows == corpus.num_rows
    assert set(split["train"]["outlet"]).isdisjoint(split["test"]["outlet"])


def test_outlet_folds_cover_every_sentence_once_with_groups_whole():
    groups = np.array(["a"] * 5 + ["b"] * 3 + ["c"] * 3 + ["d"] * 2 + ["e"] * 1 + ["f"] * 1)
    tests = [test for _, test in outlet_folds(groups, n_folds=3)]
    covered = np.sort(np.concatenate(tests))
    assert (covered == np.arange(len(groups))).all()
    for test in tests:
        inside = set(groups[test])
        outside = set(groups[np.setdiff1d(np.arange(len(groups)), test)])
        assert inside.isdisjoint(outside)
    assert max(len(t) for t in tests) - min(len(t) for t in tests) <= 2
    with pytest.raises(ValueError, match="2 groups cannot make 3 folds"):
        list(outlet_folds(["a", "b"], n_folds=3))


def test_fold_groups_join_articles_by_outlet_site_and_story():
    articles = pd.DataFrame([
        {"doc_id": "a", "outlet": "网易号·甲", "site": "163.com", "story": "a"},
        {"doc_id": "b", "outlet": "网易号·乙", "site": "163.com", "story": "b"},
        {"doc_id": "c", "outlet": "自由時報", "site": "ltn.com.tw", "story": "c"},
        {"doc_id": "d", "outlet": "Yahoo奇摩", "site": "yahoo.com", "story": "c"},  # a reprint
        {"doc_id": "e", "outlet": "Reuters", "site": "reuters.com", "story": "e"},
    ])
    groups = fold_groups(articles)
    assert groups["a"] == groups["b"] and groups["c"] == groups["d"]
    assert len({groups["a"], groups["c"], groups["e"]}) == 3


@pytest.mark.parametrize(
    ("address", "site"),
    [
        ("https://news.ltn.com.tw/news/world/123", "ltn.com.tw"),
        ("https://www.163.com/dy/article/X.html", "163.com"),
        ("http://m.udn.com/news/story/1", "udn.com"),
        ("https://www.bbc.co.uk/zhongwen/simp/1", "bbc.co.uk"),
    ],
)
def test_site_of(address, site):
    assert site_of(address) == site


def test_an_annotation_file_without_metadata_is_cross_validated_by_document(tmp_path):
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in make_records(3)),
                    encoding="utf-8")
    frame = corpus_frame(gold, strict=False)
    assert set(frame["fold_group"]) == {"doc0", "doc1", "doc2"}
    assert set(frame["perspective"]) == {"unknown"}
    with pytest.raises(ValueError, match="no article metadata for doc_id"):
        corpus_frame(gold)


def test_load_corpus_is_importable_from_the_package():
    import mineral_stance

    assert mineral_stance.load_corpus is load_corpus
