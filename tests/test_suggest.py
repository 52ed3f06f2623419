"""Active learning: uncertainty, diversity-aware selection, and the suggest command on the seeds."""

import json
import re

import numpy as np
import pytest

from mineral_stance.annotations import load_records
from mineral_stance.cli import main
from mineral_stance.config import GOLD_PATH
from mineral_stance.corpus import seed_paths
from mineral_stance.labels import Probabilities
from mineral_stance.suggest import normalise, select, uncertainty


def test_uncertainty_is_zero_when_sure_and_one_when_torn():
    sure = Probabilities(np.array([[0.0, 1.0, 0.0]]), np.eye(4)[:1], np.array([[1.0, 0.0]]))
    torn = Probabilities(np.array([[0.5, 0.5, 0.5]]), np.full((1, 4), 0.25), np.array([[0.5, 0.5]]))
    for strategy in ("margin", "entropy"):
        assert uncertainty(sure, [0.5] * 3, strategy)[0] == pytest.approx(0.0, abs=1e-9)
        assert uncertainty(torn, [0.5] * 3, strategy)[0] == pytest.approx(1.0)


def test_selection_spreads_over_clusters_and_skips_near_duplicates():
    rng = np.random.default_rng(0)
    centre_a, centre_b, centre_gold = np.eye(8)[0], np.eye(8)[1], np.eye(8)[2]
    a = normalise(centre_a + 0.05 * rng.normal(size=(10, 8)))
    b = normalise(centre_b + 0.05 * rng.normal(size=(10, 8)))
    gold = normalise(centre_gold[None, :].copy())
    copy_of_gold = normalise(centre_gold[None, :] + 1e-4)
    vectors = np.vstack([a, b, copy_of_gold])
    scores = np.r_[np.full(10, 0.9), np.full(10, 0.6), 1.0]  # cluster a more uncertain
    picked = select(scores, vectors, gold, 2)
    assert 20 not in picked  # the most uncertain one is a copy of gold
    assert {i // 10 for i in picked} == {0, 1}  # one from each cluster, not two from a
    # plain ranking by uncertainty would have taken two from cluster a
    assert select(scores, vectors, gold, 25).count(20) == 0


def test_suggest_command_on_the_seed_articles(tmp_path, capsys):
    """The shipped model (real sentence vectors) on two seed articles, a third one as gold."""
    gold = [r for r in load_records(GOLD_PATH) if r["doc_id"] == "guancha-trump-supply"]
    partial = tmp_path / "gold.jsonl"
    partial.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in gold), encoding="utf-8"
    )
    out = tmp_path / "to_label.jsonl"
    articles = [p for p in seed_paths() if p.name.startswith(("000_", "003_", "004_"))]
    status = main(
        ["suggest", *map(str, articles), "-n", "12", "-o", str(out), "--gold", str(partial)]
    )
    err = capsys.readouterr().err
    assert status == 0, err
    chosen = [json.loads(line) for line in out.read_text(encoding="utf-8").splitlines()]
    assert [r["suggest_rank"] for r in chosen] == list(range(1, 13))
    assert len({r["id"] for r in chosen}) == 12
    gold_texts = {re.sub(r"\s+", "", r["text"]) for r in load_records(partial)}
    assert not {re.sub(r"\s+", "", r["text"]) for r in chosen} & gold_texts
    # the article already in gold gives nothing; both unlabelled articles give something
    assert {r["doc_id"] for r in chosen} == {"csis-apec-minerals", "minmetals-alliance-future"}
    assert all(0 <= r["uncertainty"] <= 1 and "p_stance_oppose" in r for r in chosen)
    # export-ready: the suggestions go straight to a Label Studio task file
    tasks = tmp_path / "tasks.json"
    status = main(["export", "--format", "label-studio", str(out), "-o", str(tasks), "--no-model"])
    assert status == 0
    exported = json.loads(tasks.read_text(encoding="utf-8"))
    assert [t["data"]["sentence_id"] for t in exported] == [r["id"] for r in chosen]
    assert all(t["predictions"][0]["score"] <= 1 for t in exported)
