"""The ONNX Runtime backend gives the torch backend's labels, from a sound cached export."""

import json

import numpy as np
import pytest
from safetensors.torch import load_file, save_file

from mineral_stance import onnx_backend
from mineral_stance.corpus import seed_paths, segment_file
from mineral_stance.labels import label_dicts
from mineral_stance.model import ModelConfig
from mineral_stance.predict import load_classifier

from .conftest import make_records, round_embeddings_like_onnx

SENTENCES = [
    "美国应与盟友合作，确保供应链安全。",
    "中國一直供應美國54%的鍺,53%的鎵。",
    "The Minerals Security Partnership (MSP) was launched in 2022.",
    "这并非中国最后一次诉诸经济胁迫。",
    "美国主导关键矿产联盟是出于一已私利。",
]


@pytest.fixture
def onnx_cache(tmp_path, monkeypatch):
    """Exports of tiny models go to a temporary cache, not the user's."""
    root = tmp_path / "onnx-cache"
    monkeypatch.setattr(onnx_backend, "onnx_cache_root", lambda: root)
    return root


def labels(classifier, texts, contexts=None):
    probabilities = classifier.predict_proba(texts, contexts)
    return label_dicts(classifier.decide(probabilities))


def decisive_rows(probabilities, thresholds, margin: float = 1e-3) -> np.ndarray:
    """Rows whose every decision clears its boundary by more than `margin`.

    The tiny test model is barely trained: some of its claim probabilities sit within 1e-4
    of the 0.5 threshold, where the export's int8 embedding rows may fairly tip the label.
    """
    claims_clear = np.abs(probabilities.claims - np.asarray(thresholds)) > margin
    top_two = np.sort(probabilities.stance, axis=1)[:, -2:]
    stance_clear = top_two[:, 1] - top_two[:, 0] > margin
    voice_clear = np.abs(probabilities.voice[:, 0] - probabilities.voice[:, 1]) > margin
    return claims_clear.all(axis=1) & stance_clear & voice_clear


def test_onnx_gives_the_torch_labels_and_probabilities_on_a_tiny_model(tiny_model_dir, onnx_cache):
    torch_clf = load_classifier(tiny_model_dir, threads=1)
    onnx_clf = load_classifier(tiny_model_dir, threads=1, backend="onnx")
    # the tiny model was trained with LoRA: the export must have the adapter merged
    assert ModelConfig.load(tiny_model_dir).method == "lora"
    # the export stores the word embeddings as int8 rows (onnx_backend.int8_rows): from
    # the same rows, the graph computes torch's probabilities up to fp32 rounding
    same_rows = load_classifier(tiny_model_dir, threads=1)
    round_embeddings_like_onnx(same_rows)
    expected, got = same_rows.predict_proba(SENTENCES), onnx_clf.predict_proba(SENTENCES)
    for task in ("claims", "stance", "voice"):
        np.testing.assert_allclose(getattr(got, task), getattr(expected, task), atol=1e-5)
    # and the rounding moves no label of the unrounded torch model, wherever its
    # decision is not a near tie (within 1e-3 of its boundary)
    texts = SENTENCES + [r["text"] for r in make_records()]
    decisive = decisive_rows(torch_clf.predict_proba(texts), torch_clf.claim_thresholds)
    assert decisive.sum() >= len(texts) // 2
    kept = [t for t, keep in zip(texts, decisive, strict=True) if keep]
    assert labels(onnx_clf, kept) == labels(torch_clf, kept)
    records = onnx_clf.classify_article("美国关键矿产联盟\n\n美国应与盟友合作。\n").to_pandas()
    assert len(records) == 2 and set(records["stance"]) <= {
        "support",
        "oppose",
        "neutral",
        "unrelated",
    }


def test_onnx_reads_context_and_temperatures_as_torch_does(tiny_base_model, tmp_path, onnx_cache):
    from mineral_stance.config import TrainConfig
    from mineral_stance.context import Context
    from mineral_stance.labels import targets_from_records
    from mineral_stance.predict import StanceClassifier

    records = make_records()
    texts = [r["text"] for r in records]
    contexts = [Context(texts[i - 1] if i else "", "关键矿产联盟") for i in range(len(texts))]
    config = TrainConfig(
        base_model=str(tiny_base_model),
        method="top_layers",
        trained_layers=1,
        epochs=1,
        batch_size=4,
        context="previous+title",
        context_length=32,
    )
    classifier = StanceClassifier(config).fit(
        texts, targets_from_records(records), contexts=contexts
    )
    classifier.temperatures = {"claims": 1.5, "stance": 0.7, "voice": 2.0}
    directory = classifier.save_pretrained(tmp_path / "context-model")
    torch_clf = load_classifier(directory, threads=1)
    round_embeddings_like_onnx(torch_clf)  # the export's int8 embedding rows: see above
    onnx_clf = load_classifier(directory, threads=1, backend="onnx")
    expected = torch_clf.predict_proba(texts, contexts)
    got = onnx_clf.predict_proba(texts, contexts)
    for task in ("claims", "stance", "voice"):
        np.testing.assert_allclose(getattr(got, task), getattr(expected, task), atol=1e-5)
    # the context matters to this model, so agreement above is not agreement by accident
    alone = torch_clf.predict_proba(texts)
    assert not np.allclose(alone.stance, expected.stance, atol=1e-3)


def test_int8_export_is_smaller_and_close_to_fp32(tiny_model_dir, onnx_cache):
    fp32 = onnx_backend.export_encoder(tiny_model_dir, "fp32")
    int8 = onnx_backend.export_encoder(tiny_model_dir, "int8")
    assert fp32.parent != int8.parent
    weights = onnx_backend.WEIGHTS_NAME
    assert (int8.parent / weights).stat().st_size < (fp32.parent / weights).stat().st_size
    torch_clf = load_classifier(tiny_model_dir, threads=1)
    int8_clf = load_classifier(tiny_model_dir, threads=1, backend="onnx", precision="int8")
    difference = np.abs(
        int8_clf.predict_proba(SENTENCES).stance - torch_clf.predict_proba(SENTENCES).stance
    )
    assert difference.max() < 0.05


def test_a_damaged_export_is_rebuilt(tiny_model_dir, onnx_cache):
    path = onnx_backend.export_encoder(tiny_model_dir)
    manifest = json.loads((path.parent / onnx_backend.MANIFEST_NAME).read_text())
    reference = load_classifier(tiny_model_dir, threads=1, backend="onnx").predict_proba(SENTENCES)

    for name in (onnx_backend.ONNX_NAME, onnx_backend.WEIGHTS_NAME):  # graph, then weights
        damaged = path.parent / name
        data = bytearray(damaged.read_bytes())
        data[len(data) // 2 : len(data) // 2 + 64] = bytes(64)  # same size, garbage inside
        damaged.write_bytes(bytes(data))
        assert not onnx_backend._is_sound(path.parent)
        rebuilt = load_classifier(tiny_model_dir, threads=1, backend="onnx")
        assert onnx_backend._is_sound(path.parent)
        assert onnx_backend.stamped_sha256(damaged) == manifest["files"][name]["sha256"]
        np.testing.assert_allclose(
            rebuilt.predict_proba(SENTENCES).stance, reference.stance, atol=1e-6
        )

    path.write_bytes(b"not an onnx file")  # truncated
    load_classifier(tiny_model_dir, threads=1, backend="onnx")
    assert path.stat().st_size == manifest["files"][onnx_backend.ONNX_NAME]["size"]
    (path.parent / onnx_backend.WEIGHTS_NAME).unlink()  # lost
    load_classifier(tiny_model_dir, threads=1, backend="onnx")
    assert onnx_backend._is_sound(path.parent)


def test_a_changed_adapter_gets_a_new_export_and_the_stale_one_goes(
    tiny_model_dir, tmp_path, onnx_cache
):
    import shutil

    copy = tmp_path / "model"
    shutil.copytree(tiny_model_dir, copy)
    before = onnx_backend.export_encoder(copy).parent
    adapter = next((copy / "adapter").glob("*.safetensors"))
    weights = load_file(adapter)
    save_file({name: tensor * 1.5 for name, tensor in weights.items()}, adapter)  # retrained
    after = onnx_backend.export_encoder(copy).parent
    assert after != before and after.is_dir()
    assert not before.exists()


def test_unknown_backend_and_precision_are_refused(tiny_model_dir, onnx_cache):
    with pytest.raises(ValueError, match="unknown backend"):
        load_classifier(tiny_model_dir, backend="tensorrt")
    with pytest.raises(ValueError, match="unknown precision"):
        load_classifier(tiny_model_dir, backend="onnx", precision="int4")


def test_shipped_model_onnx_default_agrees_with_torch_on_seed_units():
    """The shipped default changes at most 1% of labels per task on the seed units classify
    gives the model (body and heading sentences), each read in its article as classify
    reads it: the shipped heads read the article vector. (benchmarks/predict_speed.py
    measures all 661 units the same way.)"""
    from mineral_stance.context import contexts_of_articles

    units, contexts = contexts_of_articles([segment_file(path) for path in seed_paths()])
    texts = [unit.text for unit in units]
    torch_labels = labels(load_classifier(), texts, contexts)
    onnx_labels = labels(load_classifier(backend="onnx"), texts, contexts)
    for task in ("claim_types", "stance", "voice"):
        changed = sum(a[task] != b[task] for a, b in zip(torch_labels, onnx_labels, strict=True))
        assert changed <= 0.01 * len(texts), (task, changed)


def test_evaluate_scores_the_onnx_backend_as_the_torch_one(
    tiny_model_dir, tmp_path, onnx_cache, capsys
):
    from mineral_stance.cli import main

    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in make_records()), encoding="utf-8"
    )
    scores = {}
    for backend in ("torch", "onnx"):
        args = ["evaluate", str(gold), "--model", str(tiny_model_dir), "--json"]
        assert main([*args, "--backend", backend]) == 0
        scores[backend] = json.loads(capsys.readouterr().out)
    assert list(onnx_cache.glob("*-fp32"))  # the ONNX run really went through an export
    # the ONNX run scored the ONNX classifier's own decisions...
    from mineral_stance.evaluate import score
    from mineral_stance.labels import targets_from_records

    records = make_records()
    onnx_clf = load_classifier(tiny_model_dir, backend="onnx")
    expected = score(
        targets_from_records(records),
        onnx_clf.decide(onnx_clf.predict_proba([r["text"] for r in records])),
    )
    assert scores["onnx"] == json.loads(json.dumps(expected))
    # ...which are the torch scores unless a near-tie decision tipped (labels agree on the
    # rest: test_onnx_gives_the_torch_labels_and_probabilities_on_a_tiny_model)
    torch_clf = load_classifier(tiny_model_dir)
    if decisive_rows(
        torch_clf.predict_proba([r["text"] for r in records]), torch_clf.claim_thresholds
    ).all():
        assert scores["onnx"] == scores["torch"]


def test_predicting_with_onnx_imports_no_torch_transformers_or_spacy(tiny_model_dir, onnx_cache):
    """A fresh process with the export cached loads the ONNX classifier, labels a sentence
    and an article, and never imports torch, transformers or spaCy (seconds of start-up)."""
    import subprocess
    import sys

    onnx_backend.export_encoder(tiny_model_dir)  # cached, as on every load after the first
    script = f"""
import sys
from pathlib import Path
from mineral_stance import onnx_backend
onnx_backend.onnx_cache_root = lambda: Path({str(onnx_cache)!r})
from mineral_stance import load_classifier
clf = load_classifier({str(tiny_model_dir)!r}, threads=1, backend="onnx")
clf.predict(["The U.S. and Dr. Smith met at 10 a.m. today.", "美国应与盟友合作。"])
clf.classify_article("Title\\n\\nThe U.S. said so. It is e.g. a test.\\n")
print(sorted(m for m in ("torch", "transformers", "spacy") if m in sys.modules))
"""
    result = subprocess.run(
        [sys.executable, "-c", script], capture_output=True, text=True, check=True
    )
    assert result.stdout.strip().splitlines()[-1] == "[]"
