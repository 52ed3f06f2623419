"""The classifier's Python API follows the conventions scikit-learn and transformers users know."""

import numpy as np
import pandas as pd
import pytest

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.labels import Probabilities
from mineral_stance.predict import SentenceResult, as_sentences, load_classifier
from mineral_stance.results import Predictions, prediction_columns

SENTENCES = ["美国应与盟友合作。", "中國生產全球60%的稀土。", "The MSP was launched in 2022."]


@pytest.fixture(scope="module")
def clf(tiny_model_dir):
    return load_classifier(tiny_model_dir)


@pytest.fixture(scope="module")
def reference(clf):
    return clf.predict_proba(SENTENCES)


@pytest.mark.parametrize(
    "make",
    [
        list,
        tuple,
        np.array,
        lambda s: np.array(s, dtype=object),
        pd.Series,
        lambda s: pd.Series(s, index=[10, 20, 30]),  # a filtered frame's column
        lambda s: (t for t in s),
        lambda s: dict.fromkeys(s).keys(),
    ],
    ids=["list", "tuple", "numpy", "numpy-object", "series", "series-index", "generator", "keys"],
)
def test_every_iterable_of_strings_gives_the_same_probabilities(clf, reference, make):
    probabilities = clf.predict_proba(make(SENTENCES))
    assert len(probabilities) == 3
    np.testing.assert_allclose(probabilities.stance, reference.stance, atol=1e-6)
    predictions = clf.predict(make(SENTENCES))
    assert isinstance(predictions, Predictions)
    assert [p.text for p in predictions] == SENTENCES
    assert all(type(p.text) is str for p in predictions)  # numpy str_ becomes plain str


def test_a_single_string_is_one_sentence_with_one_result(clf, reference):
    result = clf.predict(SENTENCES[0])
    assert isinstance(result, SentenceResult)
    assert result.text == SENTENCES[0]
    row = clf.predict_proba(SENTENCES[0])
    assert row.stance.shape == (4,) and row.claims.shape == (3,)
    np.testing.assert_allclose(row.stance, reference.stance[0], atol=1e-6)
    assert list(row.to_pandas().columns) == row.columns


@pytest.mark.parametrize(
    ("texts", "message"),
    [
        (None, "not NoneType"),
        (42, "not int"),
        (b"bytes", "not bytes"),
        (["ok", None, "ok"], r"texts\[1\] is NoneType"),
        (pd.Series(["ok", "ok", np.nan]), r"texts\[2\] is float"),
        (np.array([1.5, 2.5]), r"texts\[0\] is float"),
        (pd.DataFrame({"text": ["a"]}), r"df\['text'\]"),
    ],
)
def test_none_and_non_strings_are_refused_naming_the_position(clf, texts, message):
    with pytest.raises(TypeError, match=message):
        clf.predict(texts)
    with pytest.raises(TypeError, match=message):
        clf.predict_proba(texts)


def test_label_order_is_discoverable(clf, reference):
    assert clf.labels == {
        "claim_types": list(CLAIM_TYPES),
        "stance": list(STANCES),
        "voice": list(VOICES),
    }
    assert clf.id2label["stance"][1] == "oppose"
    assert reference.stances == STANCES
    table = reference.to_pandas()
    assert list(table.columns) == reference.columns
    assert table["p_stance_oppose"].tolist() == pytest.approx(reference.stance[:, 1].tolist())
    # the probability columns of predictions carry the same names
    assert set(reference.columns) <= set(clf.predict(SENTENCES).to_pandas().columns)


def test_empty_input_gives_empty_results_with_every_column(clf):
    assert list(clf.predict([]).to_pandas().columns) == prediction_columns()
    empty = clf.predict_proba(np.array([], dtype=str))
    assert len(empty) == 0 and empty.to_pandas().shape == (0, 9)
    article = clf.classify_article("", doc_id="empty").to_pandas()
    assert {"kind", "start", "stance", "p_stance_oppose"} <= set(article.columns)


def test_slicing_predictions_gives_predictions(clf):
    predictions = clf.predict(SENTENCES)
    head = predictions[:2]
    assert isinstance(head, Predictions) and len(head) == 2
    assert head.to_pandas()["text"].tolist() == SENTENCES[:2]
    assert isinstance(predictions[-1], SentenceResult)
    assert "3 sentences" in repr(predictions)


def test_calling_the_classifier_is_predict(clf):
    called = clf(SENTENCES)
    assert called.to_pandas().equals(clf.predict(SENTENCES).to_pandas())


def test_batch_size_and_progress_bar_do_not_change_results(clf, reference, capsys):
    many = SENTENCES * 7
    small = clf.predict_proba(many, batch_size=2, show_progress_bar=True)
    np.testing.assert_allclose(small.stance[:3], reference.stance, atol=1e-5)
    assert "21/21" in capsys.readouterr().err  # the bar counts sentences
    with pytest.raises(ValueError, match="batch_size"):
        clf.predict(SENTENCES, batch_size=0)


def test_probabilities_rows_and_subsets():
    probabilities = Probabilities(np.eye(3), np.eye(4)[:3], np.eye(2)[[0, 1, 0]])
    assert len(probabilities) == 3 and len(probabilities[1:]) == 2
    assert probabilities[2].stance.tolist() == [0, 0, 1, 0]
    assert probabilities.to_numpy().shape == (3, 9)


def test_as_sentences_keeps_order_and_flags_single_strings():
    assert as_sentences("一句。") == (True, ["一句。"])
    assert as_sentences(pd.Series(["b", "a"], index=[5, 1])) == (False, ["b", "a"])


def test_article_view_keeps_headings_and_paragraphs_without_slanted_text(clf):
    text = "标题一\n\n美国应与盟友合作。中国生产全球约60%的稀土。\n\n第二段的句子。\n"
    article = clf.classify_article(text, doc_id="demo")
    html = article._repr_html_()
    assert "<h4" in html and "标题一" in html.split("<h4", 1)[1].split("</h4>")[0]
    assert html.count("<p ") == 2  # two paragraphs in the source, two in the view
    assert "italic" not in html and "<i>" not in html  # CJK is never slanted
    assert "#d6e0ff" in html  # neutral has a colour one can see, in the legend at least
