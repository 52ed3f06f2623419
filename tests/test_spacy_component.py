"""The spaCy component: sentence spans labelled in blank zh/en pipelines and in nlp.pipe."""

import json
import subprocess
import sys

import pytest
import spacy

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.predict import load_classifier
from mineral_stance.spacy_component import render

ARTICLE_ZH = "美国关键矿产联盟\n\n美国应与盟友合作，确保供应链安全。中国生产全球约60%的稀土。\n\n图源:新华社\n"
ARTICLE_EN = (
    "Minerals alliance\n\nThe U.S. should work with allies on critical minerals. "
    "China refines about 90% of rare earths.\n"
)


def make_nlp(language, model_dir, **extra):
    nlp = spacy.blank(language)
    nlp.add_pipe("mineral_stance", config={"model": str(model_dir), **extra})
    return nlp


@pytest.fixture(scope="module")
def nlp_zh(tiny_model_dir):
    return make_nlp("zh", tiny_model_dir)


def test_blank_chinese_pipeline_gets_the_segmenters_sentences_and_labels(nlp_zh, tiny_model_dir):
    doc = nlp_zh(ARTICLE_ZH)
    sents = list(doc.sents)
    assert [s._.kind for s in sents] == ["heading", "body", "body", "caption"]
    assert sents[1].text.strip() == "美国应与盟友合作，确保供应链安全。"
    for sent in sents:
        assert sent._.stance in STANCES and sent._.voice in VOICES
        assert set(sent._.claim_types) <= set(CLAIM_TYPES)
    assert sents[3]._.stance == "unrelated" and sents[3]._.probs is None  # caption: default
    # the span labels are exactly what the classifier says about the unit's text
    expected = load_classifier(tiny_model_dir).predict(sents[2].text.strip())
    assert sents[2]._.stance == expected.stance
    assert sents[2]._.probs["stance_oppose"] == pytest.approx(
        expected.probabilities["stance_oppose"], abs=1e-4
    )
    summary = doc._.mineral_stance
    assert summary["sentences"] == 3 and summary["units"] == 4
    assert sum(summary[f"stance_{s}_count"] for s in STANCES) == 3


def test_blank_english_pipeline_keeps_abbreviations_inside_sentences(tiny_model_dir):
    doc = make_nlp("en", tiny_model_dir)(ARTICLE_EN)
    texts = [s.text.strip() for s in doc.sents]
    assert texts[1] == "The U.S. should work with allies on critical minerals."
    assert all(s._.stance in STANCES for s in doc.sents)


def test_sentences_set_by_an_earlier_component_are_kept(tiny_model_dir):
    nlp = spacy.blank("en")
    nlp.add_pipe("sentencizer")
    nlp.add_pipe("mineral_stance", config={"model": str(tiny_model_dir)})
    doc = nlp("First sentence here. Second one follows! Third?")
    assert [s.text for s in doc.sents] == ["First sentence here.", "Second one follows!", "Third?"]
    assert all(s._.kind == "body" and s._.probs for s in doc.sents)


def test_pipe_batches_documents_and_matches_one_by_one(nlp_zh, tiny_model_dir):
    component = nlp_zh.get_pipe("mineral_stance")
    calls = []
    original = component.classifier.predict

    def counting(texts, contexts=None, **kwargs):
        calls.append([c.article for c in contexts])
        return original(texts, contexts=contexts, **kwargs)

    component.classifier.predict = counting
    try:
        docs = list(nlp_zh.pipe([ARTICLE_ZH, "中國一直供應美國54%的鍺。", ""], batch_size=8))
    finally:
        component.classifier.predict = original
    # one model call for heading + 2 sentences, 1 sentence, nothing; each doc its own article
    assert calls == [["0", "0", "0", "1"]]
    single = nlp_zh(ARTICLE_ZH)
    assert [s._.stance for s in docs[0].sents] == [s._.stance for s in single.sents]
    assert docs[2]._.mineral_stance["sentences"] == 0


def test_render_shades_labelled_sentences(nlp_zh):
    html = render(nlp_zh(ARTICLE_ZH))
    assert "net stance" in html and "美国应与盟友合作" in html
    assert "<mark" in html or "unrelated" not in html  # displaCy's entity markup


def test_the_factory_is_found_through_the_entry_point(tiny_model_dir):
    """A fresh interpreter that never imports mineral_stance still finds "mineral_stance"."""
    code = (
        "import json, spacy, sys\n"
        "nlp = spacy.blank('zh')\n"
        f"nlp.add_pipe('mineral_stance', config={{'model': {str(tiny_model_dir)!r}}})\n"
        "doc = nlp('美国应与盟友合作。')\n"
        "print(json.dumps([s._.stance for s in doc.sents]))\n"
    )
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert json.loads(out.stdout.strip().splitlines()[-1])[0] in STANCES
