"""Training smoke runs, the cached-state shortcut, save/load round trips, evaluate --json."""

import json
import re
from pathlib import Path

import numpy as np
import pytest
import torch
from sklearn.metrics import f1_score

from mineral_stance.cli import main
from mineral_stance.config import TrainConfig
from mineral_stance.labels import targets_from_records
from mineral_stance.model import ModelConfig, convert_script, load_encoder
from mineral_stance.predict import StanceClassifier
from mineral_stance.train import (
    frozen_states,
    linear_probe,
    pad_states,
    run_top_layers,
    tokenize,
    tune_thresholds,
)

from .conftest import make_records


def tiny_config(base, method: str) -> TrainConfig:
    return TrainConfig(
        base_model=str(base),
        method=method,
        trained_layers=1,
        epochs=3,
        batch_size=4,
        learning_rate=5e-3,
        lora_r=4,
        lora_alpha=8,
        seed=3,
    )


def test_cached_frozen_states_reproduce_the_full_forward_pass(tiny_base_model):
    encoder, tokenizer = load_encoder(str(tiny_base_model))
    encoder.eval()
    texts = [r["text"] for r in make_records(1)]
    model_config = ModelConfig(base_model=str(tiny_base_model), text_prefix="", max_length=64)
    cached = frozen_states(encoder, tokenizer, texts, model_config, first_trained=1)
    states, mask, sentence_mask = pad_states(cached.states, cached.sentence_lengths)
    assert torch.equal(mask, sentence_mask)  # no context: every token is the sentence
    with torch.no_grad():
        top = run_top_layers(encoder, states, mask, first_trained=1)
        inputs = tokenizer(texts, padding=True, return_tensors="pt")
        full = encoder(**inputs).last_hidden_state
    assert torch.allclose(top[mask.bool()], full[inputs["attention_mask"].bool()], atol=1e-5)


@pytest.mark.parametrize(("method", "text_cues"), [("lora", True), ("top_layers", False)])
def test_fit_predict_save_load_round_trip(tiny_base_model, tmp_path, method, text_cues):
    records = make_records()
    texts = [r["text"] for r in records]
    config = tiny_config(tiny_base_model, method)
    config.text_cues = text_cues
    classifier = StanceClassifier(config)
    classifier.fit(texts, targets_from_records(records))
    classifier.claim_thresholds = [0.3, 0.6, 0.45]

    probabilities = classifier.predict_proba(texts)
    assert probabilities.claims.shape == (len(texts), 3)
    assert np.allclose(probabilities.stance.sum(1), 1, atol=1e-5)
    assert np.allclose(probabilities.voice.sum(1), 1, atol=1e-5)

    results = classifier.predict(texts[:2])
    assert results[0].stance in ("support", "oppose", "neutral", "unrelated")
    assert set(results[0].probabilities) >= {"claim_statistic", "stance_oppose", "voice_reported"}

    directory = classifier.save_pretrained(tmp_path / "model")
    files = {p.name for p in directory.iterdir()}
    assert {"config.json", "heads.safetensors"} <= files
    assert ("adapter" in files) == (method == "lora")
    assert "model.safetensors" not in files  # never the base encoder

    reloaded = StanceClassifier.from_pretrained(directory)
    assert reloaded.claim_thresholds == [0.3, 0.6, 0.45]
    assert bool(reloaded.model.config.text_cues) == text_cues
    again = reloaded.predict_proba(texts)
    assert np.allclose(again.claims, probabilities.claims, atol=1e-5)
    assert np.allclose(again.stance, probabilities.stance, atol=1e-5)


def test_heads_read_the_text_cues(tiny_base_model):
    """A cue-reading model must be given its cues, and they change its output."""
    records = make_records(1)
    texts = [r["text"] for r in records]
    config = tiny_config(tiny_base_model, "top_layers")
    config.text_cues = True
    model = StanceClassifier(config).fit(texts, targets_from_records(records)).model
    _, tokenizer = load_encoder(config.base_model)
    inputs = dict(tokenize(tokenizer, texts, "", 64))
    with torch.no_grad():
        with pytest.raises(ValueError, match="text cues"):
            model(**inputs)
        cues = model.text_cues(texts)
        assert cues.shape == (len(texts), len(model.config.text_cues))
        flipped = model(**inputs, cues=1 - cues)["claims"]
        assert not torch.allclose(model(**inputs, cues=cues)["claims"], flipped)


def test_a_simplified_script_model_reads_both_scripts_alike(tiny_base_model):
    records = make_records(1)
    config = tiny_config(tiny_base_model, "lora")
    config.script, config.text_cues = "simplified", True
    classifier = StanceClassifier(config).fit(
        [r["text"] for r in records], targets_from_records(records)
    )
    traditional = ["美國應與盟友合作，確保供應鏈安全。", "中國一直供應美國54%的鍺,53%的鎵。"]
    simplified = convert_script(traditional, "simplified")
    assert simplified == ["美国应与盟友合作，确保供应链安全。", "中国一直供应美国54%的锗,53%的镓。"]
    assert convert_script(simplified, "traditional") == traditional
    both = classifier.predict_proba(traditional + simplified)
    assert np.allclose(both.stance[:2], both.stance[2:], atol=1e-6)
    assert np.allclose(both.claims[:2], both.claims[2:], atol=1e-6)
    with pytest.raises(ValueError, match="unknown script"):
        convert_script(traditional, "cyrillic")


def test_linear_probe_weights_reproduce_logistic_regression():
    from sklearn.linear_model import LogisticRegression

    rng = np.random.default_rng(0)
    features = rng.normal(size=(60, 5))
    labels = np.array([0, 1, 3] * 20)  # class 2 absent
    weights, biases = linear_probe(features, labels, 4, c=1.0)
    logits = features @ weights.T + biases
    softmax = np.exp(logits - logits.max(1, keepdims=True))
    softmax /= softmax.sum(1, keepdims=True)
    reference = LogisticRegression(max_iter=3000, class_weight="balanced", C=1.0)
    reference = reference.fit(features, labels).predict_proba(features)
    assert np.allclose(softmax[:, [0, 1, 3]], reference, atol=1e-3)
    assert softmax[:, 2].max() < 1e-3

    binary = np.array([0, 1] * 30)
    weights, biases = linear_probe(features, binary, 2, c=1.0)
    sigmoid = 1 / (1 + np.exp(-(features @ (weights[1] - weights[0]) + biases[1] - biases[0])))
    reference = LogisticRegression(max_iter=3000, class_weight="balanced", C=1.0)
    assert np.allclose(sigmoid, reference.fit(features, binary).predict_proba(features)[:, 1])


def test_linear_probe_heads_work_before_any_fine_tuning(tiny_base_model):
    records = make_records(4)
    texts = [r["text"] for r in records]
    targets = targets_from_records(records)
    config = tiny_config(tiny_base_model, "lora")
    config.head_init, config.text_cues, config.epochs = "linear_probe", True, 0
    decided = StanceClassifier(config).fit(texts, targets).predict_proba(texts).decide([0.5] * 3)
    assert (decided.stance == targets.stance).mean() == 1.0
    assert (decided.claims == targets.claims).all()


def test_thresholds_maximise_f1_and_prefer_the_middle_of_a_plateau():
    truth = np.array([[0], [0], [1], [1]])
    # every threshold in (0.2, 0.8] separates the classes perfectly: keep 0.5
    assert tune_thresholds(np.array([[0.1], [0.2], [0.8], [0.9]]), truth) == [0.5]
    # only thresholds up to 0.3 catch the low-scored positive
    assert tune_thresholds(np.array([[0.05], [0.1], [0.3], [0.9]]), truth) == [0.3]


def test_class_offsets_trade_an_over_called_label_back_for_macro_f1():
    from mineral_stance.labels import offset_argmax
    from mineral_stance.train import tune_class_offsets

    # label 1 is the argmax of every sentence whose label-1 probability is 0.4 or more,
    # but only those at 0.6 or more are truly label 1: the argmax over-calls it
    rng = np.random.default_rng(0)
    p1 = rng.uniform(0.0, 0.8, 400)
    truth = (p1 >= 0.6).astype(int)
    probabilities = np.column_stack([1 - p1, p1])
    plain = offset_argmax(probabilities, None)
    assert plain.sum() > truth.sum()
    offsets = tune_class_offsets(probabilities, truth)
    assert offsets[0] == 0.0 and offsets[1] < 0  # label 1 made harder to call
    tuned = offset_argmax(probabilities, offsets)
    assert f1_score(truth, tuned, average="macro") > f1_score(truth, plain, average="macro")
    # well-separated labels keep offsets of 0: the argmax is already best
    assert tune_class_offsets(np.array([[0.9, 0.1], [0.2, 0.8]]), np.array([0, 1])) == [0, 0]


def test_offsets_are_saved_with_the_model_and_decide_its_labels(tiny_model_dir, tmp_path):
    classifier = StanceClassifier.from_pretrained(tiny_model_dir)
    texts = ["美国应与盟友合作。", "这并非中国最后一次诉诸经济胁迫。", "中國供應美國54%的鍺。"]
    probabilities = classifier.predict_proba(texts)
    # an offset large enough to make "oppose" every sentence's stance
    classifier.stance_offsets = [0.0, 20.0, 0.0, 0.0]
    assert [r.stance for r in classifier.predict(texts)] == ["oppose"] * 3
    reloaded = StanceClassifier.from_pretrained(classifier.save_pretrained(tmp_path / "m"))
    assert reloaded.stance_offsets == [0.0, 20.0, 0.0, 0.0]
    assert (reloaded.decide(probabilities).stance == 1).all()
    # the probabilities themselves are untouched by the offsets
    assert np.allclose(reloaded.predict_proba(texts).stance, probabilities.stance, atol=1e-6)


def test_training_is_deterministic_with_a_seed(tiny_base_model):
    records = make_records(2)
    texts = [r["text"] for r in records]
    targets = targets_from_records(records)
    first = StanceClassifier(tiny_config(tiny_base_model, "lora")).fit(texts, targets)
    second = StanceClassifier(tiny_config(tiny_base_model, "lora")).fit(texts, targets)
    assert np.allclose(first.predict_proba(texts).stance, second.predict_proba(texts).stance)


def test_training_learns_the_training_set(tiny_base_model):
    records = make_records(4)
    texts = [r["text"] for r in records]
    targets = targets_from_records(records)
    config = tiny_config(tiny_base_model, "top_layers")
    config.trained_layers, config.epochs, config.head_dropout = 2, 40, 0.0
    config.learning_rate, config.head_learning_rate = 3e-3, 1e-2
    classifier = StanceClassifier(config).fit(texts, targets)
    decided = classifier.predict_proba(texts).decide([0.5, 0.5, 0.5])
    assert (decided.stance == targets.stance).mean() >= 0.8


def test_unknown_method_is_refused(tiny_base_model):
    records = make_records(1)
    with pytest.raises(ValueError, match="unknown training method"):
        StanceClassifier(tiny_config(tiny_base_model, "everything")).fit(
            [r["text"] for r in records], targets_from_records(records)
        )


def test_loading_a_directory_that_is_not_a_model_fails_clearly(tmp_path):
    with pytest.raises(ValueError, match="not a mineral_stance model"):
        StanceClassifier.from_pretrained(tmp_path)


def test_evaluate_json_prints_the_documented_object(tiny_base_model, tmp_path, capsys):
    records = make_records()
    classifier = StanceClassifier(tiny_config(tiny_base_model, "lora"))
    classifier.fit([r["text"] for r in records], targets_from_records(records))
    model_dir = classifier.save_pretrained(tmp_path / "model")
    gold = tmp_path / "gold.jsonl"
    gold.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in records), "utf-8")

    assert main(["evaluate", str(gold), "--model", str(model_dir), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["n"] == len(records)
    assert set(result["claim_types"]["per_label"]) == {
        "threat_framing",
        "policy_recommendation",
        "statistic",
    }
    for values in result["claim_types"]["per_label"].values():
        assert set(values) == {"precision", "recall", "f1", "support"}
    assert 0 <= result["stance"]["macro_f1"] <= 1 and 0 <= result["stance"]["accuracy"] <= 1
    assert set(result["stance"]["per_label"]) == {"support", "oppose", "neutral", "unrelated"}
    assert 0 <= result["voice"]["macro_f1"] <= 1 and "accuracy" in result["voice"]
    assert not list(tmp_path.glob("*.html"))  # no report unless asked for
    report = tmp_path / "reports" / "eval.html"
    report.parent.mkdir()
    assert main(["evaluate", str(gold), "--model", str(model_dir), "--html", str(report)]) == 0
    page = report.read_text("utf-8")
    assert page.count("<img") == 2
    assert len(re.findall(r"<td>\[[01]\.\d{3}, [01]\.\d{3}\]</td>", page)) == 3  # one per task
    shown = int(re.search(r"Misclassified sentences \((\d+)\)", page).group(1))
    assert page.count('<td lang="zh">') == shown  # one row per misclassified sentence


def write_gold_and_config(tmp_path, tiny_base_model, method: str, epochs: int) -> tuple[str, str]:
    gold = tmp_path / "gold.jsonl"
    gold.write_text(
        "\n".join(json.dumps(r, ensure_ascii=False) for r in make_records(3)) + "\n",
        encoding="utf-8",
    )
    config = tmp_path / "tiny.toml"
    config.write_text(
        f'[train]\nbase_model = "{tiny_base_model}"\nmethod = "{method}"\ntrained_layers = 1\n'
        f'head_init = "linear_probe"\ntext_cues = true\nscript = "simplified"\n'
        f"epochs = {epochs}\nbatch_size = 4\nlora_r = 4\n",
        encoding="utf-8",
    )
    return str(gold), str(config)


def test_train_command_writes_a_loadable_model_with_card_and_metrics(tiny_base_model, tmp_path):
    gold, config = write_gold_and_config(tmp_path, tiny_base_model, "lora", epochs=1)
    out = tmp_path / "trained"
    assert main(["train", "--config", config, "--gold", gold, "-o", str(out)]) == 0
    card = (out / "README.md").read_text(encoding="utf-8")
    assert "from the linear probe (LP-FT)" in card and "simplified" in card
    assert f"mineral-stance train --config {config}" in card
    metrics = json.loads((out / "cv_metrics.json").read_text(encoding="utf-8"))
    assert 0.0 <= metrics["cross_validation"]["stance"]["macro_f1"] <= 1.0
    # three documents without corpus metadata: too few outlet groups for five folds
    assert metrics["split"] == "leave one document out"
    assert set(metrics["calibration"]["ece_after"]) == {"claims", "stance", "voice"}
    assert "| stance |" in (out / "calibration.md").read_text(encoding="utf-8")
    classifier = StanceClassifier.from_pretrained(out)
    assert classifier.model.config.script == "simplified"
    assert classifier.temperatures == metrics["calibration"]["temperatures"]
    assert len(classifier.predict(["美国应与盟友合作。"])) == 1


def test_train_one_fold_scores_only_the_first_held_out_fold(tiny_base_model, tmp_path):
    gold, config = write_gold_and_config(tmp_path, tiny_base_model, "lora", epochs=1)
    out = tmp_path / "one-fold"
    assert main(["train", "--config", config, "--gold", gold, "-o", str(out), "--one-fold"]) == 0
    metrics = json.loads((out / "cv_metrics.json").read_text(encoding="utf-8"))
    first_document = sum(1 for r in make_records(3) if r["doc_id"] == "doc0")
    assert metrics["cross_validation"]["n"] == first_document  # scored on one fold only
    assert metrics["split"].startswith("the first of the")
    assert "nothing tuned on them" in (out / "README.md").read_text(encoding="utf-8")
    # the model itself is trained on every sentence
    assert StanceClassifier.from_pretrained(out).model.config.training["sentences"] == len(make_records(3))


def test_compare_command_writes_markdown_json_and_plots(tiny_base_model, tmp_path, capsys):
    gold, config = write_gold_and_config(tmp_path, tiny_base_model, "frozen", epochs=0)
    out = tmp_path / "reports"
    args = ["compare", config, "--gold", gold, "-o", str(out), "--only", "rules", "linear probe"]
    assert main(args) == 0
    results = json.loads((out / "comparison.json").read_text(encoding="utf-8"))["systems"]
    assert set(results) == {"rules", "linear probe (tiny)"}
    markdown = (out / "comparison.md").read_text(encoding="utf-8")
    assert "| linear probe (tiny) |" in markdown and "## Stance confusion: rules" in markdown
    assert (out / "comparison.png").stat().st_size > 0
    ece = results["linear probe (tiny)"]["calibration_error"]
    assert set(ece["before"]) == {"claims", "stance", "voice"}
    errors = (out / "errors.md").read_text(encoding="utf-8")
    assert errors.startswith("# Errors of ") and "## Stance" in errors
    assert "| linear probe (tiny) | " in markdown and " → " in markdown  # time and ECE table
    # a second run adds its systems to the table
    assert main(["compare", config, "--gold", gold, "-o", str(out), "--only", "majority",
                 "--add"]) == 0
    again = json.loads((out / "comparison.json").read_text(encoding="utf-8"))
    assert set(again["systems"]) == {"rules", "linear probe (tiny)", "majority"}
    assert len(again["commands"]) == 2
    # train reuses the comparison's cross-validation of the same config: same card metrics
    held_out = out / "held_out" / "tiny.npz"
    assert held_out.exists()
    model = tmp_path / "from-held-out"
    assert main(["train", "--config", config, "--gold", gold, "-o", str(model),
                 "--held-out", str(held_out)]) == 0
    trained = json.loads((model / "cv_metrics.json").read_text(encoding="utf-8"))
    compared = again["systems"]["linear probe (tiny)"]["metrics"]
    for task in ("claim_types", "stance", "voice"):
        assert trained["cross_validation"][task]["macro_f1"] == compared[task]["macro_f1"]
    assert "read from" in (model / "README.md").read_text(encoding="utf-8")
    # ... and refuses it for another config
    Path(config).write_text(Path(config).read_text(encoding="utf-8") + "probe_c = 2.0\n",
                            encoding="utf-8")
    assert main(["train", "--config", config, "--gold", gold, "-o", str(tmp_path / "other"),
                 "--held-out", str(held_out)]) != 0
    assert "config_sha256" in capsys.readouterr().err and not (tmp_path / "other").exists()


def test_a_frozen_encoder_model_saves_only_heads_and_config(tiny_base_model, tmp_path):
    records = make_records(2)
    texts = [r["text"] for r in records]
    config = tiny_config(tiny_base_model, "frozen")
    config.head_init, config.epochs = "linear_probe", 0
    classifier = StanceClassifier(config).fit(texts, targets_from_records(records))
    lora = tiny_config(tiny_base_model, "lora")
    lora.epochs = 1
    StanceClassifier(lora).fit(texts, targets_from_records(records)).save_pretrained(
        tmp_path / "probe"
    )
    directory = classifier.save_pretrained(tmp_path / "probe")  # over the LoRA model
    assert {p.name for p in directory.iterdir()} == {"config.json", "heads.safetensors"}
    again = StanceClassifier.from_pretrained(directory).predict_proba(texts)
    assert np.allclose(again.stance, classifier.predict_proba(texts).stance, atol=1e-5)


def test_predict_batches_hold_texts_of_similar_token_count(tiny_base_model):
    from mineral_stance.context import token_sorted_batches

    _, tokenizer = load_encoder(str(tiny_base_model))
    texts = [
        "短句。",
        "这是一个长得多的句子，有很多很多的字，来自关键矿产的评论文章。",
        "中等长度的句子。",
    ] * 3
    seen, widths = [], []
    batches = token_sorted_batches(tokenizer, texts, None, "", 128, "none", 0, 2)
    for positions, inputs in batches:
        input_ids, attention_mask = inputs["input_ids"], inputs["attention_mask"]
        assert (inputs["sentence_mask"] == attention_mask).all()  # no context: all sentence
        assert input_ids.shape == attention_mask.shape
        widths.append(input_ids.shape[1])
        for row, i in enumerate(positions):  # the row is text i, tokenized, then padding
            ids = tokenizer(texts[i], truncation=True, max_length=128)["input_ids"]
            assert list(input_ids[row, : len(ids)]) == ids and attention_mask[row].sum() == len(ids)
        seen.extend(positions)
    assert sorted(seen) == list(range(len(texts)))
    assert widths == sorted(widths)  # shortest first: little padding in any batch
