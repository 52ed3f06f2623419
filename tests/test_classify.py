"""The batch CLI and the notebook API, on a tiny trained model."""

import json

import pandas as pd
import pytest

from mineral_stance.batch import RecordWriter, finished_doc_ids
from mineral_stance.cli import main
from mineral_stance.corpus import seed_paths
from mineral_stance.predict import load_classifier

ARTICLE_SIMPLIFIED = "美国关键矿产联盟\n\n美国应与盟友合作，确保供应链安全。中国生产全球约60%的稀土。\n\n图源:新华社\n"
ARTICLE_TRADITIONAL = "標題\n中國一直供應美國54%的鍺,53%的鎵。專家表示,美國必須與盟友合作。\n"


def run(args, capsys):
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


@pytest.fixture
def folder(tmp_path):
    root = tmp_path / "articles"
    (root / "nested").mkdir(parents=True)
    (root / "a.txt").write_text(ARTICLE_SIMPLIFIED, encoding="utf-8")
    (root / "nested" / "b.txt").write_bytes(ARTICLE_TRADITIONAL.encode("big5hkscs"))
    (root / "c.md").write_text(ARTICLE_SIMPLIFIED, encoding="utf-8-sig")
    return root


def test_api_predict_and_article(tiny_model_dir):
    clf = load_classifier(tiny_model_dir)
    results = clf.predict(["美国应与盟友合作。", "中國生產全球60%的稀土。"])
    assert len(results) == 2
    table = results.to_pandas()
    assert {"text", "claim_types", "stance", "voice", "p_stance_oppose"} <= set(table.columns)
    assert clf.predict_proba(["一句话。"]).stance.shape == (1, 4)
    with pytest.raises(TypeError):
        clf.predict("not a list")

    article = clf.classify_article(ARTICLE_SIMPLIFIED, doc_id="demo")
    frame = article.to_pandas()
    assert list(frame["kind"]) == ["heading", "body", "body", "caption"]
    assert frame.loc[3, "stance"] == "unrelated"  # captions get the schema default
    assert ARTICLE_SIMPLIFIED[frame.loc[1, "start"] : frame.loc[1, "end"]] == frame.loc[1, "text"]
    summary = article.summary
    assert summary["sentences"] == 3 and summary["units"] == 4
    shares = [summary[f"stance_{s}_share"] for s in ("support", "oppose", "neutral", "unrelated")]
    assert sum(shares) == pytest.approx(1.0)
    assert summary["net_stance"] is None or -1 <= summary["net_stance"] <= 1
    html = article._repr_html_()
    assert "美国应与盟友合作" in html and "<span" in html


def test_classify_folder_to_jsonl_with_summary(folder, tmp_path, tiny_model_dir, capsys):
    out, summary = tmp_path / "out.jsonl", tmp_path / "summary.jsonl"
    status, _, err = run(
        [
            "classify",
            str(folder),
            "-o",
            str(out),
            "--summary",
            str(summary),
            "--model",
            str(tiny_model_dir),
            "-q",
        ],
        capsys,
    )
    assert status == 0
    records = [json.loads(line) for line in out.read_text("utf-8").splitlines()]
    assert {r["doc_id"] for r in records} == {"a", "nested__b", "c"}
    traditional = [r for r in records if r["doc_id"] == "nested__b"]
    assert traditional[1]["text"] == "中國一直供應美國54%的鍺,53%的鎵。"
    for record in records:
        assert {"index", "start", "end", "kind", "claim_types", "stance", "voice", "source"} <= set(
            record
        )
    assert "3 article(s) done, 0 skipped, 0 failed" in err
    summaries = [json.loads(line) for line in summary.read_text("utf-8").splitlines()]
    assert sorted(s["doc_id"] for s in summaries) == ["a", "c", "nested__b"]


@pytest.mark.parametrize("suffix", [".csv", ".parquet"])
def test_classify_writes_csv_and_parquet(folder, tmp_path, tiny_model_dir, capsys, suffix):
    out = tmp_path / f"out{suffix}"
    status, _, _ = run(
        ["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir), "-q"], capsys
    )
    assert status == 0
    table = pd.read_csv(out) if suffix == ".csv" else pd.read_parquet(out)
    assert set(table["doc_id"].astype(str)) == {"a", "nested__b", "c"}
    assert {"stance", "p_claim_statistic"} <= set(table.columns)
    assert not (tmp_path / f"out{suffix}.partial.jsonl").exists()


def test_bad_inputs_are_reported_and_the_batch_goes_on(folder, tmp_path, tiny_model_dir, capsys):
    (folder / "empty.txt").write_text("", encoding="utf-8")
    (folder / "binary.txt").write_bytes(b"\x00\x01\x02binary")
    jsonl = folder / "batch.jsonl"
    jsonl.write_text(
        '{"text": "美国应与盟友合作。"}\n{broken\n{"body": "no text field"}\n', "utf-8"
    )
    out = tmp_path / "out.jsonl"
    status, _, err = run(["classify", str(folder), str(tmp_path / "missing.txt"), "-o", str(out),
                          "--model", str(tiny_model_dir), "-q"], capsys)  # fmt: skip
    assert status == 1
    assert "empty.txt" in err and "binary.txt" in err and "missing.txt" in err
    assert f"{jsonl}:2" in err and f"{jsonl}:3" in err
    assert "4 article(s) done, 0 skipped, 5 failed" in err
    assert {json.loads(line)["doc_id"] for line in out.read_text("utf-8").splitlines()} >= {
        "a",
        "nested__b",
        "c",
    }


def test_existing_output_is_never_overwritten_silently(folder, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out.jsonl"
    out.write_text("precious\n", encoding="utf-8")
    status, _, err = run(
        ["classify", str(folder), "-o", str(out), "--model", str(tiny_model_dir)], capsys
    )
    assert status == 2 and "--resume" in err
    assert out.read_text("utf-8") == "precious\n"


def test_resume_after_an_interrupted_run(folder, tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "out.jsonl"
    run(
        ["classify", str(folder / "a.txt"), "-o", str(out), "--model", str(tiny_model_dir), "-q"],
        capsys,
    )
    finished = out.read_text("utf-8")
    # an interruption mid-write leaves a cut-off last line
    out.write_text(finished + '{"doc_id": "c", "text": "cut of', encoding="utf-8")
    assert finished_doc_ids(out) == {"a"}
    status, _, err = run(["classify", str(folder), "-o", str(out), "--resume",
                          "--model", str(tiny_model_dir), "-q"], capsys)  # fmt: skip
    assert status == 0
    assert "2 article(s) done, 1 skipped, 0 failed" in err
    lines = out.read_text("utf-8").splitlines()
    assert lines[: len(finished.splitlines())] == finished.splitlines()
    assert {
        json.loads(line)["doc_id"] for line in lines if line.startswith("{") and line.endswith("}")
    } == {"a", "nested__b", "c"}


def test_resume_of_an_interrupted_parquet_run_uses_its_journal(
    folder, tmp_path, tiny_model_dir, capsys
):
    out = tmp_path / "out.parquet"
    journal = tmp_path / "out.parquet.partial.jsonl"
    writer = RecordWriter(journal)
    writer.write_article(
        [
            {
                "doc_id": "a",
                "index": 0,
                "text": "x",
                "claim_types": [],
                "stance": "unrelated",
                "voice": "author",
            }
        ]
    )
    writer.close()
    status, _, err = run(["classify", str(folder), "-o", str(out), "--resume",
                          "--model", str(tiny_model_dir), "-q"], capsys)  # fmt: skip
    assert status == 0 and "1 skipped" in err
    assert set(pd.read_parquet(out)["doc_id"]) == {"a", "nested__b", "c"}
    assert not journal.exists()


def test_classify_standard_input(tiny_model_dir, capsys, monkeypatch):
    import io

    monkeypatch.setattr("sys.stdin", io.StringIO(ARTICLE_TRADITIONAL))
    status, out, _ = run(["classify", "-", "--model", str(tiny_model_dir), "-q"], capsys)
    assert status == 0
    records = [json.loads(line) for line in out.splitlines()]
    assert records[0]["doc_id"] == "stdin" and len(records) == 3


def test_classify_the_seed_articles(tmp_path, tiny_model_dir, capsys):
    out = tmp_path / "seeds.jsonl"
    status, _, err = run(["classify", *map(str, seed_paths()), "-o", str(out),
                          "--model", str(tiny_model_dir), "-q"], capsys)  # fmt: skip
    assert status == 0 and "5 article(s) done" in err
    assert len(out.read_text("utf-8").splitlines()) == 661


def test_seed_articles_keep_their_manifest_slugs():
    from mineral_stance.corpus import load_manifest
    from mineral_stance.inputs import iter_articles

    articles = list(iter_articles([str(p) for p in seed_paths()]))
    assert [a.doc_id for a in articles] == [row["doc_id"] for row in load_manifest()]
