"""Temperature scaling, calibration error, reliability report and min_confidence."""

import json

import numpy as np
import pytest

from mineral_stance.calibration import (
    apply_temperatures,
    calibration_report,
    expected_calibration_error,
    fit_temperature,
    scaled,
)
from mineral_stance.cli import main
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.predict import load_classifier


def overconfident(n: int = 2000, seed: int = 0) -> tuple[Probabilities, Targets]:
    """Predictions right 70% of the time but stated with ~97% confidence."""
    rng = np.random.default_rng(seed)
    stance = rng.integers(0, 4, n)
    right = rng.random(n) < 0.7
    predicted = np.where(right, stance, (stance + 1) % 4)
    logits = np.full((n, 4), 0.0)
    logits[np.arange(n), predicted] = 4.5
    stance_p = np.exp(logits) / np.exp(logits).sum(1, keepdims=True)
    voice = rng.integers(0, 2, n)
    voice_p = np.where((rng.random(n) < 0.8)[:, None], np.eye(2)[voice], np.eye(2)[1 - voice])
    voice_p = np.clip(voice_p, 0.02, 0.98)
    claims = rng.integers(0, 2, (n, 3))
    claims_p = np.clip(np.where(rng.random((n, 3)) < 0.75, claims, 1 - claims), 0.03, 0.97)
    return Probabilities(claims_p, stance_p, voice_p), Targets(claims, stance, voice)


def test_temperature_scaling_fixes_overconfidence_without_changing_labels():
    probabilities, targets = overconfident()
    temperature = fit_temperature(probabilities.stance, targets.stance, "stance")
    assert temperature > 1.5  # overconfident: soften
    after = scaled(probabilities.stance, "stance", temperature)
    assert (after.argmax(1) == probabilities.stance.argmax(1)).all()
    before_ece = expected_calibration_error(probabilities.stance, targets.stance, "stance")
    after_ece = expected_calibration_error(after, targets.stance, "stance")
    assert before_ece > 0.2 and after_ece < 0.05
    # temperature 1 changes nothing; claims scale as sigmoids, keeping their order
    assert np.allclose(scaled(probabilities.claims, "claims", 1.0), probabilities.claims)
    claims = apply_temperatures(probabilities, {"claims": 2.0}).claims[:, 0]
    assert (np.argsort(claims, kind="stable") ==
            np.argsort(probabilities.claims[:, 0], kind="stable")).all()


def test_calibration_report_writes_markdown_json_and_plot(tmp_path):
    probabilities, targets = overconfident(600)
    folds = [np.arange(i, 600, 3) for i in range(3)]
    result = calibration_report(probabilities, targets, folds, tmp_path, "demo", log=lambda m: None)
    assert result["ece_after"]["stance"] < result["ece_before"]["stance"]
    assert len(result["temperatures_per_fold"]) == 3
    saved = json.loads((tmp_path / "calibration.json").read_text("utf-8"))
    assert saved["temperatures"] == result["temperatures"]
    assert "| stance |" in (tmp_path / "calibration.md").read_text("utf-8")
    assert (tmp_path / "calibration.png").stat().st_size > 0


def test_min_confidence_flags_the_stance_but_keeps_the_label(tiny_model_dir):
    classifier = load_classifier(tiny_model_dir)
    sentences = ["美国应与盟友合作。", "中國生產全球60%的稀土。"]
    plain = classifier.predict(sentences)
    assert "stance_uncertain" not in plain[0].to_record()
    everything = classifier.predict(sentences, min_confidence=1.0)
    nothing = classifier.predict(sentences, min_confidence=0.0)
    assert [r.stance for r in everything] == [r.stance for r in plain]
    assert all(r.stance_uncertain for r in everything)
    assert not any(r.stance_uncertain for r in nothing)
    record = everything[0].to_record()
    assert record["stance_uncertain"] is True
    assert record["stance_confidence"] == pytest.approx(record[f"p_stance_{record['stance']}"])
    middle = sorted(r.stance_confidence for r in plain)[0] + 1e-6
    flags = [r.stance_uncertain for r in classifier.predict(sentences, min_confidence=middle)]
    assert flags.count(True) >= 1
    with pytest.raises(ValueError, match="min_confidence"):
        classifier.predict(sentences, min_confidence=1.5)
    article = classifier.classify_article("标题\n\n美国应与盟友合作。\n", min_confidence=1.0)
    assert all(u["stance_uncertain"] for u in article.units if u["kind"] == "body")


def test_classify_command_min_confidence(tmp_path, tiny_model_dir, capsys):
    article = tmp_path / "a.txt"
    article.write_text("标题\n\n美国应与盟友合作，确保供应链安全。\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    args = ["classify", str(article), "-o", str(out), "--model", str(tiny_model_dir), "-q",
            "--min-confidence", "0.99"]
    assert main(args) == 0
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    body = [r for r in records if r["kind"] == "body"][0]
    assert body["stance_uncertain"] is (body["stance_confidence"] < 0.99)
    assert body["stance"] in ("support", "oppose", "neutral", "unrelated")
    capsys.readouterr()
    assert main(args[:-1] + ["7", "--overwrite"]) == 2
    assert "--min-confidence must be between 0 and 1" in capsys.readouterr().err
    assert out.exists()  # a refused run leaves the earlier output alone
