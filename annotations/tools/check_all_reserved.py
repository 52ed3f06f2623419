"""Run the reserved-material check over every article file and annotation file.

Articles are checked whole (source address and text) and paragraph by
paragraph; annotation files record by record. Prints what is reserved and
exits 1 if anything is. Run from the repository root before every commit:

    .venv/bin/python annotations/tools/check_all_reserved.py
"""

from __future__ import annotations

import json
import subprocess
import sys
import tempfile
from pathlib import Path

from mineral_stance.articles import article_paths, read_article_file
from mineral_stance.config import ANNOTATIONS_DIR, PROJECT_DIR
from mineral_stance.segment import segment_text

CHECK_RESERVED = PROJECT_DIR.parent / "shared" / "reserved" / "check_reserved.py"


def article_records() -> list[dict]:
    """Each article whole (with its source) and each of its paragraphs, as check records."""
    records = []
    for path in article_paths():
        article = read_article_file(path)
        records.append({"id": path.name, "text": article.text, "source": article.meta.source})
        records += [{"id": f"{path.name} paragraph {i + 1}", "text": paragraph}
                    for i, paragraph in enumerate(article.text.split("\n")) if paragraph.strip()]
        records += [{"id": unit.id, "text": unit.text}
                    for unit in segment_text(article.text, article.meta.doc_id)]
    return records


def reserved_lines(files: list[Path]) -> list[str]:
    """What the shared checker prints for these JSON Lines files."""
    result = subprocess.run([sys.executable, str(CHECK_RESERVED), *map(str, files)],
                            capture_output=True, text=True)
    if result.returncode not in (0, 1):
        raise RuntimeError(f"{CHECK_RESERVED} failed: {result.stderr.strip()}")
    return [line for line in result.stdout.splitlines() if line.strip()]


def main() -> int:
    with tempfile.TemporaryDirectory() as folder:
        articles = Path(folder) / "articles.jsonl"
        articles.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n"
                                    for r in article_records()), encoding="utf-8")
        annotation_files = sorted(ANNOTATIONS_DIR.rglob("*.jsonl"))
        lines = reserved_lines([articles, *annotation_files])
    for line in lines:
        print(line)
    print(f"{len(lines)} reserved", file=sys.stderr)
    return 1 if lines else 0


if __name__ == "__main__":
    sys.exit(main())
