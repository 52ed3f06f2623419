"""Assemble gold.jsonl, first_pass.jsonl and second_pass.jsonl from the annotators' raw label files.

The annotators labelled sentence ids (see GUIDELINES.md) in `raw/`; this
script joins their labels with the segmenter's text and offsets, applies the
adjudicated decisions in `adjudication.jsonl` (each with its rationale), and
checks that every body and heading unit of the five seeds is labelled exactly
once. Run from the repository root:

    python annotations/assemble.py
"""

from __future__ import annotations

import json
from pathlib import Path

from mineral_stance.annotations import check_record
from mineral_stance.config import (
    ANNOTATIONS_DIR,
    FIRST_PASS_PATH,
    GOLD_PATH,
    LABELLED_KINDS,
    SECOND_PASS_PATH,
)
from mineral_stance.corpus import seed_paths, segment_file

RAW_DIR = ANNOTATIONS_DIR / "raw"
ADJUDICATION_PATH = ANNOTATIONS_DIR / "adjudication.jsonl"
LABEL_FIELDS = ("claim_types", "stance", "voice")


def read_jsonl(path: Path) -> list[dict]:
    return [json.loads(line) for line in path.read_text(encoding="utf-8").splitlines() if line]


def record_for(unit, labels: dict, annotator: str) -> dict:
    record = {
        "id": unit.id,
        "doc_id": unit.doc_id,
        "text": unit.text,
        **{field: labels[field] for field in LABEL_FIELDS},
        "kind": unit.kind,
        "start": unit.start,
        "end": unit.end,
        "annotator": annotator,
    }
    if labels.get("note"):
        record["note"] = labels["note"]
    problems = check_record(record)
    if problems:
        raise ValueError(f"{unit.id}: {'; '.join(problems)}")
    return record


def main() -> None:
    units = [u for path in seed_paths() for u in segment_file(path) if u.kind in LABELLED_KINDS]
    first_pass: dict[str, dict] = {}
    for path in sorted(RAW_DIR.glob("first_pass_*.jsonl")):
        for labels in read_jsonl(path):
            if labels["id"] in first_pass:
                raise ValueError(f"{path}: {labels['id']} labelled twice")
            first_pass[labels["id"]] = labels
    adjudicated = {row["id"]: row for row in read_jsonl(ADJUDICATION_PATH)}
    unit_ids = {u.id for u in units}
    unknown = (set(first_pass) | set(adjudicated)) - unit_ids
    if unknown:
        raise ValueError(f"labels for ids that are not body/heading units: {sorted(unknown)}")
    missing = unit_ids - set(first_pass)
    if missing:
        raise ValueError(
            f"{len(missing)} units have no first-pass label, e.g. {sorted(missing)[:5]}"
        )

    gold = []
    for unit in units:
        if unit.id in adjudicated:
            gold.append(record_for(unit, adjudicated[unit.id], "adjudicated"))
        else:
            gold.append(record_for(unit, first_pass[unit.id], "first-pass"))
    by_id = {u.id: u for u in units}
    second = [
        record_for(by_id[labels["id"]], labels, "second-pass")
        for labels in read_jsonl(RAW_DIR / "second_pass.jsonl")
    ]
    first = [record_for(unit, first_pass[unit.id], "first-pass") for unit in units]
    outputs = ((GOLD_PATH, gold), (FIRST_PASS_PATH, first), (SECOND_PASS_PATH, second))
    for path, records in outputs:
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"wrote {len(records)} records to {path}")


if __name__ == "__main__":
    main()
