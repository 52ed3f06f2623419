"""Nothing lost, nothing duplicated: the output of `classify` under failures and reruns.

Most tests put a fake classifier behind the CLI (the model is not what is
tested here, and the fault-injection test runs the batch dozens of times); a
few use the tiny trained model to show the real path behaves the same.
"""

import json
import random
import threading

import pandas as pd
import pytest
from filelock import FileLock

import mineral_stance.batch_output as batch_output
from mineral_stance.batch_output import lock_path, progress_path
from mineral_stance.cli import main

ARTICLES = {
    "a.txt": "美国关键矿产联盟\n\n美国应与盟友合作，确保供应链安全。中国生产全球约60%的稀土。\n\n图源:新华社\n",
    "b.txt": "標題\n中國一直供應美國54%的鍺,53%的鎵。專家表示,美國必須與盟友合作。\n",
    "c.md": "The Minerals Security Partnership was launched in 2022. It has 14 members.\n\nThe U.S. should act.\n",
    "d.txt": "稀土\n中国控制全球大部分稀土加工。这是一个风险。美国必须行动。\n",
}
JSONL = [
    {"id": "j1", "text": "美国应与盟友合作。中国生产全球约60%的稀土。"},
    {"id": "j2", "text": "The alliance must diversify supply. Prices rose 20 percent."},
    {"id": "j3", "text": "这并非中国最后一次诉诸经济胁迫。美国近期与澳大利亚达成协议。"},
]


class FakeClassifier:
    """Labels every unit the same way, instantly; the records have the real columns."""

    batch_size = 64

    def classify_unit_groups(self, groups, min_confidence=None):
        return [
            [
                {
                    **unit.to_record(),
                    "claim_types": [],
                    "stance": "neutral",
                    "voice": "author",
                    "truncated": False,
                    "p_stance_neutral": 0.9,
                }
                for unit in units
            ]
            for units in groups
        ]


@pytest.fixture
def fake_model(monkeypatch):
    loaded = []

    def load(directory=None, threads=None, backend="torch", precision=None):
        if directory == "missing-model":
            raise ValueError("missing-model: no such model directory")
        loaded.append(directory)
        return FakeClassifier()

    monkeypatch.setattr("mineral_stance.predict.load_classifier", load)
    return loaded


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "articles"
    root.mkdir()
    for name, text in ARTICLES.items():
        (root / name).write_text(text, encoding="utf-8")
    (root / "more.jsonl").write_text(
        "".join(json.dumps(r, ensure_ascii=False) + "\n" for r in JSONL), encoding="utf-8"
    )
    return root


def classify(*args, capsys=None):
    status = main(["classify", *map(str, args), "-q"])
    err = capsys.readouterr().err if capsys is not None else ""
    return status, err


def doc_ids(path):
    return [json.loads(line)["doc_id"] for line in path.read_text("utf-8").splitlines()]


# --- 1. --overwrite never deletes before the new output exists -----------------------


def test_overwrite_with_a_bad_model_keeps_the_old_output(folder, tmp_path, fake_model, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text('{"doc_id": "old"}\n', encoding="utf-8")
    status, err = classify(folder, "-o", out, "--overwrite", "--model", "missing-model",
                           capsys=capsys)  # fmt: skip
    assert status == 2 and "error: missing-model" in err
    assert out.read_text("utf-8") == '{"doc_id": "old"}\n'
    assert sorted(p.name for p in tmp_path.iterdir()) == [".out.jsonl.lock", "articles", "out.jsonl"]


def test_overwrite_with_a_mistyped_input_keeps_the_old_output(folder, tmp_path, fake_model, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text('{"doc_id": "old"}\n', encoding="utf-8")
    status, err = classify(folder / "a.txt", tmp_path / "typo.txt", "-o", out, "--overwrite",
                           capsys=capsys)  # fmt: skip
    assert status == 2 and "typo.txt: no such file or directory" in err
    assert out.read_text("utf-8") == '{"doc_id": "old"}\n'
    assert fake_model == []  # refused before the model loaded


def test_overwrite_replaces_the_output_only_at_the_end(folder, tmp_path, fake_model, monkeypatch):
    out = tmp_path / "out.jsonl"
    out.write_text('{"doc_id": "old"}\n', encoding="utf-8")
    seen = []
    real_write = batch_output.write_bytes

    def watch(handle, data):
        seen.append(out.read_text("utf-8"))  # what a reader of out sees mid-run
        real_write(handle, data)

    monkeypatch.setattr(batch_output, "write_bytes", watch)
    assert classify(folder, "-o", out, "--overwrite") == (0, "")
    assert set(seen) == {'{"doc_id": "old"}\n'}
    assert "old" not in doc_ids(out) and "a" in doc_ids(out)
    assert not (tmp_path / ".out.overwrite.jsonl").exists()


def test_overwrite_interrupted_keeps_the_old_output(folder, tmp_path, fake_model, monkeypatch,
                                                    capsys):  # fmt: skip
    out = tmp_path / "out.jsonl"
    out.write_text('{"doc_id": "old"}\n', encoding="utf-8")
    calls = []

    def interrupt(handle, data):
        calls.append(1)
        if len(calls) > 3:
            raise KeyboardInterrupt
        handle.write(data)

    monkeypatch.setattr(batch_output, "write_bytes", interrupt)
    status, err = classify(folder, "-o", out, "--overwrite", capsys=capsys)
    assert status == 130 and "error: interrupted; " in err and "left unchanged" in err
    assert out.read_text("utf-8") == '{"doc_id": "old"}\n'
    assert not (tmp_path / ".out.overwrite.jsonl").exists()


def test_a_run_that_classifies_nothing_leaves_no_empty_file(tmp_path, fake_model, capsys):
    (tmp_path / "empty.txt").write_text("", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    status, err = classify(tmp_path / "empty.txt", "-o", out, capsys=capsys)
    assert status == 1 and "empty.txt: the file is empty" in err
    assert not out.exists() and not progress_path(out).exists()


# --- 2. one writer per output ----------------------------------------------------------


def test_a_second_run_on_a_locked_output_is_refused_before_the_model_loads(
    folder, tmp_path, fake_model, capsys
):
    out = tmp_path / "out.jsonl"
    with FileLock(str(lock_path(out)), timeout=0):  # another run holds the output
        status, err = classify(folder, "-o", out, capsys=capsys)
    assert status == 2 and "being written by another mineral-stance run" in err
    assert not out.exists() and fake_model == []


def test_two_runs_at_once_write_every_record_exactly_once(folder, tmp_path, fake_model, monkeypatch):
    """The first run is paused mid-write while the second starts on the same output."""
    out = tmp_path / "out.jsonl"
    paused, resume = threading.Event(), threading.Event()
    real_write = batch_output.write_bytes

    def pause_once(handle, data):
        if not paused.is_set():
            paused.set()
            resume.wait(10)
        real_write(handle, data)

    monkeypatch.setattr(batch_output, "write_bytes", pause_once)
    results = {}
    first = threading.Thread(target=lambda: results.setdefault("first", classify(folder, "-o", out)))
    first.start()
    assert paused.wait(10)
    results["second"] = classify(folder, "-o", out)
    resume.set()
    first.join(10)
    assert results["first"][0] == 0 and results["second"][0] == 2
    ids = doc_ids(out)
    assert len(ids) == len(set(zip(ids, range(len(ids)), strict=True)))
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert len({(r["doc_id"], r["index"]) for r in records}) == len(records)


# --- 3. resume redoes any article not marked complete ---------------------------------


def test_resume_after_a_cut_at_a_line_end_inside_an_article(folder, tmp_path, fake_model):
    out = tmp_path / "out.jsonl"
    assert classify(folder, "-o", out)[0] == 0
    clean = out.read_bytes()
    # an interrupted run: the progress journal vouches for two articles, the output
    # holds a third one cut exactly at a line end (the old repair kept it as finished)
    lines = clean.split(b"\n")
    first_two = sum(1 for i in doc_ids(out) if i in ("a", "b"))
    end = len(b"\n".join(lines[:first_two])) + 1
    out.write_bytes(clean[: end + len(lines[first_two]) + 1])
    progress_path(out).write_text(
        json.dumps({"doc_id": None, "end": 0}) + "\n" + json.dumps({"doc_id": "b", "end": end}) + "\n"
    )
    assert classify(folder, "-o", out, "--resume")[0] == 0
    assert out.read_bytes() == clean
    assert not progress_path(out).exists()


def test_resume_after_a_cut_before_a_records_doc_id(folder, tmp_path, fake_model):
    out = tmp_path / "out.jsonl"
    assert classify(folder, "-o", out)[0] == 0
    clean = out.read_bytes()
    end = clean.index(b"\n") + 1  # article "a" has several lines; keep one and a stub
    out.write_bytes(clean[:end] + b'{"id": "a:00')
    progress_path(out).write_text(json.dumps({"doc_id": None, "end": 0}) + "\n")
    assert classify(folder, "-o", out, "--resume")[0] == 0
    assert out.read_bytes() == clean


# --- 4. a leftover journal is never merged into a plain run ---------------------------


def test_a_leftover_parquet_journal_is_not_merged_into_a_plain_run(
    folder, tmp_path, fake_model, capsys
):
    out = tmp_path / "out.parquet"
    journal = tmp_path / "out.parquet.partial.jsonl"
    journal.write_text('{"doc_id": "a", "index": 0}\n', encoding="utf-8")
    status, err = classify(folder, "-o", out, capsys=capsys)
    assert status == 2 and "left from an interrupted run" in err and "--resume" in err
    assert not out.exists()
    assert classify(folder, "-o", out, "--overwrite")[0] == 0
    table = pd.read_parquet(out)
    assert len(table) == len(table.drop_duplicates(["doc_id", "index"]))
    assert not journal.exists()


# --- 5. the run's own files are never inputs ------------------------------------------


def test_output_inside_an_input_folder_is_not_read_back(folder, fake_model, capsys):
    out = folder / "labels.jsonl"
    assert classify(folder, "-o", out)[0] == 0
    first = out.read_bytes()
    (folder / "e.txt").write_text("美国应与盟友合作。\n", encoding="utf-8")
    status, err = classify(folder, "-o", out, "--resume", capsys=capsys)
    assert status == 0 and "1 article(s) done, 7 skipped, 0 failed" in err
    assert out.read_bytes().startswith(first)
    assert not any(i.startswith("labels") for i in doc_ids(out))


def test_parquet_journal_inside_an_input_folder_is_not_read(folder, fake_model, capsys):
    out = folder / "labels.parquet"
    (folder / "labels.parquet.partial.jsonl").write_text('{"doc_id": "a", "index": 0}\n', "utf-8")
    status, err = classify(folder, "-o", out, "--resume", capsys=capsys)
    assert status == 0 and "6 article(s) done, 1 skipped" in err
    assert not {"labels.parquet.partial:1"} & set(pd.read_parquet(out)["doc_id"])


# --- 6. doc_ids stay the same whatever is added ---------------------------------------


def test_adding_a_file_with_the_same_name_does_not_rename_on_resume(tmp_path, fake_model, capsys):
    root = tmp_path / "news"
    (root / "a").mkdir(parents=True)
    (root / "a" / "report.txt").write_text(ARTICLES["a.txt"], encoding="utf-8")
    out = tmp_path / "out.jsonl"
    assert classify(root, "-o", out)[0] == 0
    (root / "b").mkdir()
    (root / "b" / "report.txt").write_text(ARTICLES["b.txt"], encoding="utf-8")
    status, err = classify(root, "-o", out, "--resume", capsys=capsys)
    assert status == 0 and "1 article(s) done, 1 skipped" in err
    assert list(dict.fromkeys(doc_ids(out))) == ["a__report", "b__report"]


# --- fault injection: kill anywhere, resume gives exactly a clean run -----------------


class Killed(BaseException):
    """kill -9: no cleanup code runs (an Exception handler would)."""


def kill_after(budget):
    written = [0]

    def write(handle, data):
        room = budget - written[0]
        if room < len(data):
            handle.write(data[: max(room, 0)])
            handle.flush()
            raise Killed
        handle.write(data)
        written[0] += len(data)

    return write


def every_write(monkeypatch, run):
    """The bytes of every write of a run, in order (progress journal and output alike)."""
    writes = []
    real = batch_output.write_bytes

    def record(handle, data):
        writes.append(data)
        real(handle, data)

    monkeypatch.setattr(batch_output, "write_bytes", record)
    run()
    monkeypatch.setattr(batch_output, "write_bytes", real)
    return writes


@pytest.mark.parametrize(("suffix", "points"), [(".jsonl", 24), (".csv", 8), (".parquet", 8)])
def test_killed_anywhere_then_resumed_equals_a_clean_run(
    folder, tmp_path, fake_model, monkeypatch, suffix, points
):
    clean = tmp_path / f"clean{suffix}"
    writes = every_write(monkeypatch, lambda: classify(folder, "-o", clean))
    total = sum(map(len, writes))
    boundaries = [sum(map(len, writes[:i])) for i in range(len(writes) + 1)]
    rng = random.Random(20261124)
    budgets = sorted(rng.sample(range(total), points))
    # writes alternate: progress base, article, its mark, article, its mark, ...
    budgets += [boundaries[2], boundaries[4], boundaries[-2]]  # article written, mark not yet
    first_article, start = writes[1], boundaries[1]
    line_end = first_article.index(b"\n") + 1
    if suffix == ".csv":
        line_end = first_article.index(b"\n", line_end) + 1  # after the header and one row
    budgets.append(start + line_end)  # a cut exactly at a line end inside an article
    if suffix != ".csv":  # the output (or the Parquet journal) is JSON Lines
        budgets.append(start + first_article.index(b'"doc_id"', line_end))  # before a doc_id
    for number, budget in enumerate(budgets):
        out = tmp_path / f"run{number}{suffix}"
        monkeypatch.setattr(batch_output, "write_bytes", kill_after(budget))
        with pytest.raises(Killed):
            classify(folder, "-o", out)
        monkeypatch.setattr(batch_output, "write_bytes", kill_after(10**9))
        status = classify(folder, "-o", out, "--resume")[0]
        assert status == 0, f"kill after {budget} of {total} bytes"
        if suffix == ".parquet":
            pd.testing.assert_frame_equal(pd.read_parquet(out), pd.read_parquet(clean))
        else:
            assert out.read_bytes() == clean.read_bytes(), f"kill after {budget} of {total} bytes"


# --- disk full, read-only output -------------------------------------------------------


def test_disk_full_is_one_error_line_and_resume_finishes(folder, tmp_path, fake_model, monkeypatch,
                                                         capsys):  # fmt: skip
    import errno

    out = tmp_path / "out.jsonl"
    clean = tmp_path / "clean.jsonl"
    assert classify(folder, "-o", clean)[0] == 0
    calls = []

    def full_disk(handle, data):
        calls.append(1)
        if len(calls) == 4:
            handle.write(data[:7])
            raise OSError(errno.ENOSPC, "No space left on device")
        handle.write(data)

    monkeypatch.setattr(batch_output, "write_bytes", full_disk)
    status, err = classify(folder, "-o", out, capsys=capsys)
    errors = [line for line in err.splitlines() if line.startswith("error:")]
    assert status == 1 and len(errors) == 1
    assert errors[0].startswith(f"error: {out}: cannot write: No space left on device")
    assert "--resume" in errors[0] and "Traceback" not in err
    monkeypatch.undo()
    monkeypatch.setattr("mineral_stance.predict.load_classifier", lambda *a, **k: FakeClassifier())
    assert classify(folder, "-o", out, "--resume")[0] == 0
    assert out.read_bytes() == clean.read_bytes()


def test_output_that_cannot_be_written_is_one_error_line(folder, tmp_path, fake_model, capsys):
    blocker = tmp_path / "not-a-folder"
    blocker.write_text("a file where a folder should be", encoding="utf-8")
    status, err = classify(folder, "-o", blocker / "out.jsonl", capsys=capsys)
    assert status == 1 and err.startswith(f"error: {blocker}") and "Traceback" not in err
    assert fake_model == []


def test_read_only_output_folder_is_one_error_line(folder, tmp_path, fake_model, monkeypatch,
                                                   capsys):  # fmt: skip
    """A read-only folder refuses the lock file (simulated: tests may run as root)."""
    import errno

    def read_only(self, *args, **kwargs):
        raise PermissionError(errno.EROFS, "Read-only file system", str(lock_path(out)))

    out = tmp_path / "out.jsonl"
    monkeypatch.setattr(FileLock, "acquire", read_only)
    status, err = classify(folder, "-o", out, capsys=capsys)
    assert status == 1
    assert err == f"error: {lock_path(out)}: Read-only file system\n"
    assert fake_model == []
