"""Schema validation, label counts, agreement, and the shipped gold file itself."""

import json
from collections import Counter

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from mineral_stance.annotations import agreement, label_counts, load_records, validate_file
from mineral_stance.cli import main
from mineral_stance.config import (
    CLAIM_TYPES,
    FIRST_PASS_PATH,
    GOLD_PATH,
    LABELLED_KINDS,
    SECOND_PASS_PATH,
    STANCES,
    VOICES,
)
from mineral_stance.corpus import load_manifest, seed_paths, segment_file

from .conftest import make_records
from .test_inputs import JSONL_LINES


def write_lines(path, lines):
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_validate_reports_every_problem_with_its_line(tmp_path):
    good = json.dumps(make_records(1)[0], ensure_ascii=False)
    path = write_lines(
        tmp_path / "bad.jsonl",
        [
            good,
            "{not json",
            json.dumps(
                {
                    "id": "x:1",
                    "doc_id": "x",
                    "text": "t",
                    "claim_types": ["rumour"],
                    "stance": "oppose",
                    "voice": "author",
                }
            ),
            json.dumps(
                {
                    "id": "x:2",
                    "doc_id": "x",
                    "text": "  ",
                    "claim_types": [],
                    "stance": "oppose",
                    "voice": "author",
                }
            ),
            json.dumps(
                {
                    "id": "x:3",
                    "doc_id": "x",
                    "text": "t",
                    "claim_types": [],
                    "stance": "against",
                    "voice": "author",
                }
            ),
            json.dumps(
                {"id": "x:4", "doc_id": "x", "text": "t", "claim_types": [], "stance": "oppose"}
            ),
            good,
            json.dumps(
                {
                    "id": "x:5",
                    "doc_id": "x",
                    "text": "t",
                    "claim_types": "statistic",
                    "stance": "oppose",
                    "voice": "narrator",
                }
            ),
        ],
    )
    records, problems = validate_file(path)
    messages = {(p.line, p.message.split(" (")[0].split(":")[0]) for p in problems}
    assert len(records) == 1
    assert (2, "bad JSON") in messages
    assert (3, "unknown claim type 'rumour'") in messages
    assert (4, "empty text") in messages
    assert (5, "unknown stance 'against'") in messages
    assert (6, "missing field 'voice'") in messages
    assert any(
        p.line == 7 and "duplicate id" in p.message and "line 1" in p.message for p in problems
    )
    assert (8, "'claim_types' must be a list") in messages
    assert (8, "unknown voice 'narrator'") in messages
    assert all(str(p).startswith(f"{path}:") for p in problems)


def test_validate_command_exit_status(tmp_path, capsys):
    ok = write_lines(
        tmp_path / "ok.jsonl", [json.dumps(r, ensure_ascii=False) for r in make_records(1)]
    )
    bad = write_lines(tmp_path / "bad.jsonl", ["[1, 2]"])
    assert main(["validate", str(ok)]) == 0
    assert main(["validate", str(ok), str(bad)]) == 1
    out = capsys.readouterr().out
    assert f"{bad}:1: a record must be a JSON object" in out


def test_validate_refuses_non_utf8(tmp_path):
    path = tmp_path / "gbk.jsonl"
    path.write_bytes(json.dumps({"text": "关键矿产"}, ensure_ascii=False).encode("gbk"))
    _, problems = validate_file(path)
    assert "not UTF-8" in problems[0].message


def test_label_counts_per_document():
    table = label_counts(make_records(2))
    assert list(table.index) == ["doc0", "doc1", "TOTAL"]
    assert table.loc["TOTAL", "sentences"] == 12
    assert table.loc["doc0", "stance_neutral"] == 2
    assert table.loc["TOTAL", "statistic"] == 2


def test_agreement_kappas():
    first = make_records(2)
    second = [dict(r) for r in first]
    assert agreement(first, second).stance_kappa == pytest.approx(1.0)
    second[0] = {**second[0], "stance": "oppose"}
    second[1] = {**second[1], "voice": "author", "claim_types": []}
    result = agreement(first, second)
    assert result.n == len(first)
    assert result.stance_kappa < 1.0 and result.voice_kappa < 1.0
    assert result.claim_kappa["statistic"] < 1.0
    assert result.claim_kappa["threat_framing"] == pytest.approx(1.0)
    assert {d["id"] for d in result.disagreements} == {first[0]["id"], first[1]["id"]}


# --- the project's own gold data ---------------------------------------------------


@pytest.fixture(scope="module")
def gold():
    return load_records(GOLD_PATH)


def test_gold_is_valid_and_labels_every_body_and_heading_sentence(gold):
    units = [u for p in seed_paths() for u in segment_file(p) if u.kind in LABELLED_KINDS]
    by_id = {r["id"]: r for r in gold}
    seed_docs = {u.doc_id for u in units}
    assert {i for i, r in by_id.items() if r["doc_id"] in seed_docs} == {u.id for u in units}
    for unit in units:
        record = by_id[unit.id]
        assert record["text"] == unit.text, unit.id
        assert (record["start"], record["end"]) == (unit.start, unit.end)


def test_gold_covers_all_documents_and_every_label(gold):
    assert {r["doc_id"] for r in gold} >= {row["doc_id"] for row in load_manifest()}
    claims = Counter(c for r in gold for c in r["claim_types"])
    assert all(claims[c] >= 10 for c in CLAIM_TYPES)
    assert all(Counter(r["stance"] for r in gold)[s] >= 10 for s in STANCES)
    assert all(Counter(r["voice"] for r in gold)[v] >= 10 for v in VOICES)


def test_second_pass_is_independent_sized_and_spread(gold):
    second = load_records(SECOND_PASS_PATH)
    assert len(second) >= 150
    assert {r["doc_id"] for r in second} == {row["doc_id"] for row in load_manifest()}
    first_annotators = {r["annotator"] for r in load_records(FIRST_PASS_PATH)}
    assert {r["annotator"] for r in second}.isdisjoint(first_annotators)
    gold_ids = {r["id"] for r in gold}
    assert all(r["id"] in gold_ids for r in second)


def test_label_counts_by_perspective_count_articles_and_sentences():
    records = make_records(3)
    perspectives = ["taiwan" if r["doc_id"] == "doc0" else "english" for r in records]
    table = label_counts(records, perspectives)
    assert list(table.index) == ["taiwan", "english", "TOTAL"]
    assert table.loc["english", "articles"] == 2 and table.loc["TOTAL", "articles"] == 3
    assert table.loc["taiwan", "sentences"] == 6 and table.loc["TOTAL", "sentences"] == 18


def test_stats_command_reports_perspective_and_script(capsys):
    assert main(["stats"]) == 0
    out = capsys.readouterr().out
    assert "# by perspective" in out and "# by script" in out and "prc_academic" in out
    assert main(["stats", "--by-document"]) == 0
    assert "cass-minerals-alliance" in capsys.readouterr().out


def test_agreement_command_reports_each_script(capsys):
    assert main(["agreement", str(FIRST_PASS_PATH), str(SECOND_PASS_PATH), "--by", "script"]) == 0
    out = capsys.readouterr().out
    assert "# script simplified" in out and "# script traditional" in out
    assert out.count("stance  kappa") == 3  # overall, then each script


def test_validate_line_numbers_survive_unicode_line_separators(tmp_path):
    """str.splitlines() also splits at U+2028 inside a JSON string; JSON Lines does not."""
    good = {"id": "d:0", "doc_id": "d", "text": "第一句\u2028第二句\u2029。", "claim_types": [],
            "stance": "unrelated", "voice": "author"}  # fmt: skip
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(good, ensure_ascii=False) + "\n{bad\n", encoding="utf-8")
    records, problems = validate_file(path)
    assert records == [good]
    assert [str(p) for p in problems] == [f"{path}:2: bad JSON: Expecting property name enclosed in double quotes"]


def test_validate_reports_deep_nesting_and_lone_surrogates_with_their_lines(tmp_path):
    record = {"id": "d:0", "doc_id": "d", "text": "x", "claim_types": [],
              "stance": "unrelated", "voice": "author"}  # fmt: skip
    surrogate = json.dumps(record).replace('"x"', '"x\\udc00"').replace("d:0", "d:1")
    path = tmp_path / "g.jsonl"
    path.write_text(json.dumps(record) + "\n" + "[" * 100_000 + "\n" + surrogate + "\n", "utf-8")
    records, problems = validate_file(path)
    assert len(records) == 1
    assert [(p.line, p.message) for p in problems] == [
        (2, "bad JSON: nested too deeply"),
        (3, "'text' holds a lone surrogate (an invalid \\ud800-\\udfff escape)"),
    ]


@settings(max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(lines=st.lists(JSONL_LINES, max_size=8), raw=st.binary(max_size=200))
def test_validate_never_crashes_and_places_every_problem(tmp_path, lines, raw):
    for data in ("\n".join(lines).encode("utf-8"), raw):
        path = tmp_path / "fuzz.jsonl"
        path.write_bytes(data)
        records, problems = validate_file(path)
        for problem in problems:
            assert problem.path == str(path) and problem.message
            assert 0 <= problem.line <= data.count(b"\n") + 1
        for record in records:
            json.dumps(record, ensure_ascii=False).encode("utf-8")
