"""Check an annotator's label file against the batch it labels.

Every sentence id of the batch (or of the listed articles) must be labelled
exactly once with labels the schema allows. Prints each problem as
``file:line: message`` and a count of what is still missing; exits 1 on any
problem. Run from the repository root:

    .venv/bin/python annotations/tools/check_labels.py annotations/tasks/batch_00.txt \
        annotations/raw/corpus/first_batch_00.jsonl [--docs DOC_ID ...]
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES


def batch_ids(batch: Path, docs: set[str] | None) -> list[str]:
    """Sentence ids of a batch file, in order (only of ``docs`` when given)."""
    ids = []
    for line in batch.read_text(encoding="utf-8").split("\n"):
        if "\t" in line:
            sentence_id = line.split("\t", 1)[0]
            if docs is None or sentence_id.rsplit(":", 1)[0] in docs:
                ids.append(sentence_id)
    return ids


def label_problems(record: dict) -> list[str]:
    problems = []
    claims = record.get("claim_types")
    if not isinstance(claims, list) or any(c not in CLAIM_TYPES for c in claims):
        problems.append(f"claim_types must be a list drawn from {', '.join(CLAIM_TYPES)}")
    elif len(set(claims)) != len(claims):
        problems.append("claim_types repeats a label")
    if record.get("stance") not in STANCES:
        problems.append(f"stance must be one of {', '.join(STANCES)}")
    if record.get("voice") not in VOICES:
        problems.append(f"voice must be one of {', '.join(VOICES)}")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("batch", type=Path)
    parser.add_argument("labels", type=Path)
    parser.add_argument("--docs", nargs="+", help="only these articles of the batch")
    args = parser.parse_args()
    expected = batch_ids(args.batch, set(args.docs) if args.docs else None)
    wanted = set(expected)
    seen: dict[str, int] = {}
    status = 0
    lines = args.labels.read_text(encoding="utf-8").split("\n") if args.labels.exists() else []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        where = f"{args.labels}:{number}"
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            print(f"{where}: not JSON ({error.msg})")
            status = 1
            continue
        sentence_id = record.get("id")
        if sentence_id not in wanted:
            print(f"{where}: id {sentence_id!r} is not a sentence of this batch")
            status = 1
        elif sentence_id in seen:
            print(f"{where}: id {sentence_id} labelled again (first on line {seen[sentence_id]})")
            status = 1
        else:
            seen[sentence_id] = number
        for problem in label_problems(record):
            print(f"{where}: {problem}")
            status = 1
    missing = [i for i in expected if i not in seen]
    if missing:
        status = 1
        print(f"{len(missing)} of {len(expected)} sentences not labelled yet, first: {missing[0]}")
    else:
        print(f"all {len(expected)} sentences labelled")
    return status


if __name__ == "__main__":
    sys.exit(main())
