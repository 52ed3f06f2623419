"""Annotation records: read, validate against the label schema, count and compare.

The record format is the one in ``../shared/label-schema.md``::

    {"id": "doc-slug:0042", "doc_id": "doc-slug", "text": "…",
     "claim_types": ["threat_framing"], "stance": "oppose", "voice": "author"}

Extra fields are allowed and ignored.
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING

import pandas as pd
from sklearn.metrics import cohen_kappa_score

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.corpus import InputError

if TYPE_CHECKING:
    from mineral_stance.labels import Targets

LONE_SURROGATE = re.compile("[\ud800-\udfff]")
REQUIRED_FIELDS = ("id", "doc_id", "text", "claim_types", "stance", "voice")


@dataclass
class Problem:
    """One thing wrong with an annotation file, with the line it is on."""

    path: str
    line: int
    message: str

    def __str__(self) -> str:
        return f"{self.path}:{self.line}: {self.message}"


def check_record(record: object) -> list[str]:
    """What is wrong with one parsed record (empty when it is valid)."""
    if not isinstance(record, dict):
        return ["a record must be a JSON object"]
    problems = [f"missing field '{name}'" for name in REQUIRED_FIELDS if name not in record]
    for name in ("id", "doc_id", "text"):
        if name in record and not isinstance(record[name], str):
            problems.append(f"'{name}' must be a string")
    for name in ("id", "doc_id", "text"):
        if isinstance(record.get(name), str) and LONE_SURROGATE.search(record[name]):
            problems.append(f"'{name}' holds a lone surrogate (an invalid \\ud800-\\udfff escape)")
    if isinstance(record.get("text"), str) and not record["text"].strip():
        problems.append("empty text")
    if isinstance(record.get("id"), str) and not record["id"].strip():
        problems.append("empty id")
    if "claim_types" in record:
        claims = record["claim_types"]
        if not isinstance(claims, list):
            problems.append("'claim_types' must be a list")
        else:
            for claim in claims:
                if claim not in CLAIM_TYPES:
                    problems.append(
                        f"unknown claim type {claim!r} (expected one of {', '.join(CLAIM_TYPES)})"
                    )
            if len(set(map(str, claims))) != len(claims):
                problems.append("a claim type is listed twice")
    if "stance" in record and record["stance"] not in STANCES:
        problems.append(
            f"unknown stance {record['stance']!r} (expected one of {', '.join(STANCES)})"
        )
    if "voice" in record and record["voice"] not in VOICES:
        problems.append(f"unknown voice {record['voice']!r} (expected one of {', '.join(VOICES)})")
    return problems


def validate_file(path: str | Path) -> tuple[list[dict], list[Problem]]:
    """Parse every line; return the valid records and every problem with its line number."""
    path = Path(path)
    records: list[dict] = []
    problems: list[Problem] = []
    seen_ids: dict[str, int] = {}
    try:
        raw = path.read_bytes()
    except OSError as error:
        return [], [Problem(str(path), 0, f"cannot read file: {error.strerror}")]
    try:
        text = raw.decode("utf-8-sig")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        return [], [Problem(str(path), line, "not UTF-8 (the schema requires UTF-8)")]
    # JSON Lines ends lines at \n only: U+2028 and friends may sit inside a string
    for number, line in enumerate(text.split("\n"), start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            problems.append(Problem(str(path), number, f"bad JSON: {error.msg}"))
            continue
        except RecursionError:
            problems.append(Problem(str(path), number, "bad JSON: nested too deeply"))
            continue
        messages = check_record(record)
        if isinstance(record, dict) and isinstance(record.get("id"), str):
            first = seen_ids.setdefault(record["id"], number)
            if first != number:
                messages.append(f"duplicate id {record['id']!r} (first on line {first})")
        problems.extend(Problem(str(path), number, message) for message in messages)
        if not messages:
            records.append(record)
    if not records and not problems:
        problems.append(Problem(str(path), 0, "no records"))
    return records, problems


def load_records(path: str | Path) -> list[dict]:
    """Records of a file that must be valid; raise with every problem listed otherwise."""
    records, problems = validate_file(path)
    if problems:
        listed = "\n".join(str(problem) for problem in problems[:20])
        more = f"\n… and {len(problems) - 20} more" if len(problems) > 20 else ""
        raise InputError(f"{path} is not a valid annotation file:\n{listed}{more}")
    return records


def label_counts(records: list[dict], by: list[str] | None = None) -> pd.DataFrame:
    """One row per document (plus a total): sentences and the count of every label.

    ``by`` groups by other keys instead, one value per record (e.g. each
    record's perspective or script); the table then also counts articles.
    """
    rows = []
    for number, record in enumerate(records):
        key = record["doc_id"] if by is None else by[number]
        row = {"doc_id": key, "sentences": 1}
        if by is not None:
            row["articles"] = record["doc_id"]
        for claim in CLAIM_TYPES:
            row[claim] = int(claim in record["claim_types"])
        row["no_claim"] = int(not record["claim_types"])
        for stance in STANCES:
            row[f"stance_{stance}"] = int(record["stance"] == stance)
        for voice in VOICES:
            row[f"voice_{voice}"] = int(record["voice"] == voice)
        rows.append(row)
    frame = pd.DataFrame(rows)
    table = frame.drop(columns="articles", errors="ignore").groupby("doc_id", sort=False).sum()
    if by is not None:
        table.insert(0, "articles", frame.groupby("doc_id", sort=False)["articles"].nunique())
    table.loc["TOTAL"] = table.sum()
    if by is not None:
        table.loc["TOTAL", "articles"] = frame["articles"].nunique()
    table.index.name = "doc_id" if by is None else "group"
    return table


@dataclass
class Agreement:
    """Cohen's kappa per task between two annotations of the same sentences."""

    n: int
    stance_kappa: float
    voice_kappa: float
    claim_kappa: dict[str, float]
    stance_agreement: float
    voice_agreement: float
    disagreements: list[dict]

    def to_text(self) -> str:
        lines = [f"sentences annotated twice: {self.n}"]
        lines.append(
            f"stance  kappa {self.stance_kappa:.3f}  (raw agreement {self.stance_agreement:.1%})"
        )
        lines.append(
            f"voice   kappa {self.voice_kappa:.3f}  (raw agreement {self.voice_agreement:.1%})"
        )
        for claim, kappa in self.claim_kappa.items():
            lines.append(f"{claim:<22} kappa {kappa:.3f}")
        lines.append(f"sentences with any disagreement: {len(self.disagreements)}")
        return "\n".join(lines)


def agreement(first: list[dict], second: list[dict]) -> Agreement:
    """Kappa for stance and voice, and per-label kappa for each claim type, on shared ids."""
    second_by_id = {record["id"]: record for record in second}
    pairs = [
        (record, second_by_id[record["id"]]) for record in first if record["id"] in second_by_id
    ]
    if not pairs:
        raise ValueError("the two files share no sentence ids")
    a, b = zip(*pairs, strict=True)
    stance_a, stance_b = [r["stance"] for r in a], [r["stance"] for r in b]
    voice_a, voice_b = [r["voice"] for r in a], [r["voice"] for r in b]
    claim_kappa = {
        claim: _kappa(
            [claim in r["claim_types"] for r in a], [claim in r["claim_types"] for r in b]
        )
        for claim in CLAIM_TYPES
    }
    disagreements = [
        {"id": x["id"], "text": x["text"], "first": _labels(x), "second": _labels(y)}
        for x, y in pairs
        if _labels(x) != _labels(y)
    ]
    return Agreement(
        n=len(pairs),
        stance_kappa=_kappa(stance_a, stance_b),
        voice_kappa=_kappa(voice_a, voice_b),
        claim_kappa=claim_kappa,
        stance_agreement=sum(x == y for x, y in zip(stance_a, stance_b, strict=True)) / len(pairs),
        voice_agreement=sum(x == y for x, y in zip(voice_a, voice_b, strict=True)) / len(pairs),
        disagreements=disagreements,
    )


def _kappa(first: list, second: list) -> float:
    """Cohen's kappa; 1.0 when both annotators used one identical label throughout."""
    if len(set(first) | set(second)) == 1:
        return 1.0
    return float(cohen_kappa_score(first, second))


def _labels(record: dict) -> dict:
    return {
        "claim_types": sorted(record["claim_types"]),
        "stance": record["stance"],
        "voice": record["voice"],
    }


def labelled_dataset(records: list[dict]) -> tuple[list[str], Targets, list[str]]:
    """Texts, label arrays and document ids of records, in file order."""
    from mineral_stance.labels import targets_from_records

    return (
        [record["text"] for record in records],
        targets_from_records(records),
        [record["doc_id"] for record in records],
    )


def file_sha256(path: str | Path) -> str:
    import hashlib

    return hashlib.sha256(Path(path).read_bytes()).hexdigest()
