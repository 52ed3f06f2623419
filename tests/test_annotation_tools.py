"""Label Studio and doccano: export tasks, import finished exports, round trips of the gold file."""

import json
import xml.etree.ElementTree as ET
import zipfile
from pathlib import Path

import pytest

from mineral_stance.annotation_tools import (
    ImportProblems,
    doccano_label_types,
    import_export,
    label_studio_config,
    label_studio_task,
    write_export,
    write_records,
)
from mineral_stance.annotations import load_records, validate_file
from mineral_stance.cli import main
from mineral_stance.config import CLAIM_TYPES, GOLD_PATH, PROJECT_DIR, STANCES, VOICES

DATA = Path(__file__).resolve().parent / "data"
LABELS = ("claim_types", "stance", "voice")


def schema_fields(record):
    return {
        "id": record["id"],
        "doc_id": record["doc_id"],
        "text": record["text"],
        "claim_types": sorted(record["claim_types"]),
        "stance": record["stance"],
        "voice": record["voice"],
    }


# --- what Label Studio and doccano write after annotators worked through our tasks ---
def label_studio_after_annotation(tasks: list[dict], gold_by_id: dict) -> list[dict]:
    """The JSON export Label Studio writes once each task has one submitted annotation."""
    exported = []
    for number, task in enumerate(tasks, start=1):
        gold = gold_by_id[task["data"]["sentence_id"]]
        result = [
            {
                "value": {"choices": list(gold[name]) if name == "claim_types" else [gold[name]]},
                "id": f"r{number}{name[:3]}",
                "from_name": name,
                "to_name": "text",
                "type": "choices",
                "origin": "manual",
            }
            for name in LABELS
            if name != "claim_types" or gold["claim_types"]
        ]
        exported.append(
            {
                "id": 1000 + number,
                "annotations": [
                    {
                        "id": 5000 + number,
                        "completed_by": 2,
                        "result": result,
                        "was_cancelled": False,
                        "ground_truth": False,
                        "created_at": "2026-11-21T08:00:00.000000Z",
                        "updated_at": "2026-11-21T08:00:00.000000Z",
                        "lead_time": 7.5,
                        "task": 1000 + number,
                        "project": 1,
                        "parent_prediction": None,
                    }
                ],
                "drafts": [],
                "predictions": [],
                "data": task["data"],
                "meta": {},
                "created_at": "2026-11-20T08:00:00.000000Z",
                "updated_at": "2026-11-21T08:00:00.000000Z",
                "inner_id": number,
                "total_annotations": 1,
                "cancelled_annotations": 0,
                "total_predictions": 0,
                "project": 1,
            }
        )
    return exported


def doccano_after_annotation(lines: list[dict], gold_by_id: dict) -> list[dict]:
    """doccano's JSONL export: id, text, the imported metadata at top level, label names."""
    out = []
    for number, line in enumerate(lines, start=1):
        gold = gold_by_id[line["sentence_id"]]
        labels = [f"claim:{c}" for c in gold["claim_types"]]
        labels += [f"stance:{gold['stance']}", f"voice:{gold['voice']}"]
        meta = {k: v for k, v in line.items() if k not in ("text", "label")}
        out.append({"id": number, "text": line["text"], **meta, "label": labels, "Comments": []})
    return out


def test_label_studio_round_trip_reproduces_the_gold_records(tmp_path):
    gold = load_records(GOLD_PATH)
    tasks_path = tmp_path / "tasks.json"
    write_export(gold, tasks_path, "label-studio")
    tasks = json.loads(tasks_path.read_text(encoding="utf-8"))
    assert len(tasks) == len(gold)
    export = tmp_path / "project-1-at-2026-11-21.json"
    export.write_text(
        json.dumps(label_studio_after_annotation(tasks, {r["id"]: r for r in gold})),
        encoding="utf-8",
    )
    imported = import_export(export, "label-studio")
    assert [schema_fields(r) for r in imported.records] == [schema_fields(r) for r in gold]
    assert {r["annotator"] for r in imported.records} == {"label-studio-user-2"}
    assert imported.records[0]["annotated_at"] == "2026-11-21T08:00:00.000000Z"
    assert imported.records[0]["start"] == gold[0]["start"]  # offsets travel with the task
    out = tmp_path / "gold.jsonl"
    write_records(imported.records, out)
    records, problems = validate_file(out)
    assert not problems and len(records) == len(gold)


def test_doccano_round_trip_reproduces_the_gold_records(tmp_path):
    gold = load_records(GOLD_PATH)
    tasks_path = tmp_path / "tasks.jsonl"
    write_export(gold, tasks_path, "doccano")
    lines = [json.loads(line) for line in tasks_path.read_text(encoding="utf-8").splitlines()]
    export = tmp_path / "annotator1.jsonl"
    exported = doccano_after_annotation(lines, {r["id"]: r for r in gold})
    export.write_text(
        "".join(json.dumps(x, ensure_ascii=False) + "\n" for x in exported), encoding="utf-8"
    )
    imported = import_export(export, "doccano")
    assert [schema_fields(r) for r in imported.records] == [schema_fields(r) for r in gold]
    assert {r["annotator"] for r in imported.records} == {"annotator1"}


def test_label_studio_fixture_keeps_annotator_time_and_skips_unfinished_tasks():
    imported = import_export(DATA / "label_studio_export.json", "label-studio")
    assert imported.unannotated == 1  # task 103 has no annotation
    first, second = imported.records
    assert first == {
        "id": "fixture-doc:0003",
        "doc_id": "fixture-doc",
        "text": "中国稀土冶炼分离产能占全球的90%以上，这种集中度构成严重风险。",
        "claim_types": ["threat_framing", "statistic"],
        "stance": "unrelated",
        "voice": "author",
        "kind": "body",
        "start": 120,
        "end": 151,
        "annotator": "label-studio-user-3",
        "annotated_at": "2026-11-20T09:14:03.118241Z",
    }
    # the cancelled annotation is passed over; a user object gives its e-mail
    assert second["stance"] == "support" and second["voice"] == "reported"
    assert second["annotator"] == "li.wei@example.org"


def test_doccano_fixture_and_a_zip_of_user_files(tmp_path):
    imported = import_export(DATA / "doccano_admin.jsonl", "doccano")
    assert imported.unannotated == 1
    assert [r["annotator"] for r in imported.records] == ["doccano_admin", "doccano_admin"]
    assert imported.records[0]["claim_types"] == ["threat_framing", "statistic"]
    archive = tmp_path / "export.zip"
    lines = (DATA / "doccano_admin.jsonl").read_text(encoding="utf-8").splitlines()
    with zipfile.ZipFile(archive, "w") as z:
        z.writestr("admin.jsonl", "\n".join(lines[:1]) + "\n")
        z.writestr("annotator.jsonl", "\n".join(lines[1:]) + "\n")
    imported = import_export(archive, "doccano")
    assert [r["annotator"] for r in imported.records] == ["admin", "annotator"]
    assert len(import_export(archive, "doccano", annotator="annotator").records) == 1


def test_unknown_and_missing_labels_are_refused_with_the_task_id(tmp_path):
    tasks = json.loads((DATA / "label_studio_export.json").read_text(encoding="utf-8"))
    tasks[0]["annotations"][0]["result"][1]["value"]["choices"] = ["pro-alliance"]
    del tasks[1]["annotations"][1]["result"][2]  # no voice
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks, ensure_ascii=False), encoding="utf-8")
    with pytest.raises(ImportProblems) as caught:
        import_export(bad, "label-studio")
    message = str(caught.value)
    assert "task 101: unknown stance label 'pro-alliance'" in message
    assert "task 102: needs exactly one voice, found 0" in message

    lines = (DATA / "doccano_admin.jsonl").read_text(encoding="utf-8").splitlines()
    line = json.loads(lines[1])
    line["label"].append("stance:oppose")
    line["label"].append("mood:angry")
    bad = tmp_path / "bad.jsonl"
    bad.write_text(lines[0] + "\n" + json.dumps(line, ensure_ascii=False) + "\n", encoding="utf-8")
    with pytest.raises(ImportProblems) as caught:
        import_export(bad, "doccano")
    assert "task 13 (line 2): unknown label 'mood:angry'" in str(caught.value)
    assert "needs exactly one stance, found 2" in str(caught.value)


def test_label_studio_config_is_generated_from_the_schema():
    root = ET.fromstring(label_studio_config())
    groups = {c.get("name"): c for c in root.iter("Choices")}
    assert list(groups) == ["claim_types", "stance", "voice"]
    assert [c.get("value") for c in groups["claim_types"]] == list(CLAIM_TYPES)
    assert [c.get("value") for c in groups["stance"]] == list(STANCES)
    assert [c.get("value") for c in groups["voice"]] == list(VOICES)
    assert groups["claim_types"].get("choice") == "multiple"
    assert groups["stance"].get("required") == "true"
    hint = groups["stance"][1].get("hint")
    assert hint.startswith("criticises it")  # the schema's definition of oppose
    assert {label["text"] for label in doccano_label_types()} >= {
        "stance:oppose",
        "claim:statistic",
    }


def test_a_prediction_carries_scores_from_the_model_probabilities():
    record = {
        "id": "d:0001",
        "doc_id": "d",
        "text": "美国应与盟友合作。",
        "claim_types": ["policy_recommendation"],
        "stance": "support",
        "voice": "author",
        "p_claim_policy_recommendation": 0.8,
        "p_stance_support": 0.6,
        "p_voice_author": 0.9,
    }
    task = label_studio_task(record)
    prediction = task["predictions"][0]
    assert prediction["score"] == 0.6
    assert [r["from_name"] for r in prediction["result"]] == ["claim_types", "stance", "voice"]
    assert prediction["result"][0]["value"] == {"choices": ["policy_recommendation"]}
    assert task["data"] == {"text": "美国应与盟友合作。", "sentence_id": "d:0001", "doc_id": "d"}


def test_schema_copy_matches_the_shared_schema():
    copy = PROJECT_DIR / "annotations" / "label-schema.md"
    shared = PROJECT_DIR.parent / "shared" / "label-schema.md"
    assert copy.exists()
    if shared.exists():  # beside the repository in CI and in development
        assert copy.read_text(encoding="utf-8") == shared.read_text(encoding="utf-8")


# --- the commands ------------------------------------------------------------------
def run(args, capsys):
    status = main(args)
    captured = capsys.readouterr()
    return status, captured.out, captured.err


def test_export_command_writes_pre_annotated_tasks_and_config(tmp_path, tiny_model_dir, capsys):
    article = tmp_path / "a.txt"
    article.write_text("标题\n\n美国应与盟友合作。中国生产全球约60%的稀土。\n", encoding="utf-8")
    out = tmp_path / "tasks.json"
    status, _, err = run(
        [
            "export",
            "--format",
            "label-studio",
            str(article),
            "-o",
            str(out),
            "--model",
            str(tiny_model_dir),
        ],
        capsys,
    )
    assert status == 0, err
    tasks = json.loads(out.read_text(encoding="utf-8"))
    assert [t["data"]["sentence_id"] for t in tasks] == ["a:0000", "a:0001", "a:0002"]
    assert all(0 <= t["predictions"][0]["score"] <= 1 for t in tasks)
    assert (tmp_path / "tasks.label-config.xml").exists()
    # nothing is overwritten without --overwrite, and the check comes first
    status, _, err = run(
        ["export", "--format", "label-studio", str(article), "-o", str(out)], capsys
    )
    assert status == 2 and "exists" in err
    status, _, err = run(["export", "--format", "doccano", str(article), "-o", "x.json"], capsys)
    assert status == 2 and ".jsonl" in err


def test_import_command_validates_and_appends_without_duplicates(tmp_path, capsys):
    out = tmp_path / "gold.jsonl"
    fixture = str(DATA / "label_studio_export.json")
    status, _, err = run(["import", "--format", "label-studio", fixture, "-o", str(out)], capsys)
    assert status == 0 and "wrote 2 records" in err and "1 tasks had no finished" in err
    before = out.read_bytes()
    status, _, err = run(["import", "--format", "label-studio", fixture, "-o", str(out)], capsys)
    assert status == 2 and out.read_bytes() == before  # exists: refused, untouched
    doccano = str(DATA / "doccano_admin.jsonl")
    status, _, err = run(
        ["import", "--format", "doccano", doccano, "-o", str(out), "--append"], capsys
    )
    assert status == 0 and "2 already there" in err
    assert out.read_bytes() == before  # the same sentence ids: nothing duplicated

    tasks = json.loads((DATA / "label_studio_export.json").read_text(encoding="utf-8"))
    tasks[0]["annotations"][0]["result"][1]["value"]["choices"] = ["pro"]
    bad = tmp_path / "bad.json"
    bad.write_text(json.dumps(tasks), encoding="utf-8")
    fresh = tmp_path / "fresh.jsonl"
    status, _, err = run(["import", "--format", "label-studio", str(bad), "-o", str(fresh)], capsys)
    assert status == 1 and "task 101" in err and not fresh.exists()
