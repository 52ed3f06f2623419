"""The annotation round trip: tasks for Label Studio or doccano out, reviewed gold records back.

Out (``mineral-stance export``): one task per sentence, with the model's labels
as pre-annotations the annotator corrects rather than types: Label Studio
``predictions`` (each choice with its probability as ``score``) plus the
labeling configuration generated from the label schema; doccano JSON Lines
whose ``label`` list holds the model's labels as ``task:label`` names
(``stance:oppose``), plus the label definitions to load into the project.

Back (``mineral-stance import``): the tool's export turned into schema records
(``id``, ``doc_id``, ``text``, ``claim_types``, ``stance``, ``voice``), with the
annotator and, where the tool records it, the time. A task with an unknown or
missing label is refused with its task id; nothing is written until every task
is valid.

Label Studio has no notion of our sentence ids, so they travel in the task's
``data`` (``sentence_id``, ``doc_id``, ``kind``, ``start``, ``end``); doccano
keeps them as document metadata.
"""

from __future__ import annotations

import json
import re
import zipfile
from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path
from xml.sax.saxutils import quoteattr

from mineral_stance.annotations import check_record
from mineral_stance.config import ANNOTATIONS_DIR, CLAIM_TYPES, STANCES, VOICES

FORMATS = ("label-studio", "doccano")
SCHEMA_COPY = ANNOTATIONS_DIR / "label-schema.md"
# Label Studio control names: they are the schema's field names
TASKS = {"claim_types": CLAIM_TYPES, "stance": STANCES, "voice": VOICES}
# doccano has one flat label set per project: each label is prefixed by its task
DOCCANO_PREFIX = {"claim_types": "claim", "stance": "stance", "voice": "voice"}
TEXT_NAME = "text"
# fields of a sentence record carried through the tool untouched
CARRIED_FIELDS = ("doc_id", "kind", "start", "end", "source")
MODEL_VERSION = "mineral-stance"
DOCCANO_COLOURS = {
    "claim": "#a33a3a",
    "stance:support": "#2e7d32",
    "stance:oppose": "#c62828",
    "stance:neutral": "#5c6bc0",
    "stance:unrelated": "#9e9e9e",
    "voice": "#6d4c41",
}


class ImportProblems(ValueError):
    """Every task of an export that cannot become a schema record, each with its task id."""

    def __init__(self, path: Path, problems: list[str]):
        self.problems = problems
        listed = "\n".join(f"{path}: {p}" for p in problems[:30])
        more = f"\n… and {len(problems) - 30} more" if len(problems) > 30 else ""
        super().__init__(f"{path}: {len(problems)} task(s) refused\n{listed}{more}")


# --- the sentences to annotate ---------------------------------------------------
def is_sentence_file(path: Path) -> bool:
    """A JSON Lines file of sentence records (``id``, ``doc_id``, ``text``), e.g. from suggest."""
    if path.suffix.lower() != ".jsonl" or not path.is_file():
        return False
    with path.open(encoding="utf-8-sig", errors="replace") as handle:
        for line in handle:
            if line.strip():
                try:
                    first = json.loads(line)
                except json.JSONDecodeError:
                    return False
                return isinstance(first, dict) and {"id", "doc_id", "text"} <= set(first)
    return False


def read_sentences(paths: Iterable[str]) -> tuple[list[dict], list[str]]:
    """Sentence records from sentence files as they are, and from articles by segmenting them.

    Articles are read like ``classify`` reads them (files, folders, globs, any
    format); only body and heading units, the ones the schema annotates, are
    kept. Returns the records and a message for every input that failed.
    """
    from mineral_stance.config import LABELLED_KINDS
    from mineral_stance.inputs import InputProblem, iter_articles
    from mineral_stance.segment import segment_text

    records: list[dict] = []
    problems: list[str] = []
    article_paths = []
    for raw in paths:
        path = Path(raw)
        if not is_sentence_file(path):
            article_paths.append(raw)
            continue
        for number, line in enumerate(path.read_text(encoding="utf-8-sig").splitlines(), 1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
            except json.JSONDecodeError as error:
                problems.append(f"{path}:{number}: bad JSON: {error.msg}")
                continue
            if not isinstance(record, dict) or not isinstance(record.get("text"), str):
                problems.append(f"{path}:{number}: a sentence record needs a text")
                continue
            records.append(record)
    for item in iter_articles(article_paths) if article_paths else []:
        if isinstance(item, InputProblem):
            problems.append(str(item))
            continue
        for unit in segment_text(item.text, item.doc_id):
            if unit.kind in LABELLED_KINDS:
                records.append({**unit.to_record(), "source": item.source})
    return records, problems


# --- out: tasks for review ------------------------------------------------------
def label_definitions(schema_path: Path = SCHEMA_COPY, limit: int = 300) -> dict[str, str]:
    """Each label's definition in the schema, as one line (shown to annotators as hints)."""
    if not schema_path.exists():
        return {}
    text = schema_path.read_text(encoding="utf-8")
    hints = {}
    for name, body in re.findall(r"^- `(\w+)`: (.+?)(?=\n- |\n\n)", text, re.M | re.S):
        line = " ".join(body.split())
        hints[name] = line if len(line) <= limit else line[: limit - 1].rstrip() + "…"
    return hints


def label_studio_config(schema_path: Path = SCHEMA_COPY) -> str:
    """Label Studio labeling configuration XML: the sentence and one choice group per task."""
    hints = label_definitions(schema_path)
    headers = {
        "claim_types": "Claim types (zero, one or several)",
        "stance": "Stance toward the US-led minerals alliance",
        "voice": "Voice",
    }
    lines = [
        "<View>",
        '  <Header value="$doc_id"/>',
        f'  <Text name="{TEXT_NAME}" value="${TEXT_NAME}"/>',
    ]
    for task, names in TASKS.items():
        choice = "multiple" if task == "claim_types" else "single-radio"
        required = "" if task == "claim_types" else ' required="true"'
        lines.append(f"  <Header value={quoteattr(headers[task])}/>")
        lines.append(
            f'  <Choices name="{task}" toName="{TEXT_NAME}" choice="{choice}"'
            f'{required} showInline="true">'
        )
        for name in names:
            hint = f" hint={quoteattr(hints[name])}" if name in hints else ""
            lines.append(f'    <Choice value="{name}"{hint}/>')
        lines.append("  </Choices>")
    lines.append("</View>")
    return "\n".join(lines) + "\n"


def _choice(task: str, choices: list[str], score: float | None = None) -> dict:
    item = {
        "from_name": task,
        "to_name": TEXT_NAME,
        "type": "choices",
        "value": {"choices": choices},
    }
    if score is not None:
        item["score"] = round(score, 4)
    return item


def label_studio_task(record: dict, model_version: str = MODEL_VERSION) -> dict:
    """One task: the sentence in ``data``; the model's labels (if any) as a scored prediction.

    ``record`` is a sentence record with ``id``, ``doc_id``, ``text`` and, when
    the model has labelled it, ``claim_types``, ``stance``, ``voice`` and ``p_*``.
    """
    data = {TEXT_NAME: record["text"], "sentence_id": record["id"]}
    data.update({k: record[k] for k in CARRIED_FIELDS if record.get(k) is not None})
    task: dict = {"data": data}
    if record.get("stance") in STANCES and record.get("voice") in VOICES:
        p = {k[2:]: v for k, v in record.items() if k.startswith("p_")}
        claims = list(record.get("claim_types") or [])
        result = []
        if claims:
            scores = [p[f"claim_{c}"] for c in claims if f"claim_{c}" in p]
            result.append(_choice("claim_types", claims, min(scores) if scores else None))
        for task_name in ("stance", "voice"):
            label = record[task_name]
            result.append(_choice(task_name, [label], p.get(f"{task_name}_{label}")))
        prediction: dict = {"model_version": model_version, "result": result}
        scores = [item["score"] for item in result if "score" in item]
        if scores:
            # the task's score: the least certain of its choices (sort by it to review)
            prediction["score"] = min(scores)
        task["predictions"] = [prediction]
    return task


def doccano_labels(record: dict) -> list[str]:
    """A record's labels as doccano's flat ``task:label`` names."""
    return (
        [f"claim:{c}" for c in record.get("claim_types", [])]
        + ([f"stance:{record['stance']}"] if record.get("stance") else [])
        + ([f"voice:{record['voice']}"] if record.get("voice") else [])
    )


def doccano_line(record: dict) -> dict:
    """One doccano JSONL line: text, pre-annotated labels, and our ids as metadata."""
    line = {TEXT_NAME: record["text"], "label": doccano_labels(record), "sentence_id": record["id"]}
    line.update({k: record[k] for k in CARRIED_FIELDS if record.get(k) is not None})
    if "p_stance_" + str(record.get("stance")) in record:
        line["model_stance_probability"] = round(record[f"p_stance_{record['stance']}"], 4)
    return line


def doccano_label_types() -> list[dict]:
    """The project's label set, in doccano's label import format."""
    labels = []
    for task, names in TASKS.items():
        prefix = DOCCANO_PREFIX[task]
        for name in names:
            text = f"{prefix}:{name}"
            colour = DOCCANO_COLOURS.get(text, DOCCANO_COLOURS.get(prefix, "#607d8b"))
            labels.append({"text": text, "background_color": colour, "text_color": "#ffffff"})
    return labels


def export_paths(out: Path, tool: str) -> dict[str, Path]:
    """Every file an export writes: the tasks and the tool's project configuration."""
    if tool == "label-studio":
        return {"tasks": out, "config": out.with_name(out.stem + ".label-config.xml")}
    return {"tasks": out, "labels": out.with_name(out.stem + ".labels.json")}


def write_export(records: list[dict], out: Path, tool: str) -> dict[str, Path]:
    """Write tasks (and the project configuration) for ``tool``; return the paths written."""
    paths = export_paths(out, tool)
    if tool == "label-studio":
        tasks = [label_studio_task(r) for r in records]
        out.write_text(json.dumps(tasks, ensure_ascii=False, indent=1) + "\n", encoding="utf-8")
        paths["config"].write_text(label_studio_config(), encoding="utf-8")
    elif tool == "doccano":
        with out.open("w", encoding="utf-8") as handle:
            for record in records:
                handle.write(json.dumps(doccano_line(record), ensure_ascii=False) + "\n")
        paths["labels"].write_text(
            json.dumps(doccano_label_types(), ensure_ascii=False, indent=1) + "\n",
            encoding="utf-8",
        )
    else:
        raise ValueError(f"unknown format {tool!r} (use {' or '.join(FORMATS)})")
    return paths


# --- back: a finished export to schema records ------------------------------------
@dataclass
class Imported:
    """Records made from an export, and how many tasks had no finished annotation."""

    records: list[dict]
    unannotated: int


def import_export(path: str | Path, tool: str, annotator: str | None = None) -> Imported:
    """Schema records from a Label Studio JSON export or a doccano JSONL export.

    Raises ``ImportProblems`` naming every task that has an unknown or missing
    label, or whose record would break the schema.
    """
    path = Path(path)
    if tool == "label-studio":
        imported = _from_label_studio(path)
    elif tool == "doccano":
        imported = _from_doccano(path, annotator)
    else:
        raise ValueError(f"unknown format {tool!r} (use {' or '.join(FORMATS)})")
    problems = []
    seen: dict[str, str] = {}
    for task_id, record in imported:
        messages = check_record(record)
        if record["id"] in seen:
            messages.append(f"sentence id {record['id']!r} also in task {seen[record['id']]}")
        seen.setdefault(record["id"], task_id)
        problems += [f"task {task_id}: {m}" for m in messages]
    problems = imported.problems + problems
    if problems:
        raise ImportProblems(path, problems)
    return Imported([record for _, record in imported], imported.unannotated)


class _WithProblems(list):
    """(task id, record) pairs, plus the problems and skipped tasks met while reading."""

    def __init__(self):
        super().__init__()
        self.problems: list[str] = []
        self.unannotated = 0


def _read_json(path: Path):
    try:
        return json.loads(path.read_text(encoding="utf-8-sig"))
    except (OSError, UnicodeDecodeError) as error:
        raise ValueError(f"{path}: cannot read: {error}") from error
    except json.JSONDecodeError as error:
        raise ValueError(f"{path}:{error.lineno}: not a JSON export: {error.msg}") from error


def _from_label_studio(path: Path) -> _WithProblems:
    tasks = _read_json(path)
    if isinstance(tasks, dict):  # a single task
        tasks = [tasks]
    if not isinstance(tasks, list):
        raise ValueError(f"{path}: a Label Studio JSON export is a list of tasks")
    out = _WithProblems()
    for number, task in enumerate(tasks, start=1):
        if not isinstance(task, dict) or not isinstance(task.get("data"), dict):
            out.problems.append(f"task #{number}: not a Label Studio task (no 'data')")
            continue
        task_id = str(task.get("id", f"#{number}"))
        annotation = _chosen_annotation(task.get("annotations") or [])
        if annotation is None:
            out.unannotated += 1
            continue
        labels, messages = _labels_from_results(annotation.get("result") or [])
        if messages:
            out.problems += [f"task {task_id}: {m}" for m in messages]
            continue
        data = task["data"]
        doc_id = str(data.get("doc_id") or "label-studio")
        record = {
            "id": str(data.get("sentence_id") or f"{doc_id}:{task_id}"),
            "doc_id": doc_id,
            "text": data.get(TEXT_NAME),
            **labels,
            **{k: data[k] for k in CARRIED_FIELDS if k != "doc_id" and k in data},
            "annotator": _annotator(annotation.get("completed_by")),
        }
        when = annotation.get("updated_at") or annotation.get("created_at")
        if when:
            record["annotated_at"] = when
        out.append((task_id, record))
    return out


def _chosen_annotation(annotations: list) -> dict | None:
    """The ground-truth annotation if one is marked, else the latest one not cancelled."""
    done = [a for a in annotations if isinstance(a, dict) and not a.get("was_cancelled")]
    if not done:
        return None
    truth = [a for a in done if a.get("ground_truth")]
    pool = truth or done
    return max(pool, key=lambda a: str(a.get("updated_at") or a.get("created_at") or ""))


def _annotator(completed_by) -> str:
    """Label Studio writes a user id, or (some versions) the user as an object."""
    if isinstance(completed_by, dict):
        return str(completed_by.get("email") or completed_by.get("id") or "label-studio")
    return f"label-studio-user-{completed_by}" if completed_by is not None else "label-studio"


def _labels_from_results(results: list) -> tuple[dict, list[str]]:
    """claim_types, stance and voice from ``choices`` results; what is wrong otherwise."""
    chosen: dict[str, list[str]] = {}
    messages = []
    for item in results:
        if not isinstance(item, dict) or item.get("type") != "choices":
            continue  # e.g. a free-text note the project added
        task = item.get("from_name")
        if task not in TASKS:
            messages.append(f"unknown control {task!r} (expected {', '.join(TASKS)})")
            continue
        chosen.setdefault(task, []).extend((item.get("value") or {}).get("choices") or [])
    return _check_labels(chosen, messages)


def _check_labels(chosen: dict[str, list[str]], messages: list[str]) -> tuple[dict, list[str]]:
    for task, names in chosen.items():
        for name in names:
            if name not in TASKS[task]:
                expected = ", ".join(TASKS[task])
                messages.append(f"unknown {task} label {name!r} (expected one of {expected})")
    for task in ("stance", "voice"):
        if len(chosen.get(task, [])) != 1:
            found = chosen.get(task, [])
            messages.append(f"needs exactly one {task}, found {len(found)}: {found}")
    if messages:
        return {}, messages
    claims = chosen.get("claim_types", [])
    return {
        "claim_types": [c for c in CLAIM_TYPES if c in claims],
        "stance": chosen["stance"][0],
        "voice": chosen["voice"][0],
    }, []


def _doccano_files(path: Path, annotator: str | None) -> list[tuple[str, str, list[str]]]:
    """(annotator, where, lines) per user file: doccano zips one ``USER.jsonl`` per annotator
    unless the project shares annotations, when it writes one JSONL file."""
    try:
        if path.suffix.lower() != ".zip":
            lines = path.read_text(encoding="utf-8-sig").splitlines()
            return [(annotator or path.stem, str(path), lines)]
        with zipfile.ZipFile(path) as archive:
            files = []
            for name in archive.namelist():
                user = Path(name).stem
                if name.endswith(".jsonl") and annotator in (None, user):
                    text = archive.read(name).decode("utf-8-sig")
                    files.append((user, f"{path}!{name}", text.splitlines()))
            return files
    except (OSError, UnicodeDecodeError, zipfile.BadZipFile) as error:
        raise ValueError(f"{path}: cannot read: {error}") from error


def _from_doccano(path: Path, annotator: str | None) -> _WithProblems:
    out = _WithProblems()
    for user, where, lines in _doccano_files(path, annotator):
        _read_doccano_lines(lines, where if where != str(path) else "", user, out)
    return out


def _read_doccano_lines(lines: list[str], where: str, annotator: str, out: _WithProblems) -> None:
    prefix_where = f"{where} " if where else ""
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            item = json.loads(line)
        except json.JSONDecodeError as error:
            out.problems.append(f"{prefix_where}line {number}: bad JSON: {error.msg}")
            continue
        if not isinstance(item, dict):
            out.problems.append(f"{prefix_where}line {number}: not a JSON object")
            continue
        task_id = f"{item.get('id', '?')} ({prefix_where}line {number})"
        meta = {**(item.get("meta") or {}), **item}  # metadata: nested (old) or top level
        labels = item.get("label", item.get("labels"))
        if not labels:
            out.unannotated += 1
            continue
        chosen: dict[str, list[str]] = {}
        messages = []
        by_prefix = {prefix: task for task, prefix in DOCCANO_PREFIX.items()}
        for label in labels:
            prefix, _, name = str(label).partition(":")
            if prefix not in by_prefix or not name:
                messages.append(f"unknown label {label!r} (expected claim:…, stance:… or voice:…)")
                continue
            chosen.setdefault(by_prefix[prefix], []).append(name)
        labels_dict, messages = _check_labels(chosen, messages)
        if messages:
            out.problems += [f"task {task_id}: {m}" for m in messages]
            continue
        doc_id = str(meta.get("doc_id") or "doccano")
        record = {
            "id": str(meta.get("sentence_id") or f"{doc_id}:{item.get('id', number)}"),
            "doc_id": doc_id,
            "text": item.get(TEXT_NAME),
            **labels_dict,
            **{k: meta[k] for k in CARRIED_FIELDS if k != "doc_id" and k in meta},
            "annotator": annotator,
        }
        out.append((task_id, record))


def write_records(records: Iterable[dict], out: Path, append: bool = False) -> tuple[int, int]:
    """Write schema records as JSON Lines; with ``append``, skip ids already in ``out``.

    Returns (written, skipped as already present). Nothing already in ``out`` is changed.
    """
    existing: set[str] = set()
    if append and out.exists():
        for line in out.read_text(encoding="utf-8-sig").splitlines():
            if line.strip():
                try:
                    existing.add(json.loads(line)["id"])
                except (json.JSONDecodeError, KeyError, TypeError):
                    continue
    written = skipped = 0
    needs_newline = append and out.exists() and not out.read_bytes().endswith(b"\n")
    with out.open("a" if append else "w", encoding="utf-8") as handle:
        if needs_newline and out.stat().st_size:
            handle.write("\n")
        for record in records:
            if record["id"] in existing:
                skipped += 1
                continue
            handle.write(json.dumps(record, ensure_ascii=False) + "\n")
            written += 1
    return written, skipped
