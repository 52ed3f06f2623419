"""The collected corpus: article files with a small header, and near-duplicate detection.

Each article of the annotated corpus is one UTF-8 file in ``annotations/articles/``:

    source: https://example.com/news/123.html
    outlet: 自由時報
    date: 2025-10-12
    script: traditional
    perspective: taiwan
    title: 中國稀土管制 美日加速結盟
    ---
    The article's own words, one paragraph a line.

The header says where the excerpt came from and what kind of voice it is; the
text below ``---`` is what the segmenter cuts into sentence units (offsets point
into it). The same wire story is often reprinted by several outlets and
mirrored in the other Chinese script, so duplicates are found on text
normalised to one script, and copies of one story share a ``story`` key that
keeps them on one side of every evaluation split.
"""

from __future__ import annotations

import csv
import hashlib
import re
import unicodedata
from dataclasses import asdict, dataclass, fields
from functools import lru_cache
from pathlib import Path

from mineral_stance.config import ARTICLES_DIR, PERSPECTIVES, SCRIPTS

HEADER_FIELDS = ("source", "outlet", "date", "script", "perspective", "title")
REQUIRED_FIELDS = ("source", "outlet", "date", "script", "perspective")
HEADER_END = "---"
DATE_PATTERN = re.compile(r"^(?:\d{4}(?:-\d{2}(?:-\d{2})?)?|unknown)$")
# character n-grams compared for near-duplicates, and the share of the shorter
# text's n-grams that must recur in the longer one for two texts to be one story
SHINGLE_SIZE = 8
DUPLICATE_CONTAINMENT = 0.5


class ArticleFileError(ValueError):
    """An article file whose header is missing or malformed; the message names file and line."""


@dataclass(frozen=True)
class ArticleMeta:
    """Where an article came from and what kind of source it is."""

    doc_id: str
    source: str
    outlet: str
    date: str
    script: str
    perspective: str
    title: str = ""


@dataclass(frozen=True)
class ArticleFile:
    """An article file read: its header and its text (everything below the header)."""

    meta: ArticleMeta
    text: str
    path: Path


def doc_id_for_source(perspective: str, source: str) -> str:
    """A stable, readable identifier: the perspective and a hash of the address."""
    digest = hashlib.sha1(source.strip().encode("utf-8")).hexdigest()[:10]
    return f"{perspective.replace('_', '-')}-{digest}"


def read_article_file(path: str | Path) -> ArticleFile:
    """Parse the header and text of one article file, refusing anything malformed."""
    path = Path(path)
    raw = path.read_text(encoding="utf-8")
    lines = raw.split("\n")
    header: dict[str, str] = {}
    for number, line in enumerate(lines, start=1):
        if line.strip() == HEADER_END:
            text = "\n".join(lines[number:]).strip("\n")
            break
        if not line.strip():
            continue
        key, sep, value = line.partition(":")
        key = key.strip().lower()
        if not sep or key not in HEADER_FIELDS:
            raise ArticleFileError(f"{path}:{number}: expected 'field: value' with a field of "
                                   f"{', '.join(HEADER_FIELDS)}, or '{HEADER_END}'")
        if key in header:
            raise ArticleFileError(f"{path}:{number}: field '{key}' given twice")
        header[key] = value.strip()
    else:
        raise ArticleFileError(f"{path}: no '{HEADER_END}' line ends the header")
    problems = header_problems(header)
    if problems:
        raise ArticleFileError(f"{path}: {'; '.join(problems)}")
    if not text.strip():
        raise ArticleFileError(f"{path}: the article has no text below the header")
    meta = ArticleMeta(doc_id=path.stem, title=header.get("title", ""),
                       **{key: header[key] for key in REQUIRED_FIELDS})
    return ArticleFile(meta=meta, text=text, path=path)


def header_problems(header: dict[str, str]) -> list[str]:
    """What is wrong with a header's values (empty list when nothing is)."""
    problems = [f"missing field '{key}'" for key in REQUIRED_FIELDS if not header.get(key)]
    if header.get("script") and header["script"] not in SCRIPTS:
        problems.append(f"script '{header['script']}' is not one of {', '.join(SCRIPTS)}")
    if header.get("perspective") and header["perspective"] not in PERSPECTIVES:
        problems.append(f"perspective '{header['perspective']}' is not one of "
                        f"{', '.join(PERSPECTIVES)}")
    if header.get("date") and not DATE_PATTERN.match(header["date"]):
        problems.append(f"date '{header['date']}' is not YYYY, YYYY-MM, YYYY-MM-DD or unknown")
    if header.get("source") and not header["source"].startswith(("http://", "https://")):
        problems.append(f"source '{header['source']}' is not a web address")
    return problems


def article_paths(directory: Path = ARTICLES_DIR) -> list[Path]:
    """The article files of the corpus, in name order."""
    return sorted(directory.glob("*.txt"))


def read_corpus_articles(directory: Path = ARTICLES_DIR) -> list[ArticleFile]:
    """Every article file of the corpus, parsed."""
    return [read_article_file(path) for path in article_paths(directory)]


# --- Near-duplicates -------------------------------------------------------------


@lru_cache(maxsize=1)
def _to_simplified():
    import opencc

    return opencc.OpenCC("t2s").convert


def normalise_for_comparison(text: str) -> str:
    """One script, no case, no spaces or punctuation: what two copies of a story share."""
    text = _to_simplified()(unicodedata.normalize("NFKC", text))
    return "".join(ch for ch in text.lower() if ch.isalnum())


def shingles(text: str, size: int = SHINGLE_SIZE) -> frozenset[str]:
    """The set of character n-grams of normalised text."""
    norm = normalise_for_comparison(text)
    return frozenset(norm[i : i + size] for i in range(max(1, len(norm) - size + 1)))


def containment(first: frozenset[str], second: frozenset[str]) -> float:
    """Share of the smaller set found in the larger: 1.0 when one text contains the other."""
    if not first or not second:
        return 0.0
    return len(first & second) / min(len(first), len(second))


def near_duplicate_pairs(
    texts: dict[str, str], threshold: float = DUPLICATE_CONTAINMENT
) -> list[tuple[str, str, float]]:
    """Pairs of ids whose texts share at least ``threshold`` of the shorter one's n-grams."""
    sets = {key: shingles(text) for key, text in texts.items()}
    keys = sorted(sets)
    pairs = []
    for i, first in enumerate(keys):
        for second in keys[i + 1 :]:
            score = containment(sets[first], sets[second])
            if score >= threshold:
                pairs.append((first, second, round(score, 3)))
    return pairs


def story_groups(ids: list[str], pairs: list[tuple[str, str, float]]) -> dict[str, str]:
    """id → story key: ids linked by near-duplicate pairs share the smallest id of their group."""
    parent = {key: key for key in ids}

    def root(key: str) -> str:
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    for first, second, _ in pairs:
        a, b = root(first), root(second)
        if a != b:
            parent[max(a, b)] = min(a, b)
    return {key: root(key) for key in ids}


# --- Manifest --------------------------------------------------------------------


@dataclass(frozen=True)
class ManifestRow:
    """One line of ``annotations/articles/manifest.csv``."""

    doc_id: str
    file: str
    source: str
    outlet: str
    date: str
    script: str
    perspective: str
    title: str
    story: str
    characters: int


def build_manifest(articles: list[ArticleFile]) -> list[ManifestRow]:
    """Manifest rows, with the story key from near-duplicate detection."""
    texts = {article.meta.doc_id: article.text for article in articles}
    stories = story_groups(list(texts), near_duplicate_pairs(texts))
    return [
        ManifestRow(file=article.path.name, story=stories[article.meta.doc_id],
                    characters=len(article.text), **asdict(article.meta))
        for article in articles
    ]


def write_manifest(rows: list[ManifestRow], path: Path) -> None:
    """Write the manifest as CSV (UTF-8), one row an article."""
    names = [field.name for field in fields(ManifestRow)]
    with open(path, "w", encoding="utf-8", newline="") as handle:
        writer = csv.DictWriter(handle, fieldnames=names)
        writer.writeheader()
        for row in rows:
            writer.writerow(asdict(row))


def read_manifest(path: Path = ARTICLES_DIR / "manifest.csv") -> list[dict[str, str]]:
    """Rows of the articles manifest."""
    with open(path, encoding="utf-8", newline="") as handle:
        return list(csv.DictReader(handle))
