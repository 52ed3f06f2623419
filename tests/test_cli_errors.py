"""Errors the user can cause: one line `error: …` naming the file, and the README's exit codes.

0 = every input read; 1 = an input could not be read or the output written;
2 = usage error (nothing done); 130 = interrupted.
"""

import json

import pytest

from mineral_stance.cli import main

ARTICLE = "美国关键矿产联盟\n\n美国应与盟友合作，确保供应链安全。\n"


def run(args, capsys):
    status = main([str(a) for a in args])
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def error_lines(err):
    return [line for line in err.splitlines() if line.startswith("error:")]


@pytest.fixture
def article(tmp_path):
    path = tmp_path / "a.txt"
    path.write_text(ARTICLE, encoding="utf-8")
    return path


@pytest.fixture
def no_model(monkeypatch):
    """Fails the test if a command loads a model: refusals come before that."""

    def load(*args, **kwargs):
        raise AssertionError("the model was loaded before the refusal")

    monkeypatch.setattr("mineral_stance.predict.load_classifier", load)


# --- 7. an output that is an input or another output ---------------------------------


def test_summary_and_output_the_same_file_is_refused(article, tmp_path, capsys, no_model):
    out = tmp_path / "x.jsonl"
    status, _, err = run(["classify", article, "-o", out, "--summary", out], capsys)
    assert status == 2 and error_lines(err) == [f"error: {out} is given as two different outputs"]
    assert not out.exists()


def test_output_that_is_an_input_is_refused(tmp_path, capsys, no_model):
    article = tmp_path / "articles.jsonl"
    article.write_text(json.dumps({"text": ARTICLE}, ensure_ascii=False) + "\n", "utf-8")
    before = article.read_bytes()
    for args in (["-o", article, "--overwrite"], ["-o", tmp_path / "o.jsonl", "--summary", article]):
        status, _, err = run(["classify", article, *args], capsys)
        assert status == 2 and error_lines(err) == [
            f"error: {article} is an input; choose another output file"
        ]
    assert article.read_bytes() == before


def test_evaluate_refuses_to_write_its_report_over_the_gold_file(tmp_path, capsys, no_model):
    gold = tmp_path / "g.jsonl"
    record = {"id": "d:0", "doc_id": "d", "text": "一句话。", "claim_types": [],
              "stance": "unrelated", "voice": "author"}  # fmt: skip
    gold.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    before = gold.read_bytes()
    status, _, err = run(["evaluate", gold, "--html", gold], capsys)
    assert status == 2 and f"{gold} is an input" in err
    assert gold.read_bytes() == before


def test_segment_refuses_to_write_over_its_input(article, capsys):
    before = article.read_bytes()
    status, _, err = run(["segment", article, "-o", article], capsys)
    assert status == 2 and f"{article} is an input" in err
    assert article.read_bytes() == before


def test_existing_summary_is_not_replaced_without_resume_or_overwrite(
    article, tmp_path, capsys, no_model
):
    summary = tmp_path / "s.csv"
    summary.write_text("precious\n", encoding="utf-8")
    status, _, err = run(["classify", article, "-o", tmp_path / "o.jsonl", "--summary", summary],
                         capsys)  # fmt: skip
    assert status == 2 and f"{summary} exists" in err
    assert summary.read_text("utf-8") == "precious\n"


# --- 8. numeric options are checked before the model loads --------------------------


@pytest.mark.parametrize(
    ("option", "value", "message"),
    [
        ("--batch-size", "-1", "argument --batch-size: must be at least 1, got -1"),
        ("--batch-size", "0", "argument --batch-size: must be at least 1, got 0"),
        ("--batch-size", "ten", "argument --batch-size: expected a whole number, got 'ten'"),
        ("--threads", "-1", "argument --threads: must be at least 1, got -1"),
        ("--threads", "0", "argument --threads: must be at least 1, got 0"),
    ],
)
def test_bad_numeric_options_are_usage_errors(article, capsys, no_model, option, value, message):
    with pytest.raises(SystemExit) as exit_:
        main(["classify", str(article), option, value])
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == f"error: {message} (see mineral-stance classify --help)\n"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (["export", "a.txt", "--format", "doccano", "-o", "t.jsonl", "--threads", "0"],
         "argument --threads: must be at least 1, got 0"),
        (["suggest", "a.txt", "-o", "s.jsonl", "--threads", "-2"],
         "argument --threads: must be at least 1, got -2"),
        (["suggest", "a.txt", "-o", "s.jsonl", "-n", "0"], "argument -n: must be at least 1, got 0"),
        (["compare", "--folds", "1"],
         "argument --folds: must be 0 (leave one document out) or at least 2, got 1"),
        (["train", "--folds", "-5"],
         "argument --folds: must be 0 (leave one document out) or at least 2, got -5"),
    ],
)
def test_every_command_checks_its_numbers_before_doing_anything(arguments, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        main(arguments)
    err = capsys.readouterr().err
    assert exit_.value.code == 2
    assert err == f"error: {message} (see mineral-stance {arguments[0]} --help)\n"


def test_load_classifier_refuses_bad_thread_counts():
    from mineral_stance.predict import load_classifier

    for threads in (-1, 0, 1.5, True):
        with pytest.raises(ValueError, match="threads must be a whole number"):
            load_classifier(threads=threads)


# --- 15. failures the user can cause: one line, right exit code ----------------------


def test_missing_model_is_one_line_naming_it(article, tmp_path, capsys):
    missing = tmp_path / "no-model"
    status, out, err = run(["classify", article, "--model", missing, "-q"], capsys)
    assert status == 2 and out == ""
    assert err == f"error: {missing}: no such model directory\n"


def test_evaluate_with_a_missing_model_is_one_line(tmp_path, capsys):
    gold = tmp_path / "g.jsonl"
    record = {"id": "d:0", "doc_id": "d", "text": "一句话。", "claim_types": [],
              "stance": "unrelated", "voice": "author"}  # fmt: skip
    gold.write_text(json.dumps(record, ensure_ascii=False) + "\n", encoding="utf-8")
    status, _, err = run(["evaluate", gold, "--model", tmp_path / "nope"], capsys)
    assert status == 2 and err == f"error: {tmp_path / 'nope'}: no such model directory\n"


def test_ctrl_c_during_classification_exits_130_and_keeps_finished_articles(
    tmp_path, capsys, monkeypatch
):
    from .test_batch_output import FakeClassifier

    class Interrupting(FakeClassifier):
        calls = 0

        def classify_unit_groups(self, groups, min_confidence=None):
            Interrupting.calls += 1
            if Interrupting.calls == 2:
                raise KeyboardInterrupt
            return super().classify_unit_groups(groups)

    monkeypatch.setattr("mineral_stance.batch.SENTENCES_PER_CHUNK", 1)  # one article a call
    monkeypatch.setattr("mineral_stance.predict.load_classifier", lambda *a, **k: Interrupting())
    for name in ("a", "b", "c"):
        (tmp_path / f"{name}.txt").write_text(ARTICLE, encoding="utf-8")
    out = tmp_path / "out.jsonl"
    status, _, err = run(["classify", *sorted(tmp_path.glob("*.txt")), "-o", out, "-q"], capsys)
    assert status == 130
    assert error_lines(err) == [
        f"error: interrupted; 1 finished article(s) kept in {out}; "
        "run the same command with --resume to finish"
    ]
    assert {json.loads(line)["doc_id"] for line in out.read_text("utf-8").splitlines()} == {"a"}


def test_ctrl_c_while_loading_exits_130(article, capsys, monkeypatch):
    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr("mineral_stance.predict.load_classifier", interrupted)
    status, _, err = run(["classify", article, "-q"], capsys)
    assert status == 130 and err == "error: interrupted\n"


def test_validate_a_missing_file_and_deeply_nested_json(tmp_path, capsys):
    deep = tmp_path / "deep.jsonl"
    deep.write_text("[" * 100_000 + "\n", encoding="utf-8")
    status, out, err = run(["validate", deep, tmp_path / "missing.jsonl"], capsys)
    assert status == 1 and "Traceback" not in err
    assert f"{deep}:1: bad JSON" in out
    assert f"{tmp_path / 'missing.jsonl'}:0: cannot read file" in out


def test_train_with_a_missing_config_is_one_line(tmp_path, capsys):
    missing = tmp_path / "none.toml"
    status, _, err = run(["train", "--config", missing], capsys)
    assert status == 1 and err == f"error: {missing}: No such file or directory\n"


def test_evaluate_with_a_missing_or_invalid_gold_file_exits_1(tmp_path, capsys, no_model):
    missing = tmp_path / "missing.jsonl"
    status, _, err = run(["evaluate", missing], capsys)
    assert status == 1 and error_lines(err) == [f"error: {missing} is not a valid annotation file:"]
    assert f"{missing}:0: cannot read file" in err and "Traceback" not in err
