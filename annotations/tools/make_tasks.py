"""Cut the collected articles into annotation batches that annotators read.

Every article in ``annotations/articles/`` is segmented with the project's own
segmenter; its body and heading units are the sentences to label. Articles are
dealt whole into batches of about equal size, each batch mixing perspectives
and scripts. A batch file shows each article's outlet, perspective and title,
then one line per unit: ``id <TAB> kind <TAB> text``; the annotator writes one
JSON line per id. Articles already in a batch keep their batch when run again.

    .venv/bin/python annotations/tools/make_tasks.py --batches 8
"""

from __future__ import annotations

import argparse
import json

from mineral_stance.articles import read_corpus_articles
from mineral_stance.config import ANNOTATIONS_DIR, LABELLED_KINDS
from mineral_stance.segment import segment_text

TASKS_DIR = ANNOTATIONS_DIR / "tasks"


def existing_assignment() -> dict[str, str]:
    """doc_id → batch name of articles already dealt."""
    path = TASKS_DIR / "assignment.json"
    return json.loads(path.read_text(encoding="utf-8")) if path.exists() else {}


def render(article, units) -> str:
    meta = article.meta
    lines = [f"## {meta.doc_id}", f"outlet: {meta.outlet} | perspective: {meta.perspective} | "
             f"script: {meta.script} | date: {meta.date}", f"title: {meta.title}", ""]
    lines += [f"{u.id}\t{u.kind}\t{u.text}" for u in units]
    return "\n".join(lines) + "\n\n"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--batches", type=int, default=8)
    parser.add_argument("--prefix", default="batch")
    parser.add_argument("--no-new", action="store_true",
                        help="only rewrite the batches already dealt (after an article changed)")
    args = parser.parse_args()
    TASKS_DIR.mkdir(exist_ok=True)
    assignment = existing_assignment()
    articles = read_corpus_articles()
    units = {a.meta.doc_id: [u for u in segment_text(a.text, a.meta.doc_id)
                             if u.kind in LABELLED_KINDS] for a in articles}
    new = [] if args.no_new else [a for a in articles if a.meta.doc_id not in assignment]
    articles = [a for a in articles if a.meta.doc_id in assignment or a in new]
    names = [f"{args.prefix}_{i:02d}" for i in range(args.batches)]
    sizes = dict.fromkeys(names, 0)
    # deal by perspective, largest articles first, each to the smallest batch
    new.sort(key=lambda a: (a.meta.perspective, -len(units[a.meta.doc_id])))
    for article in new:
        target = min(names, key=lambda name: sizes[name])
        assignment[article.meta.doc_id] = target
        sizes[target] += len(units[article.meta.doc_id])
    by_batch: dict[str, list] = {}
    for article in articles:
        by_batch.setdefault(assignment[article.meta.doc_id], []).append(article)
    for name, members in sorted(by_batch.items()):
        text = "".join(render(a, units[a.meta.doc_id]) for a in members)
        (TASKS_DIR / f"{name}.txt").write_text(text, encoding="utf-8")
        count = sum(len(units[a.meta.doc_id]) for a in members)
        print(f"{name}: {len(members)} articles, {count} sentences")
    (TASKS_DIR / "assignment.json").write_text(
        json.dumps(assignment, ensure_ascii=False, indent=0, sort_keys=True), encoding="utf-8")


if __name__ == "__main__":
    main()
