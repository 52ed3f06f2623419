"""Batch classification of many articles into one table, safe to interrupt and resume.

Output goes article by article: a JSONL or CSV output gets each finished
article appended and flushed, so an interrupted run keeps every finished
article. Parquet cannot be appended to, so a Parquet run appends to a journal
(``OUT.partial.jsonl``) and writes the Parquet file from it at the end.
``--resume`` reads what is already there and skips those articles.
"""

from __future__ import annotations

import csv
import io
import json
import re
import sys
from collections.abc import Iterable, Iterator
from dataclasses import dataclass, field
from pathlib import Path

import pandas as pd

from mineral_stance.corpus import Article
from mineral_stance.results import summarise
from mineral_stance.segment import segment_text

FORMATS = (".jsonl", ".csv", ".parquet")
# Sentences gathered across articles before one call to the model: big enough
# to fill length-sorted batches, small enough to write results often.
SENTENCES_PER_CHUNK = 256


@dataclass
class BatchCounts:
    done: int = 0
    skipped: int = 0
    failed: int = 0
    sentences: int = 0
    problems: list[str] = field(default_factory=list)

    def final_line(self) -> str:
        return (
            f"{self.done} article(s) done, {self.skipped} skipped, {self.failed} failed "
            f"({self.sentences} sentences)"
        )


def output_format(path: Path | None) -> str:
    if path is None:
        return ".jsonl"
    suffix = path.suffix.lower()
    if suffix not in FORMATS:
        raise ValueError(f"{path}: output must end in {', '.join(FORMATS)}")
    return suffix


def journal_path(out: Path) -> Path:
    """Where a Parquet run keeps finished articles until it writes the Parquet file."""
    return out.with_name(out.name + ".partial.jsonl")


def append_target(out: Path) -> Path:
    return journal_path(out) if output_format(out) == ".parquet" else out


def finished_doc_ids(out: Path) -> set[str]:
    """doc_ids already in an output (and its journal), for --resume."""
    done: set[str] = set()
    if out.exists() and out.stat().st_size:
        suffix = output_format(out)
        if suffix == ".parquet":
            done |= set(pd.read_parquet(out, columns=["doc_id"])["doc_id"])
        elif suffix == ".csv":
            done |= set(pd.read_csv(out, usecols=["doc_id"], dtype=str)["doc_id"])
        else:
            done |= {json.loads(line)["doc_id"] for line in _complete_lines(out)}
    journal = journal_path(out)
    if journal.exists():
        done |= {json.loads(line)["doc_id"] for line in _complete_lines(journal)}
    return done


def repair_interrupted(path: Path) -> str | None:
    """Make an output cut off mid-article whole again before appending to it.

    Each article is written in one call and flushed, so an interruption (power
    loss, full disk) can leave at most one article half-written, with its last
    line cut short. That article's lines are removed (it will be classified
    again); every finished article is kept. Returns the removed doc_id.
    """
    if not path.exists() or not path.stat().st_size:
        return None
    text = path.read_text(encoding="utf-8")
    if text.endswith("\n"):
        return None
    lines = text.split("\n")
    partial, complete = lines[-1], lines[:-1]
    if path.suffix.lower() == ".csv":
        header = next(csv.reader([complete[0]])) if complete else []
        column = header.index("doc_id") if "doc_id" in header else None
        doc_id = next(csv.reader([partial]), [None])[column] if column is not None else None

        def keep(line: str) -> bool:
            return next(csv.reader([line]))[column] != doc_id

        kept = complete[:1] + [line for line in complete[1:] if keep(line)]
    else:
        found = re.search(r'"doc_id": "((?:[^"\\]|\\.)*)"', partial)
        doc_id = json.loads(f'"{found.group(1)}"') if found else None
        kept = [line for line in complete if json.loads(line).get("doc_id") != doc_id]
    temporary = path.with_name(path.name + ".repair")
    temporary.write_text("".join(line + "\n" for line in kept), encoding="utf-8")
    temporary.replace(path)
    return doc_id


def _complete_lines(path: Path) -> Iterator[str]:
    """Lines of a JSONL file, ignoring a last line cut short by an interruption."""
    # split at \n only: str.splitlines() would also cut at U+2028 inside a text value
    for line in path.read_text(encoding="utf-8").split("\n"):
        if not line:
            continue
        try:
            json.loads(line)
        except json.JSONDecodeError:
            continue
        yield line


def to_csv_row(record: dict) -> dict:
    row = dict(record)
    row["claim_types"] = ";".join(record["claim_types"])
    return row


def render_article(records: list[dict], csv_rows: bool = False, header: bool = False) -> str:
    """An article's records as JSON Lines, or as CSV rows (with the header row first if asked)."""
    buffer = io.StringIO()
    if csv_rows:
        writer = csv.DictWriter(buffer, fieldnames=list(records[0]))
        if header:
            writer.writeheader()
        writer.writerows(to_csv_row(r) for r in records)
    else:
        for record in records:
            buffer.write(json.dumps(record, ensure_ascii=False) + "\n")
    return buffer.getvalue()


class RecordWriter:
    """Appends records article by article to JSONL or CSV (or stdout), flushing after each."""

    def __init__(self, path: Path | None, fieldnames: list[str] | None = None):
        self.path = path
        self.csv = path is not None and path.suffix.lower() == ".csv"
        if path is None:
            self.handle = sys.stdout
        else:
            path.parent.mkdir(parents=True, exist_ok=True)
            self.handle = open(path, "a", encoding="utf-8", newline="")
        self.needs_header = self.csv and (path.stat().st_size == 0)

    def write_article(self, records: list[dict]) -> None:
        """All of an article's records in one write, then flush: an article is in or out."""
        self.handle.write(render_article(records, self.csv, self.needs_header))
        self.needs_header = False
        self.handle.flush()

    def close(self) -> None:
        if self.handle is not sys.stdout:
            self.handle.close()


def finish_parquet(out: Path) -> None:
    """Write the Parquet file from the journal (and a previous Parquet file), then tidy up.

    The new file is written beside the old one and moved over it, so a failure
    here (a full disk) leaves the old Parquet file and the journal as they were.
    """
    journal = journal_path(out)
    frames = []
    if out.exists():
        frames.append(pd.read_parquet(out))
    if journal.exists():
        lines = list(_complete_lines(journal))
        if lines:
            frames.append(pd.DataFrame([json.loads(line) for line in lines]))
    if frames:
        temporary = out.with_name(f".{out.name}.tmp")
        try:
            pd.concat(frames, ignore_index=True).to_parquet(temporary, index=False)
            temporary.replace(out)
        finally:
            temporary.unlink(missing_ok=True)
    if journal.exists():
        journal.unlink()


def read_output(out: Path) -> pd.DataFrame:
    suffix = output_format(out)
    if suffix == ".parquet":
        return pd.read_parquet(out)
    if suffix == ".csv":
        table = pd.read_csv(out, dtype={"doc_id": str}, keep_default_na=False)
        table["claim_types"] = table["claim_types"].map(lambda s: [c for c in s.split(";") if c])
        return table
    return pd.DataFrame([json.loads(line) for line in _complete_lines(out)])


def write_summaries(records: pd.DataFrame, path: Path) -> int:
    """Per-article summaries of an output table, as JSONL or CSV (by extension)."""
    summaries = [
        summarise(group.to_dict("records"), str(doc_id))
        for doc_id, group in records.groupby("doc_id", sort=False)
    ]
    temporary = path.with_name(f".{path.name}.tmp")  # a failed write keeps the old summaries
    try:
        if path.suffix.lower() == ".csv":
            flat = [
                {
                    k: (json.dumps(v, ensure_ascii=False) if isinstance(v, list) else v)
                    for k, v in s.items()
                }
                for s in summaries
            ]
            pd.DataFrame(flat).to_csv(temporary, index=False)
        else:
            with open(temporary, "w", encoding="utf-8") as handle:
                for summary in summaries:
                    handle.write(json.dumps(summary, ensure_ascii=False) + "\n")
        temporary.replace(path)
    finally:
        temporary.unlink(missing_ok=True)
    return len(summaries)


def chunks_of_articles(articles: Iterable[Article]) -> Iterator[list[tuple[Article, list]]]:
    """Segment articles and group them so one model call sees a few hundred sentences."""
    chunk: list[tuple[Article, list]] = []
    sentences = 0
    for article in articles:
        units = segment_text(article.text, article.doc_id)
        chunk.append((article, units))
        sentences += len(units)
        if sentences >= SENTENCES_PER_CHUNK:
            yield chunk
            chunk, sentences = [], 0
    if chunk:
        yield chunk
