"""Command-line hygiene: checks before torch loads, quiet pipes, --version, safe defaults."""

import json
import shutil
import subprocess
import sys

import pytest

from mineral_stance import __version__
from mineral_stance.annotations import file_sha256
from mineral_stance.cli import build_parser, main
from mineral_stance.config import GOLD_PATH, SHIPPED_MODEL_DIR
from mineral_stance.corpus import seed_paths

from .conftest import make_records


def run(args, capsys):
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.mark.parametrize(
    "args",
    [
        ["classify", "seeds", "-o", "labels.xlsx"],
        ["classify", "seeds", "--batch-size", "0"],
        ["export", "--format", "label-studio", "seeds", "-o", "tasks.jsonl"],
        ["suggest", "seeds", "-o", "to_label.csv"],
        ["evaluate", str(GOLD_PATH), "--html", "report.pdf"],
    ],
)
def test_bad_arguments_are_reported_before_torch_loads(args):
    code = (
        "import sys\nfrom mineral_stance.cli import main\n"
        f"try:\n    status = main({args!r})\n"
        "except SystemExit as stop:  # argparse's own usage errors\n    status = stop.code\n"
        "print(status, 'torch' in sys.modules)\n"
    )
    done = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert done.stdout.split() == ["2", "False"], done.stderr
    assert done.stderr.startswith("error: ")


def test_version(capsys):
    with pytest.raises(SystemExit) as exited:
        main(["--version"])
    assert exited.value.code == 0
    assert capsys.readouterr().out.strip() == f"mineral-stance {__version__}"


def test_a_closed_pipe_ends_quietly():
    seeds = " ".join(str(p) for p in seed_paths())
    done = subprocess.run(
        f"{sys.executable} -m mineral_stance.cli segment {seeds} | head -n 1",
        shell=True,
        capture_output=True,
        text=True,
    )
    assert json.loads(done.stdout)["index"] == 0
    assert done.stderr == ""


def test_segment_reads_html_like_classify(tmp_path, capsys):
    page = tmp_path / "page.html"
    page.write_text(
        "<html><head><title>t</title><script>var x = 1;</script></head><body>"
        "<h1>美国关键矿产联盟</h1><p>美国应与盟友合作。中国生产全球约60%的稀土。</p></body></html>",
        encoding="utf-8",
    )
    status, out, _ = run(["segment", str(page)], capsys)
    units = [json.loads(line) for line in out.splitlines()]
    assert status == 0
    assert [u["text"] for u in units] == [
        "美国关键矿产联盟",
        "美国应与盟友合作。",
        "中国生产全球约60%的稀土。",
    ]
    assert not any("<" in u["text"] or "var x" in u["text"] for u in units)


def test_train_does_not_overwrite_the_shipped_model_by_default(tmp_path, capsys):
    parser = build_parser()
    args = parser.parse_args(["train"])
    assert args.output is None  # the default is models/<config name>, not the shipped model
    status, _, err = run(["train", "-o", str(SHIPPED_MODEL_DIR)], capsys)
    assert status == 2 and "shipped model" in err
    existing = tmp_path / "model"
    existing.mkdir()
    (existing / "config.json").write_text("{}", encoding="utf-8")
    status, _, err = run(["train", "-o", str(existing)], capsys)
    assert status == 2 and "exists" in err


def test_train_and_compare_options_are_described():
    parser = build_parser()
    commands = next(a for a in parser._actions if a.dest == "command")
    for name in ("train", "compare", "export", "import", "suggest"):
        for action in commands.choices[name]._actions:
            if action.dest != "help":
                assert action.help, f"{name} {action.dest} has no description"


def test_evaluate_warns_when_the_gold_file_was_training_data(tmp_path, tiny_model_dir, capsys):
    model = tmp_path / "model"
    shutil.copytree(tiny_model_dir, model)
    (model / "README.md").write_text(
        f"- `annotations/gold.jsonl`, sha256 `{file_sha256(GOLD_PATH)}`: 514 sentences\n",
        encoding="utf-8",
    )
    gold_lines = GOLD_PATH.read_text(encoding="utf-8").splitlines()[:3]
    unseen = make_records(1)[:2]
    sample = tmp_path / "sample.jsonl"
    sample.write_text(
        "\n".join(gold_lines + [json.dumps(r, ensure_ascii=False) for r in unseen]) + "\n",
        encoding="utf-8",
    )
    status, out, err = run(["evaluate", str(sample), "--model", str(model)], capsys)
    assert status == 0
    assert "warning: 3 of 5 sentences" in err and "not held-out" in err
    assert not list(tmp_path.glob("*.html"))
    status, _, err = run(["evaluate", str(sample), "--model", str(tiny_model_dir)], capsys)
    assert "warning" not in err  # a model without a card names no training data


def test_classify_progress_counts_sentences_against_a_total(tmp_path, tiny_model_dir, capsys):
    article = tmp_path / "a.txt"
    article.write_text("标题\n\n美国应与盟友合作。中国生产全球约60%的稀土。\n", encoding="utf-8")
    out = tmp_path / "out.jsonl"
    status, _, err = run(
        ["classify", str(article), "-o", str(out), "--model", str(tiny_model_dir)], capsys
    )
    assert status == 0
    assert "3/3" in err and "sentences" in err
