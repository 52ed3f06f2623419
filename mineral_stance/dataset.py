"""The gold corpus as a Hugging Face ``datasets.Dataset``, with the columns splits need.

Every gold sentence (``annotations/gold.jsonl``) is joined with what is known of
its article: outlet, web site, perspective, script, title and story (copies of
one story, found by near-duplicate detection). Evaluation must say how a model
does on an outlet it has never read, so ``fold_group`` ties together every
article that shares an outlet, a web site or a story; splitting by it keeps
articles whole, each outlet on one side, and copies of one story together.
"""

from __future__ import annotations

from collections.abc import Iterator
from pathlib import Path
from urllib.parse import urlsplit

import numpy as np
import pandas as pd

from mineral_stance.annotations import load_records
from mineral_stance.articles import read_manifest
from mineral_stance.config import (
    ARTICLES_DIR,
    CLAIM_TYPES,
    GOLD_PATH,
    PERSPECTIVES,
    SCRIPTS,
    SEEDS_DIR,
    STANCES,
    VOICES,
)
from mineral_stance.corpus import load_manifest

ARTICLE_COLUMNS = ("doc_id", "outlet", "site", "perspective", "script", "date", "title", "story")
# second-level labels under which a site's own name sits one level deeper (udn.com.tw, bbc.co.uk)
_SECOND_LEVEL = {"com", "net", "org", "gov", "edu", "co", "ac", "or", "ne", "go", "idv", "gob"}


def site_of(address: str) -> str:
    """The registrable part of a web address's host: news.ltn.com.tw → ltn.com.tw."""
    host = urlsplit(address).hostname or ""
    labels = host.lower().split(".")
    if len(labels) >= 3 and labels[-2] in _SECOND_LEVEL and len(labels[-1]) == 2:
        return ".".join(labels[-3:])
    return ".".join(labels[-2:])


def article_table(articles_dir: Path = ARTICLES_DIR, seeds_dir: Path = SEEDS_DIR) -> pd.DataFrame:
    """One row per article (seeds and collected corpus) with the columns in ARTICLE_COLUMNS."""
    rows = []
    for seed in load_manifest(seeds_dir):
        rows.append({"doc_id": seed["doc_id"], "outlet": seed["outlet"], "site": "",
                     "perspective": seed["corpus_perspective"], "script": seed["script"],
                     "date": seed["date"], "title": seed["title"], "story": seed["doc_id"]})
    manifest = articles_dir / "manifest.csv"
    if manifest.exists():
        for row in read_manifest(manifest):
            rows.append({"doc_id": row["doc_id"], "outlet": row["outlet"],
                         "site": site_of(row["source"]), "perspective": row["perspective"],
                         "script": row["script"], "date": row["date"], "title": row["title"],
                         "story": row["story"]})
    return pd.DataFrame(rows, columns=list(ARTICLE_COLUMNS))


def outlet_key(outlet: str) -> str:
    """An outlet's name without the platform account or section: 网易号·某某 → 网易号."""
    return outlet.split("·")[0].split("(")[0].split("（")[0].strip().lower()


def fold_groups(articles: pd.DataFrame) -> dict[str, str]:
    """doc_id → group: articles linked by a shared outlet, site or story are one group."""
    parent: dict[str, str] = {}

    def root(key: str) -> str:
        parent.setdefault(key, key)
        while parent[key] != key:
            parent[key] = parent[parent[key]]
            key = parent[key]
        return key

    def join(a: str, b: str) -> None:
        ra, rb = root(a), root(b)
        if ra != rb:
            parent[max(ra, rb)] = min(ra, rb)

    for row in articles.itertuples():
        doc = f"doc:{row.doc_id}"
        join(doc, f"outlet:{outlet_key(row.outlet)}")
        join(doc, f"story:{row.story}")
        if row.site:
            join(doc, f"site:{row.site}")
    return {row.doc_id: root(f"doc:{row.doc_id}").split(":", 1)[1] for row in articles.itertuples()}


def corpus_frame(gold_path: Path = GOLD_PATH, articles_dir: Path = ARTICLES_DIR,
                 strict: bool = True) -> pd.DataFrame:
    """Gold sentences joined with their article's metadata, the fold group and the context.

    An article with no metadata is an error, unless ``strict`` is off: then it is
    its own outlet and fold group, with perspective and script "unknown" (any
    annotation file in the schema can still be cross-validated by document).
    """
    records = load_records(gold_path)
    articles = article_table(articles_dir)
    missing = sorted({r["doc_id"] for r in records} - set(articles["doc_id"]))
    if missing and strict:
        raise ValueError(f"{gold_path}: no article metadata for doc_id(s) {', '.join(missing[:5])}")
    unknown = pd.DataFrame({"doc_id": missing, "outlet": missing, "site": "",
                            "perspective": "unknown", "script": "unknown", "date": "",
                            "title": "", "story": missing})
    articles = pd.concat([articles, unknown], ignore_index=True) if missing else articles
    groups = fold_groups(articles)
    articles = articles.set_index("doc_id")
    frame = pd.DataFrame({
        "id": [r["id"] for r in records],
        "doc_id": [r["doc_id"] for r in records],
        "index": [int(r["id"].rsplit(":", 1)[1]) for r in records],
        "text": [r["text"] for r in records],
        "kind": [r.get("kind", "body") for r in records],
        "claim_types": [list(r["claim_types"]) for r in records],
        "stance": [r["stance"] for r in records],
        "voice": [r["voice"] for r in records],
    })
    frame = frame.join(articles, on="doc_id")
    frame["fold_group"] = frame["doc_id"].map(groups)
    frame = frame.sort_values(["doc_id", "index"], kind="stable").reset_index(drop=True)
    frame["previous"] = frame.groupby("doc_id")["text"].shift(1).fillna("")
    return frame


def corpus_contexts(frame: pd.DataFrame) -> list:
    """Each sentence's context (the sentence before it in its article, the title, and
    the article's doc id)."""
    from mineral_stance.context import Context

    return [
        Context(previous or "", title or "", doc_id)
        for previous, title, doc_id in zip(
            frame["previous"].fillna(""), frame["title"].fillna(""), frame["doc_id"], strict=True
        )
    ]


def cross_validation_data(gold_path: Path = GOLD_PATH, seeds_only: bool = False):
    """Texts, label arrays and the corpus frame (groups, perspective, script) of a gold file.

    Any annotation file in the schema works: sentences of articles without metadata
    form their own groups. ``seeds_only`` keeps the five seed articles alone (the
    gold set as it was before the corpus grew), for before/after comparisons.
    """
    from mineral_stance.labels import targets_from_records

    frame = corpus_frame(gold_path, strict=False)
    if seeds_only:
        seeds = {row["doc_id"] for row in load_manifest()}
        frame = frame[frame["doc_id"].isin(seeds)].reset_index(drop=True)
    return frame["text"].tolist(), targets_from_records(frame.to_dict("records")), frame


def load_corpus(gold_path: Path = GOLD_PATH, articles_dir: Path = ARTICLES_DIR):
    """The gold corpus as a ``datasets.Dataset`` with ClassLabel / Sequence label features.

    Columns: id, doc_id, index, text, kind, claim_types, stance, voice, outlet, site,
    perspective, script, date, title, story, fold_group, previous (the sentence before
    in the same article, for context). Split with :func:`outlet_folds` on ``fold_group``.
    """
    import datasets

    frame = corpus_frame(gold_path, articles_dir)
    string = datasets.Value("string")
    features = datasets.Features({
        "id": string, "doc_id": string, "index": datasets.Value("int32"), "text": string,
        "kind": string,
        "claim_types": datasets.Sequence(datasets.ClassLabel(names=list(CLAIM_TYPES))),
        "stance": datasets.ClassLabel(names=list(STANCES)),
        "voice": datasets.ClassLabel(names=list(VOICES)),
        "outlet": string, "site": string,
        "perspective": datasets.ClassLabel(names=list(PERSPECTIVES)),
        "script": datasets.ClassLabel(names=list(SCRIPTS)),
        "date": string, "title": string, "story": string, "fold_group": string,
        "previous": string,
    })
    return datasets.Dataset.from_pandas(frame[list(features)], features=features,
                                        preserve_index=False)


def outlet_folds(groups: list[str] | np.ndarray, n_folds: int = 5,
                 ) -> Iterator[tuple[np.ndarray, np.ndarray]]:
    """Group k-fold: (train, test) index arrays, every group wholly on one side.

    Groups are dealt largest first to the fold with the fewest sentences, so folds
    are of about equal size and the split does not depend on input order.
    """
    groups = np.asarray(groups)
    names, counts = np.unique(groups, return_counts=True)
    if len(names) < n_folds:
        raise ValueError(f"{len(names)} groups cannot make {n_folds} folds")
    sizes = np.zeros(n_folds, dtype=int)
    fold_of: dict[str, int] = {}
    for position in np.lexsort((names, -counts)):
        fold = int(sizes.argmin())
        fold_of[names[position]] = fold
        sizes[fold] += counts[position]
    folds = np.array([fold_of[group] for group in groups])
    for fold in range(n_folds):
        yield np.flatnonzero(folds != fold), np.flatnonzero(folds == fold)


def held_out_split(dataset, fold: int = 0, n_folds: int = 5):
    """A ``datasets.DatasetDict`` with ``train`` and ``test`` for one outlet-held-out fold."""
    import datasets

    train, test = list(outlet_folds(dataset["fold_group"], n_folds))[fold]
    return datasets.DatasetDict({"train": dataset.select(train), "test": dataset.select(test)})
