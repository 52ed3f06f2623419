"""The committed corpus itself: complete, free of reserved material and of duplicate stories."""

import json
import subprocess
import sys
from collections import Counter

import pytest

from mineral_stance.annotations import load_records
from mineral_stance.articles import article_paths, near_duplicate_pairs, read_article_file
from mineral_stance.articles import read_manifest as read_articles_manifest
from mineral_stance.config import (
    ANNOTATIONS_DIR,
    ARTICLES_DIR,
    GOLD_PATH,
    LABELLED_KINDS,
    PROJECT_DIR,
)
from mineral_stance.corpus import read_article, seed_paths
from mineral_stance.dataset import corpus_frame, outlet_folds
from mineral_stance.segment import segment_text

CHECK_RESERVED = PROJECT_DIR.parent / "shared" / "reserved" / "check_reserved.py"


@pytest.fixture(scope="module")
def articles():
    return [read_article_file(path) for path in article_paths()]


@pytest.fixture(scope="module")
def gold():
    return load_records(GOLD_PATH)


def test_every_article_is_in_the_manifest_and_fully_labelled(articles, gold):
    manifest = read_articles_manifest(ARTICLES_DIR / "manifest.csv")
    assert sorted(row["file"] for row in manifest) == sorted(a.path.name for a in articles)
    by_id = {record["id"]: record for record in gold}
    for article in articles:
        units = [u for u in segment_text(article.text, article.meta.doc_id)
                 if u.kind in LABELLED_KINDS]
        assert units, article.path
        for unit in units:
            assert unit.id in by_id, f"{unit.id} has no gold label"
            assert by_id[unit.id]["text"] == unit.text, unit.id
    expected = {a.meta.doc_id for a in articles} | {
        read_article(p).doc_id for p in seed_paths()}
    assert {record["doc_id"] for record in gold} == expected


@pytest.mark.skipif(not CHECK_RESERVED.exists(),
                    reason="the reserved-material fingerprints (../shared/reserved) are absent")
def test_no_reserved_material_in_annotations_or_articles(tmp_path, articles):
    records = [{"id": a.path.name, "text": a.text, "source": a.meta.source} for a in articles]
    article_file = tmp_path / "articles.jsonl"
    article_file.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records),
                            encoding="utf-8")
    files = [article_file, *sorted(ANNOTATIONS_DIR.rglob("*.jsonl"))]
    result = subprocess.run([sys.executable, str(CHECK_RESERVED), *map(str, files)],
                            capture_output=True, text=True)
    assert result.returncode == 0, result.stdout
    assert result.stderr.strip().endswith("0 reserved")


def test_no_two_articles_tell_the_same_story(articles):
    texts = {a.meta.doc_id: a.text for a in articles}
    texts |= {read_article(p).doc_id: read_article(p).text for p in seed_paths()}
    assert near_duplicate_pairs(texts) == []


def test_outlet_folds_keep_outlets_and_stories_on_one_side():
    frame = corpus_frame()
    for train, test in outlet_folds(frame["fold_group"], n_folds=5):
        for column in ("outlet", "story", "doc_id"):
            assert set(frame[column].iloc[train]).isdisjoint(frame[column].iloc[test]), column


def test_corpus_reaches_its_size_and_variety(articles, gold):
    scripts = Counter(a.meta.script for a in articles)
    outlets = Counter(a.meta.outlet.split("·")[0] for a in articles)
    assert len(articles) >= 300
    assert scripts["simplified"] >= 100 and scripts["traditional"] >= 100
    assert scripts["english"] >= 30
    assert max(outlets.values()) <= 0.08 * len(articles)
    assert len({a.meta.perspective for a in articles}) == 10
    assert len(gold) >= 4000
    stances = Counter(r["stance"] for r in gold)
    claims = Counter(c for r in gold for c in r["claim_types"])
    assert stances["support"] >= 200 and stances["oppose"] >= 400
    assert claims["policy_recommendation"] >= 300
