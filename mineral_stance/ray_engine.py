"""Scale-out: ``classify --engine ray`` runs the batch as a Ray Data pipeline.

For corpora beyond one machine (a think-tank batch of 10,000 articles is about
300,000 sentences: hours on one laptop). The same classification as the local
path, spread over a Ray cluster:

1. the driver lists the input files (``inputs.discover``) and, with
   ``resume``, the articles already in the output folder;
2. Ray tasks read and segment the files in parallel (one file per row, every
   format ``classify`` reads), one row per article;
3. an actor pool labels the articles: each actor loads the model once and
   labels batches of articles with ``classify_unit_groups``, as the local path does;
4. each actor writes every labelled batch as one shard (``part-*.parquet`` or
   ``part-*.jsonl``) into the output folder, written under a temporary name and
   renamed, so a shard holds whole articles or is absent: an interrupted run
   resumes by skipping the articles of the shards already there.

The records in the shards are the local path's records (one per unit, with
``source``). The output folder must be one every node can write (a shared
filesystem) when the cluster has more than one machine.

It connects to the cluster named by ``RAY_ADDRESS`` (``ray start --head`` on
one machine, ``ray start --address=HEAD:6379`` on the others) and starts a
local Ray otherwise. Python recipe::

    from mineral_stance.ray_engine import classify_with_ray
    counts = classify_with_ray(["corpus/"], "labels/", backend="onnx")
"""

from __future__ import annotations

import importlib.util
import json
import os
import shutil
import uuid
from collections.abc import Callable
from pathlib import Path

import pandas as pd

from mineral_stance.batch import BatchCounts

SHARD_FORMATS = ("parquet", "jsonl")
SHARD_PREFIX = "part-"
READ_TASK_CPUS = 0.5


# a Ray run reports what it did exactly as the local engine does
RayCounts = BatchCounts


# --- The output folder ---------------------------------------------------------------


def shard_paths(out_dir: Path) -> list[Path]:
    return sorted(p for fmt in SHARD_FORMATS for p in Path(out_dir).glob(f"{SHARD_PREFIX}*.{fmt}"))


def read_shards(out_dir: Path) -> pd.DataFrame:
    """Every record in the output folder's shards, as one table (shard order)."""
    frames = []
    for path in shard_paths(out_dir):
        if path.suffix == ".parquet":
            frames.append(pd.read_parquet(path))
        else:
            frames.append(pd.read_json(path, lines=True, dtype={"doc_id": str}, precise_float=True))
    return pd.concat(frames, ignore_index=True) if frames else pd.DataFrame()


def finished_doc_ids(out_dir: Path) -> set[str]:
    """doc_ids in the shards already written (each shard holds whole articles)."""
    done: set[str] = set()
    for path in shard_paths(out_dir):
        if path.suffix == ".parquet":
            done |= set(pd.read_parquet(path, columns=["doc_id"])["doc_id"])
        else:
            with open(path, encoding="utf-8") as handle:
                done |= {json.loads(line)["doc_id"] for line in handle if line.strip()}
    return done


def write_shard(records: list[dict], out_dir: Path, shard_format: str) -> Path:
    """One shard, written under a hidden temporary name and renamed into place."""
    name = f"{SHARD_PREFIX}{uuid.uuid4().hex}.{shard_format}"
    temporary = Path(out_dir) / f".{name}.tmp"
    if shard_format == "parquet":
        pd.DataFrame(records).to_parquet(temporary, index=False)
    else:
        with open(temporary, "w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(record, ensure_ascii=False) + "\n")
    os.replace(temporary, Path(out_dir) / name)
    return Path(out_dir) / name


def staging_dir(out_dir: Path) -> Path:
    """Where an --overwrite run writes its shards until it succeeds (hidden, beside the old)."""
    return out_dir.with_name(f".{out_dir.name}.overwrite")


def replace_output(out_dir: Path, staging: Path) -> None:
    """Put the shards of a finished --overwrite run in place of the old ones.

    A run that labelled nothing (no readable input) keeps the old output, as the
    local engine does. Otherwise the folders are swapped by two renames, and any
    file of the user's in the old folder that is not a shard is moved across;
    until the old folder is deleted at the end it stays, hidden, beside the new.
    """
    if not shard_paths(staging):
        shutil.rmtree(staging, ignore_errors=True)
        return
    replaced = out_dir.with_name(f".{out_dir.name}.replaced")
    shutil.rmtree(replaced, ignore_errors=True)
    os.replace(out_dir, replaced)
    os.replace(staging, out_dir)
    old_shards = set(shard_paths(replaced))
    for path in replaced.iterdir():
        if path not in old_shards and not path.name.startswith(f".{SHARD_PREFIX}"):
            os.replace(path, out_dir / path.name)
    shutil.rmtree(replaced)


# --- The pipeline's steps (run in Ray workers) -----------------------------------------


def read_and_segment(row: dict, options: dict) -> list[dict]:
    """One input file -> one row per article (units as JSON), or one row per problem."""
    from mineral_stance.inputs import InputProblem, _read_file
    from mineral_stance.segment import segment_text

    rows = []
    items = _read_file(
        Path(row["path"]),
        row["key"],
        options["text_field"],
        options["id_field"],
        options["text_column"],
        options["max_bytes"],
    )
    done = options["done"]
    for item in items:
        if isinstance(item, InputProblem):
            rows.append({"doc_id": "", "source": "", "units": "", "problem": str(item)})
        elif item.doc_id in done:
            rows.append({"doc_id": item.doc_id, "source": "", "units": "", "problem": "skipped"})
        else:
            units = [unit.to_record() for unit in segment_text(item.text, item.doc_id)]
            units_json = json.dumps(units, ensure_ascii=False)
            rows.append(
                {"doc_id": item.doc_id, "source": item.source, "units": units_json, "problem": ""}
            )
    return rows


class Labeller:
    """A Ray actor: loads the model once, labels batches of articles, writes a shard each."""

    def __init__(self, options: dict):
        from mineral_stance.predict import load_classifier

        self.options = options
        self.classifier = load_classifier(
            options["model"],
            threads=options["threads"],
            backend=options["backend"],
            precision=options["precision"],
        )
        if options["batch_size"] is not None:  # else the backend's own default
            self.classifier.batch_size = options["batch_size"]

    def __call__(self, batch: pd.DataFrame) -> pd.DataFrame:
        from mineral_stance.segment import Unit

        articles = batch[batch["problem"] == ""]
        groups = [
            [Unit(**{k: v for k, v in unit.items() if k != "id"}) for unit in json.loads(units)]
            for units in articles["units"]
        ]
        labelled = self.classifier.classify_unit_groups(
            groups, min_confidence=self.options["min_confidence"]
        )
        records = []
        for source, article_records in zip(articles["source"], labelled, strict=True):
            for record in article_records:
                record["source"] = source
            records.extend(article_records)
        if records:
            write_shard(records, Path(self.options["out_dir"]), self.options["shard_format"])
        return pd.DataFrame(
            {
                "doc_id": batch["doc_id"],
                "problem": batch["problem"],
                "sentences": [len(json.loads(units)) if units else 0 for units in batch["units"]],
            }
        )


# --- The driver -----------------------------------------------------------------------


def connect(num_cpus: int | None = None) -> None:
    """Join the cluster in RAY_ADDRESS, or start a local Ray (``num_cpus`` cores)."""
    import logging

    import ray

    if ray.is_initialized():
        return
    if os.environ.get("RAY_ADDRESS"):
        ray.init(logging_level=logging.WARNING)
    else:
        ray.init(num_cpus=num_cpus, include_dashboard=False, logging_level=logging.WARNING)


def classify_with_ray(
    paths: list[str],
    out_dir: str | Path,
    model: str | Path | None = None,
    backend: str = "torch",
    precision: str | None = None,
    min_confidence: float | None = None,
    shard_format: str = "parquet",
    resume: bool = False,
    actors: int | None = None,
    threads: int | None = None,
    articles_per_batch: int = 16,
    batch_size: int | None = None,
    text_field: str = "text",
    id_field: str | None = None,
    text_column: str = "text",
    num_cpus: int | None = None,
    progress: bool = True,
    on_problem: Callable[[str], None] | None = None,
    overwrite: bool = False,
) -> RayCounts:
    """Label every article of ``paths`` on Ray; shards of records in ``out_dir``.

    ``actors`` labelling actors (default: one per two CPUs of the cluster), each on
    ``threads`` threads (default: the CPUs per actor). Doc ids are made unique
    within each file; ids given by ``id_field`` that repeat across files stay as they are.
    ``overwrite`` replaces the shards already in ``out_dir``, and only once the new
    run has succeeded (see ``replace_output``).
    """
    if resume and overwrite:
        raise ValueError("use either --resume or --overwrite, not both")
    if overwrite and shard_paths(Path(out_dir)):
        staging = staging_dir(Path(out_dir))
        shutil.rmtree(staging, ignore_errors=True)  # left by a run that was killed
        try:
            counts = classify_with_ray(
                paths, staging, model=model, backend=backend, precision=precision,
                min_confidence=min_confidence, shard_format=shard_format, actors=actors,
                threads=threads, articles_per_batch=articles_per_batch, batch_size=batch_size,
                text_field=text_field, id_field=id_field, text_column=text_column,
                num_cpus=num_cpus, progress=progress, on_problem=on_problem,
            )
        except BaseException:  # a failed or interrupted run leaves the old output as it was
            shutil.rmtree(staging, ignore_errors=True)
            raise
        replace_output(Path(out_dir), staging)
        return counts
    from mineral_stance.config import SHIPPED_MODEL_DIR
    from mineral_stance.inputs import DEFAULT_MAX_BYTES, STDIN, InputProblem, discover, file_keys

    if importlib.util.find_spec("ray") is None:
        raise ImportError('the Ray engine needs Ray: pip install "mineral-stance[ray]"')
    if shard_format not in SHARD_FORMATS:
        raise ValueError(f"unknown shard format {shard_format!r} (use parquet or jsonl)")
    from mineral_stance.model_files import validate_model_dir

    # a model that cannot load fails here, with its file named, not as a traceback per actor
    validate_model_dir(model or SHIPPED_MODEL_DIR)
    out_dir = Path(out_dir)
    if out_dir.exists() and not out_dir.is_dir():
        raise ValueError(f"{out_dir}: the Ray engine writes shards into a folder; this is a file")
    if shard_paths(out_dir) and not resume:
        raise ValueError(
            f"{out_dir} already holds shards; use --resume to add the remaining articles "
            "or --overwrite to replace them"
        )
    out_dir.mkdir(parents=True, exist_ok=True)
    for leftover in out_dir.glob(f".{SHARD_PREFIX}*.tmp"):  # from an interrupted run
        leftover.unlink()
    counts = RayCounts()
    report = on_problem or (lambda message: None)
    sources = discover(paths)
    files = []
    for item in sources:
        if isinstance(item, InputProblem):
            counts.failed += 1
            report(str(item))
        elif item == STDIN:
            raise ValueError(
                "the Ray engine reads files; '-' (standard input) needs --engine local"
            )
        else:
            files.append(item)
    if not files:
        return counts
    keys = file_keys(files)

    import ray

    connect(num_cpus)
    cpus = int(ray.cluster_resources().get("CPU", 1))
    # reading and segmenting is light: half a CPU per task, and that half is kept
    # free of actors, or a small cluster would give every CPU to actors and deadlock
    actors = actors or max(1, cpus // 2)
    actor_cpus = max(0.5, (cpus - READ_TASK_CPUS) / actors)
    ray.data.DataContext.get_current().enable_progress_bars = progress
    options = {
        "text_field": text_field,
        "id_field": id_field,
        "text_column": text_column,
        "max_bytes": DEFAULT_MAX_BYTES,
        "done": finished_doc_ids(out_dir) if resume else set(),
    }
    labeller_options = {
        "model": str(model or SHIPPED_MODEL_DIR),
        "backend": backend,
        "precision": precision,
        "min_confidence": min_confidence,
        "threads": threads or max(1, round(actor_cpus)),
        "batch_size": batch_size,
        "out_dir": str(out_dir.resolve()),
        "shard_format": shard_format,
    }
    dataset = (
        ray.data.from_items([{"path": str(p.resolve()), "key": keys[p]} for p in files])
        .flat_map(read_and_segment, fn_kwargs={"options": options}, num_cpus=READ_TASK_CPUS)
        .map_batches(
            Labeller,
            fn_constructor_kwargs={"options": labeller_options},
            batch_size=articles_per_batch,
            batch_format="pandas",
            concurrency=actors,
            num_cpus=actor_cpus,
        )
    )
    for row in dataset.iter_rows():
        if row["problem"] == "skipped":
            counts.skipped += 1
        elif row["problem"]:
            counts.failed += 1
            report(row["problem"])
        else:
            counts.done += 1
            counts.sentences += int(row["sentences"])
    return counts
