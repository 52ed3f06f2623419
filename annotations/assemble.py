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
from mineral_stance.articles import build_manifest, read_corpus_articles, write_manifest
from mineral_stance.config import (
    ANNOTATIONS_DIR,
    ARTICLES_DIR,
    FIRST_PASS_PATH,
    GOLD_PATH,
    LABELLED_KINDS,
    SECOND_PASS_PATH,
)
from mineral_stance.corpus import seed_paths, segment_file
from mineral_stance.segment import segment_text

RAW_DIR = ANNOTATIONS_DIR / "raw"
CORPUS_RAW_DIR = RAW_DIR / "corpus"
ADJUDICATION_PATH = ANNOTATIONS_DIR / "adjudication.jsonl"
# the seed gold relabelled where the codebook was settled to match the schema
RELABEL_SEED_PATH = ANNOTATIONS_DIR / "relabel_seed.jsonl"
CORPUS_ADJUDICATION_PATH = ANNOTATIONS_DIR / "adjudication_corpus.jsonl"
SECOND_PASS_CORPUS_PATH = ANNOTATIONS_DIR / "second_pass_corpus.jsonl"
LABEL_FIELDS = ("claim_types", "stance", "voice")


def read_jsonl(path: Path) -> list[dict]:
    if not path.exists():
        return []
    return [json.loads(line) for line in path.read_text(encoding="utf-8").split("\n") if line]


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


def read_passes(paths: list[Path]) -> dict[str, tuple[dict, str]]:
    """id → (labels, annotator) from raw label files; an id labelled twice is an error."""
    labelled: dict[str, tuple[dict, str]] = {}
    for path in paths:
        for labels in read_jsonl(path):
            if labels["id"] in labelled:
                raise ValueError(f"{path}: {labels['id']} labelled twice")
            labelled[labels["id"]] = (labels, path.stem)
    return labelled


def corpus_units(articles: list) -> list:
    """Body and heading units of the collected articles, article by article."""
    return [u for article in articles
            for u in segment_text(article.text, article.meta.doc_id) if u.kind in LABELLED_KINDS]


def main() -> None:
    seed_units = [u for path in seed_paths() for u in segment_file(path)
                  if u.kind in LABELLED_KINDS]
    first_pass = read_passes(sorted(RAW_DIR.glob("first_pass_*.jsonl"))
                             + sorted(CORPUS_RAW_DIR.glob("first_*.jsonl")))
    # an article joins the gold set once its first pass has begun; then every unit counts
    started = {sentence_id.rsplit(":", 1)[0] for sentence_id in first_pass}
    articles = read_corpus_articles()
    collected = corpus_units(articles)
    waiting = {u.doc_id for u in collected} - started
    if waiting:
        print(f"{len(waiting)} collected articles have no labels yet and are left out")
    units = seed_units + [u for u in collected if u.doc_id in started]
    second_seed = read_passes([RAW_DIR / "second_pass.jsonl"])
    second_corpus = read_passes(sorted(CORPUS_RAW_DIR.glob("second_*.jsonl")))
    # later decisions win: adjudication, then the codebook settlement of the seed gold
    decisions = {row["id"]: (row, "adjudicated") for row in read_jsonl(ADJUDICATION_PATH)}
    decisions |= {row["id"]: (row, "adjudicated")
                  for row in read_jsonl(CORPUS_ADJUDICATION_PATH)}
    decisions |= {row["id"]: (row, "relabelled-codebook")
                  for row in read_jsonl(RELABEL_SEED_PATH)}
    unit_ids = {u.id for u in units}
    # labels of an article removed after it was dealt (a duplicate found late) are dropped
    present = {u.doc_id for u in seed_units} | {u.doc_id for u in collected}
    for table in (first_pass, second_corpus):
        for sentence_id in [i for i in table if i.rsplit(":", 1)[0] not in present]:
            del table[sentence_id]
    labelled_ids = set(first_pass) | set(second_seed) | set(second_corpus) | set(decisions)
    unknown = labelled_ids - unit_ids - {u.id for u in collected}
    if unknown:
        raise ValueError(f"labels for ids that are not body/heading units: {sorted(unknown)[:10]}")
    missing = unit_ids - set(first_pass)
    if missing:
        raise ValueError(
            f"{len(missing)} units have no first-pass label, e.g. {sorted(missing)[:5]}"
        )

    by_id = {u.id: u for u in units}
    gold = [record_for(u, *(decisions.get(u.id) or first_pass[u.id])) for u in units]
    first = [record_for(u, *first_pass[u.id]) for u in units]
    second = [record_for(by_id[i], *pair) for i, pair in second_seed.items()]
    # a second pass that ran ahead of the first waits for it
    second_new = [record_for(by_id[i], *pair) for i, pair in second_corpus.items() if i in by_id]
    outputs = ((GOLD_PATH, gold), (FIRST_PASS_PATH, first), (SECOND_PASS_PATH, second),
               (SECOND_PASS_CORPUS_PATH, second_new))
    for path, records in outputs:
        with open(path, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
        print(f"wrote {len(records)} records to {path}")
    rows = build_manifest([a for a in articles if a.meta.doc_id in started])
    write_manifest(rows, ARTICLES_DIR / "manifest.csv")
    print(f"wrote {len(rows)} articles to {ARTICLES_DIR / 'manifest.csv'} "
          f"({len({r.story for r in rows})} stories)")


if __name__ == "__main__":
    main()
