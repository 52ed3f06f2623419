"""List every sentence on which the first and the independent second annotation disagree.

For each disagreement the adjudicator sees the sentence, the sentence before
and after it in its article, the article's outlet and title, and the two
labellings as A and B (not who made them). Decisions go, with a reason, into
``annotations/adjudication_corpus.jsonl``; sentences already decided there are
left out. Run after ``annotations/assemble.py``:

    .venv/bin/python annotations/tools/make_adjudication.py -o annotations/tasks/adjudication_01.txt
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from mineral_stance.config import ANNOTATIONS_DIR, FIRST_PASS_PATH
from mineral_stance.dataset import article_table

SECOND_PATH = ANNOTATIONS_DIR / "second_pass_corpus.jsonl"
DECIDED_PATH = ANNOTATIONS_DIR / "adjudication_corpus.jsonl"


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


def labels(record: dict) -> str:
    claims = ", ".join(record["claim_types"]) or "(none)"
    return f"claim_types: {claims} | stance: {record['stance']} | voice: {record['voice']}"


def same(a: dict, b: dict) -> bool:
    return (sorted(a["claim_types"]), a["stance"], a["voice"]) == (
        sorted(b["claim_types"]), b["stance"], b["voice"])


def neighbour(records: list[dict], index: int, doc_id: str) -> str:
    """The text of records[index] if it is a sentence of the same article, else ''."""
    if 0 <= index < len(records) and records[index]["doc_id"] == doc_id:
        return records[index]["text"]
    return ""


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("-o", "--output", type=Path, required=True)
    args = parser.parse_args()
    first = read_jsonl(FIRST_PASS_PATH)
    position = {r["id"]: i for i, r in enumerate(first)}
    decided = {r["id"] for r in read_jsonl(DECIDED_PATH)}
    meta = article_table().set_index("doc_id")
    blocks = []
    for second in read_jsonl(SECOND_PATH):
        record = first[position[second["id"]]]
        if same(record, second) or record["id"] in decided:
            continue
        i = position[record["id"]]
        before = neighbour(first, i - 1, record["doc_id"])
        after = neighbour(first, i + 1, record["doc_id"])
        article = meta.loc[record["doc_id"]]
        blocks.append("\n".join([
            f"## {record['id']}",
            f"article: {article['outlet']} | {article['perspective']} | {article['title']}",
            f"before: {before}",
            f"SENTENCE: {record['text']}",
            f"after: {after}",
            f"A: {labels(record)}",
            f"B: {labels(second)}",
        ]))
    args.output.write_text("\n\n".join(blocks) + "\n", encoding="utf-8")
    print(f"{len(blocks)} disagreements written to {args.output}")


if __name__ == "__main__":
    main()
