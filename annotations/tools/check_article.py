"""Check collected article files before they join the corpus.

For each file: the header parses and its values are allowed; the source address
and the text are not reserved for independent evaluation
(``../shared/reserved/check_reserved.py``); the text is not a near-duplicate of
another article already in ``annotations/articles/`` (in either Chinese script);
and the segmenter finds sentences in it. Prints OK or every problem; exits 1 on
any problem. Run from the repository root:

    .venv/bin/python annotations/tools/check_article.py annotations/articles/FILE.txt
    .venv/bin/python annotations/tools/check_article.py --url ADDRESS   # before collecting
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mineral_stance.articles import (
    ArticleFileError,
    article_paths,
    containment,
    doc_id_for_source,
    read_article_file,
    shingles,
)
from mineral_stance.config import ARTICLES_DIR, LABELLED_KINDS, PERSPECTIVES, PROJECT_DIR
from mineral_stance.corpus import read_article, seed_paths
from mineral_stance.segment import segment_text

CHECK_RESERVED = PROJECT_DIR.parent / "shared" / "reserved" / "check_reserved.py"


def reserved_urls(urls: list[str]) -> list[str]:
    """Lines printed by the reserved-material check for these addresses."""
    result = subprocess.run([sys.executable, str(CHECK_RESERVED), "--url", *urls],
                            capture_output=True, text=True)
    return [line for line in result.stdout.splitlines() if line.strip()]


def reserved_text(source: str, text: str) -> list[str]:
    """Lines printed by the reserved-material check for this text (whole, and per paragraph)."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as out:
        records = [{"id": "whole", "text": text, "source": source}]
        records += [{"id": f"para{i}", "text": para} for i, para in enumerate(text.split("\n"))
                    if len(para) >= 24]
        for record in records:
            out.write(json.dumps(record, ensure_ascii=False) + "\n")
    result = subprocess.run([sys.executable, str(CHECK_RESERVED), out.name],
                            capture_output=True, text=True)
    Path(out.name).unlink()
    return [line for line in result.stdout.splitlines() if line.strip()]


def reserved_sentences(sentences: list[str]) -> list[str]:
    """Lines printed by the reserved-material check for each sentence on its own."""
    with tempfile.NamedTemporaryFile("w", suffix=".jsonl", delete=False, encoding="utf-8") as out:
        for number, sentence in enumerate(sentences):
            out.write(json.dumps({"id": f"sentence {number}", "text": sentence},
                                 ensure_ascii=False) + "\n")
    result = subprocess.run([sys.executable, str(CHECK_RESERVED), out.name],
                            capture_output=True, text=True)
    Path(out.name).unlink()
    return [line for line in result.stdout.splitlines() if line.strip()]


def check(path: Path) -> list[str]:
    """Every problem with one article file (empty when it may join the corpus)."""
    try:
        article = read_article_file(path)
    except (ArticleFileError, UnicodeDecodeError) as error:
        return [str(error)]
    problems = [f"RESERVED: {line}" for line in reserved_urls([article.meta.source])]
    problems += [f"RESERVED: {line}" for line in reserved_text(article.meta.source, article.text)]
    sentences = [u.text for u in segment_text(article.text, article.meta.doc_id)]
    problems += [f"RESERVED sentence: {line}" for line in reserved_sentences(sentences)]
    mine = shingles(article.text)
    for seed in seed_paths():
        score = containment(mine, shingles(read_article(seed).text))
        if score >= 0.5:
            problems.append(f"near-duplicate of the seed {seed.name} (containment {score:.2f})")
    for other in article_paths(ARTICLES_DIR):
        if other.resolve() == path.resolve():
            continue
        try:
            other_article = read_article_file(other)
        except ArticleFileError:
            continue
        if other_article.meta.source == article.meta.source:
            problems.append(f"same source address as {other.name}")
        score = containment(mine, shingles(other_article.text))
        if score >= 0.5:
            problems.append(f"near-duplicate of {other.name} (containment {score:.2f})")
    units = [u for u in segment_text(article.text, article.meta.doc_id) if u.kind in LABELLED_KINDS]
    if len(units) < 3:
        problems.append(f"only {len(units)} body/heading sentences: too short to annotate")
    return problems


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("files", nargs="*", type=Path)
    parser.add_argument("--url", nargs="+", help="check addresses before collecting them")
    parser.add_argument("--perspective", choices=PERSPECTIVES,
                        help="with --url: also print the file each address is to be saved as")
    args = parser.parse_args()
    status = 0
    if args.url:
        hits = reserved_urls(args.url)
        reserved = {line.removeprefix("reserved source: ").strip() for line in hits}
        collected = {read_article_file(p).meta.source for p in article_paths(ARTICLES_DIR)}
        for url in args.url:
            if url in reserved:
                print(f"RESERVED, do not collect: {url}")
                status = 1
            elif url in collected:
                print(f"ALREADY COLLECTED: {url}")
                status = 1
            elif args.perspective:
                name = doc_id_for_source(args.perspective, url)
                print(f"OK {url} -> annotations/articles/{name}.txt")
            else:
                print(f"OK {url}")
    for path in args.files:
        problems = check(path)
        if problems:
            status = 1
            for problem in problems:
                print(f"{path}: {problem}")
        else:
            units = [u for u in segment_text(read_article_file(path).text, path.stem)
                     if u.kind in LABELLED_KINDS]
            print(f"{path}: OK ({len(units)} body/heading sentences)")
    return status


if __name__ == "__main__":
    sys.exit(main())
