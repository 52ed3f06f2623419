"""Find and read the articles of a batch run, turning every bad input into a problem.

``mineral-stance classify PATH...`` labels whole folders of commentary. One bad
file must not stop the batch, so nothing here raises for bad input: readers
yield ``Article``s and ``InputProblem``s (which name the file and, where there is
one, the line), in a stable order, and move on.

Formats, chosen by extension:

* ``.txt``, ``.md``, ``.markdown``: the whole file is one article.
* ``.html``, ``.htm``: the visible text, one line per block element.
* ``.jsonl``: one article per line (a JSON object with a text field).
* ``.csv``: one article per row (a text column).
* ``-``: standard input, one article.

A file named explicitly (or matched by a glob) whose extension is none of
these is read as plain text; in directories only the formats above are picked.
"""

from __future__ import annotations

import codecs
import csv
import errno
import glob
import io
import json
import os
import re
import stat
import sys
from collections import Counter
from collections.abc import Iterable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Literal, TextIO

from bs4 import BeautifulSoup

from mineral_stance.config import SEEDS_DIR
from mineral_stance.corpus import Article, InputError, decode_bytes, seed_doc_ids

TEXT_SUFFIXES = frozenset({".txt", ".md", ".markdown"})
HTML_SUFFIXES = frozenset({".html", ".htm"})
SUPPORTED_SUFFIXES = TEXT_SUFFIXES | HTML_SUFFIXES | {".jsonl", ".csv"}
GLOB_CHARACTERS = frozenset("*?[")
STDIN = "-"
DEFAULT_MAX_BYTES = 50_000_000

Source = Path | Literal["-"]


@dataclass
class InputProblem:
    """An input that could not be read (whole file, or one line of it) and why."""

    source: str
    line: int | None
    message: str

    def __str__(self) -> str:
        where = self.source if self.line is None else f"{self.source}:{self.line}"
        return f"{where}: {self.message}"


# --- Discovery -----------------------------------------------------------------


def discover(
    paths: Iterable[str | Path], recursive: bool = True, exclude: Iterable[Path] = ()
) -> list[Source | InputProblem]:
    """Expand the command-line paths into files to read, in a stable order.

    Files are kept as given (any extension), directories are walked (sorted,
    supported extensions only, hidden files and folders skipped), glob patterns
    are expanded like a shell would, and ``-`` stands for standard input. A path
    that matches nothing, or cannot be looked at (a symlink loop, a folder that
    cannot be entered or listed), becomes an ``InputProblem`` in its place. A
    file reached twice (say by a folder and a glob) is listed once; files in
    ``exclude`` (what this run writes, such as its own output) are left out.
    """
    return [found.source for found in _discover(paths, recursive, exclude)]


@dataclass
class _Found:
    """A file to read with its doc_id key, or a problem in its place."""

    source: Source | InputProblem
    key: str = ""


def _discover(
    paths: Iterable[str | Path], recursive: bool, exclude: Iterable[Path]
) -> list[_Found]:
    excluded = {_real(path) for path in exclude}
    found: list[_Found] = []
    roots: dict[Path, Path | None] = {}  # each file and the folder argument it was found in
    seen: set[str] = set()
    for raw in paths:
        for item, root in _expand(str(raw), recursive):
            if isinstance(item, Path):
                real = _real(item)
                if real in excluded or real in seen:
                    continue
                seen.add(real)
                roots[item] = root
            found.append(_Found(item, "stdin"))
    keys = file_keys(list(roots), roots)
    for f in found:
        if isinstance(f.source, Path):
            f.key = keys[f.source]
    return found


def named_files(paths: Iterable[str | Path]) -> set[str]:
    """Real paths of the files named on the command line or matched by a glob (not walked)."""
    named = set()
    for raw in map(str, paths):
        if raw == STDIN:
            continue
        for item in glob.glob(raw, recursive=True) if GLOB_CHARACTERS & set(raw) else [raw]:
            if os.path.isfile(item):
                named.add(_real(Path(item)))
    return named


def _real(path: Path) -> str:
    """A path's real location; never raises, even for a symlink loop."""
    return os.path.realpath(os.path.abspath(path))


def _expand(raw: str, recursive: bool) -> list[tuple[Source | InputProblem, Path | None]]:
    """What one command-line argument stands for, each file with the folder it was found in."""
    if raw == STDIN:
        return [(STDIN, None)]
    try:
        if GLOB_CHARACTERS & set(raw) and not Path(raw).exists():
            matches = sorted(glob.glob(raw, recursive=True))
            if not matches:
                return [(InputProblem(raw, None, "no files match this pattern"), None)]
            items: list[tuple[Source | InputProblem, Path | None]] = []
            for match in matches:
                path = Path(match)
                items.extend(_walk(path, recursive) if path.is_dir() else [(path, None)])
            return items
        path = Path(raw)
        if path.is_dir():
            return _walk(path, recursive) or [
                (
                    InputProblem(
                        raw, None, f"no {'/'.join(sorted(SUPPORTED_SUFFIXES))} files here"
                    ),
                    None,
                )
            ]
        if path.is_symlink() and not path.exists():
            target = "a symlink loop" if _is_loop(path) else "no such file or directory"
            return [(InputProblem(raw, None, target), None)]
        if path.exists():
            return [(path, None)]
    except OSError as error:  # e.g. a folder on the way that cannot be entered
        return [(InputProblem(raw, None, f"cannot look at this path: {_reason(error)}"), None)]
    return [(InputProblem(raw, None, "no such file or directory"), None)]


def _is_loop(path: Path) -> bool:
    try:
        os.stat(path)
    except OSError as error:
        return error.errno == errno.ELOOP
    return False


def _reason(error: OSError) -> str:
    return error.strerror or str(error)


def _walk(root: Path, recursive: bool) -> list[tuple[Source | InputProblem, Path | None]]:
    """Supported, non-hidden files under ``root``, sorted by their path; unlistable folders
    become problems (os.walk would skip them without a word)."""
    files: list[tuple[Path, Path]] = []
    problems: list[tuple[Source | InputProblem, Path | None]] = []

    def report(error: OSError) -> None:
        where = error.filename or str(root)
        problems.append((InputProblem(str(where), None, f"cannot list: {_reason(error)}"), None))

    for folder, subfolders, names in os.walk(root, onerror=report):
        if recursive:
            subfolders[:] = sorted(name for name in subfolders if not name.startswith("."))
        else:
            subfolders[:] = []
        for name in names:
            path = Path(folder, name)
            if not name.startswith(".") and path.suffix.lower() in SUPPORTED_SUFFIXES:
                files.append((path, root))
    files.sort(key=lambda item: item[0].relative_to(root).parts)
    return [*problems, *files]


# --- Document identifiers --------------------------------------------------------


def file_keys(files: list[Path], roots: dict[Path, Path | None] | None = None) -> dict[Path, str]:
    """A short name per file that does not depend on which other files are in the run.

    A file named on the command line is its stem; a file found in a folder
    given on the command line is its path relative to that folder without the
    extension, ``/`` written ``__`` (``news/cn/report.txt`` → ``cn__report``);
    the seed articles keep their manifest slugs. Adding files never renames
    one already classified, so ``--resume`` recognises it. Only two files whose
    names differ in nothing but the extension (``a.txt`` beside ``a.md``) keep
    their extensions to stay apart.
    """
    roots = roots or {}
    keys = {path: _file_key(path, roots.get(path)) for path in files}
    counts = Counter(keys.values())
    return {path: key + path.suffix if counts[key] > 1 else key for path, key in keys.items()}


def _file_key(path: Path, root: Path | None) -> str:
    seed_slug = seed_doc_ids().get(path.name)
    if seed_slug and Path(os.path.abspath(path)).parent == SEEDS_DIR:
        return seed_slug
    if root is None:
        return path.stem
    return path.relative_to(root).with_suffix("").as_posix().replace("/", "__")


def _unique(doc_id: str, used: set[str]) -> str:
    """``doc_id``, or ``doc_id~2``, ``~3``… if an earlier article already has it."""
    candidate, number = doc_id, 1
    while candidate in used:
        number += 1
        candidate = f"{doc_id}~{number}"
    used.add(candidate)
    return candidate


# --- Reading ---------------------------------------------------------------------


def iter_articles(
    paths: Iterable[str | Path],
    text_field: str = "text",
    id_field: str | None = None,
    text_column: str = "text",
    max_bytes: int = DEFAULT_MAX_BYTES,
    stdin: TextIO | None = None,
    recursive: bool = True,
    exclude: Iterable[Path] = (),
) -> Iterator[Article | InputProblem]:
    """Every article in ``paths`` (see ``discover``), and a problem for each bad input.

    ``text_field``/``id_field`` name the JSON Lines keys, ``text_column``/``id_field``
    the CSV columns; without an id, a line's doc_id is ``<file key>:<line number>``
    (JSONL) or ``<file key>:<row number>`` (CSV, first data row is 1). A whole-file
    article's doc_id is its file key (see ``file_keys``); standard input is
    ``stdin`` (read from ``sys.stdin`` unless ``stdin`` is given). Doc ids are
    unique in the run: a repeated one gets ``~2``, ``~3``… appended. Files in
    ``exclude`` (the run's own output) are never read.
    """
    used: set[str] = set()
    for found in _discover(paths, recursive, exclude):
        item = found.source
        if isinstance(item, InputProblem):
            yield item
            continue
        if item == STDIN:
            records = _read_stdin(sys.stdin if stdin is None else stdin, max_bytes)
        else:
            records = _read_file(item, found.key, text_field, id_field, text_column, max_bytes)
        for record in records:
            if isinstance(record, Article):
                record.doc_id = _unique(record.doc_id, used)
            yield record


def _read_file(
    path: Path,
    key: str,
    text_field: str,
    id_field: str | None,
    text_column: str,
    max_bytes: int,
) -> Iterator[Article | InputProblem]:
    """Read one file's bytes (refusing huge or unreadable ones) and hand them to its format."""
    source = str(path)
    try:
        kind = _file_kind(os.stat(path).st_mode)
        if kind:  # a pipe would block forever, /dev/zero never ends
            yield InputProblem(source, None, f"not a regular file ({kind}); use - for a pipe")
            return
        with open(path, "rb") as handle:  # the limit holds while reading, whatever stat says
            data = handle.read(max_bytes + 1)
        if len(data) > max_bytes:
            size = max(os.stat(path).st_size, len(data))
            yield InputProblem(source, None, f"too large: {_size(size)} > limit {_size(max_bytes)}")
            return
    except OSError as error:
        reason = "a symlink loop" if error.errno == errno.ELOOP else _reason(error)
        yield InputProblem(source, None, f"cannot read: {reason}")
        return
    suffix = path.suffix.lower()
    try:
        if suffix == ".jsonl":
            yield from read_jsonl(data, source, key, text_field, id_field)
        elif suffix == ".csv":
            yield from read_csv(data, source, key, text_column, id_field)
        elif suffix in HTML_SUFFIXES:
            yield Article(key, read_html(data, source), source)
        else:
            yield Article(key, decode_bytes(data, source), source)
    except InputError as error:
        yield _problem(error, source)


def _file_kind(mode: int) -> str:
    """What a file that is not a regular file is ("" for a regular file)."""
    kinds = {
        stat.S_ISFIFO: "a named pipe",
        stat.S_ISCHR: "a character device",
        stat.S_ISBLK: "a block device",
        stat.S_ISSOCK: "a socket",
        stat.S_ISDIR: "a directory",
    }
    return next((name for test, name in kinds.items() if test(mode)), "")


def _read_stdin(stream: TextIO, max_bytes: int) -> Iterator[Article | InputProblem]:
    """Standard input as one article; raw bytes when available, so GBK pipes decode too."""
    source = "<stdin>"
    raw = getattr(stream, "buffer", None)
    data = raw.read(max_bytes + 1) if raw is not None else stream.read().encode("utf-8")
    if len(data) > max_bytes:
        yield InputProblem(source, None, f"too large: more than {_size(max_bytes)}")
        return
    try:
        yield Article("stdin", decode_bytes(data, source), source)
    except InputError as error:
        yield _problem(error, source)


def _problem(error: InputError, source: str) -> InputProblem:
    """An ``InputError`` (whose message starts with the source) as a problem."""
    message = str(error).removeprefix(f"{source}: ")
    return InputProblem(source, None, message)


def _size(n: int) -> str:
    """A byte count the way people read it."""
    return f"{n / 1_000_000:.1f} MB" if n >= 100_000 else f"{n:,} bytes"


# --- JSON Lines ------------------------------------------------------------------


def read_jsonl(
    data: bytes, source: str, key: str, text_field: str = "text", id_field: str | None = None
) -> Iterator[Article | InputProblem]:
    """One article per line; a bad line is a problem with its number, not the end."""
    for number, line in _jsonl_lines(data, source):
        if line is None:
            yield InputProblem(source, number, "not valid UTF-8 (the rest of the file is)")
            continue
        if not line.strip():
            continue
        try:
            record = json.loads(line)
        except json.JSONDecodeError as error:
            yield InputProblem(source, number, f"invalid JSON: {error.msg} (column {error.colno})")
            continue
        except RecursionError:
            yield InputProblem(source, number, "invalid JSON: nested too deeply")
            continue
        if not isinstance(record, dict):
            kind = type(record).__name__
            yield InputProblem(source, number, f"expected a JSON object, got {kind}")
            continue
        text = record.get(text_field)
        problem = _text_problem(text, f"field {text_field!r}")
        if text_field not in record:
            problem += f" (fields: {', '.join(sorted(record)) or 'none'})"
        if problem:
            yield InputProblem(source, number, problem)
            continue
        own_id = record.get(id_field) if id_field else None
        surrogate = _surrogate_problem(text, own_id)
        if surrogate:
            yield InputProblem(source, number, surrogate)
            continue
        yield Article(_record_id(own_id, key, number), text, source)


def _jsonl_lines(data: bytes, source: str) -> Iterator[tuple[int, str | None]]:
    """Numbered lines; ``None`` for a line that is not UTF-8 in an otherwise UTF-8 file.

    JSON Lines is UTF-8, so one corrupt line should cost that line only; a file
    that is mostly not UTF-8 is in a legacy encoding and is decoded as a whole.
    """
    lines = data.split(b"\n")
    bad = {number for number, line in enumerate(lines, start=1) if not _is_utf8(line)}
    wide = sum(1 for line in lines if not line.isascii())
    if not bad or len(bad) * 2 >= wide:
        yield from enumerate(decode_bytes(data, source).split("\n"), start=1)
        return
    for number, line in enumerate(lines, start=1):
        yield number, None if number in bad else line.decode("utf-8").removeprefix("\ufeff")


def _is_utf8(data: bytes) -> bool:
    try:
        data.decode("utf-8")
    except UnicodeDecodeError:
        return False
    return True


def _text_problem(text: object, name: str) -> str:
    """Why ``text`` is not usable article text ("" if it is)."""
    if text is None:
        return f"no {name}"
    if not isinstance(text, str):
        return f"{name} is a {type(text).__name__}, not a string"
    if not text.strip():
        return f"{name} is empty"
    return ""


LONE_SURROGATE = re.compile("[\ud800-\udfff]")


def _surrogate_problem(*values: object) -> str:
    """A JSON escape such as ``"\\ud800"`` decodes to a lone surrogate, which no UTF-8
    output can hold; report it here rather than crash when writing ("" if none)."""
    for value in values:
        if isinstance(value, str):
            found = LONE_SURROGATE.search(value)
            if found:
                return (
                    f"a lone surrogate \\u{ord(found.group()):04x} at character {found.start()} "
                    "(not a valid character)"
                )
    return ""


def _record_id(value: object, key: str, number: int) -> str:
    """The record's own id if it has a usable one, else ``<file key>:<number>``."""
    if isinstance(value, str | int) and not isinstance(value, bool) and str(value).strip():
        return str(value).strip()
    return f"{key}:{number}"


# --- CSV -------------------------------------------------------------------------


def read_csv(
    data: bytes, source: str, key: str, text_column: str = "text", id_field: str | None = None
) -> Iterator[Article | InputProblem]:
    """One article per row of ``text_column``; decoded first, since GBK/Big5 CSVs exist."""
    text = decode_bytes(data, source).removeprefix("\ufeff")
    # The default cell limit (128 KB) is below a long article; the limit is global.
    csv.field_size_limit(max(csv.field_size_limit(), len(text)))
    lines = io.StringIO(text, newline="").readlines()  # \n, \r\n or \r; never U+2028
    header_reader = csv.reader(lines[:1])
    header = [name.strip().removeprefix("\ufeff").strip() for name in next(header_reader, [])]
    if text_column not in header:
        columns = ", ".join(repr(name) for name in header) or "none"
        yield InputProblem(source, 1, f"no column {text_column!r} (columns: {columns})")
        return
    text_at = header.index(text_column)
    id_at = header.index(id_field) if id_field in header else None
    row_number = 0
    for start, row in _csv_rows(lines, source):
        if isinstance(row, InputProblem):
            yield row
            continue
        if not any(cell.strip() for cell in row):
            continue  # blank line or a row of empty cells
        row_number += 1
        cell = row[text_at] if text_at < len(row) else ""  # a short row
        problem = _text_problem(cell, f"column {text_column!r}")
        if problem:
            yield InputProblem(source, start, problem)
            continue
        own_id = row[id_at] if id_at is not None and id_at < len(row) else None
        yield Article(_record_id(own_id, key, row_number), cell, source)
    if row_number == 0:
        yield InputProblem(source, None, "no rows after the header")


def _csv_rows(lines: list[str], source: str) -> Iterator[tuple[int, list[str] | InputProblem]]:
    """Rows after the header with the line each starts on.

    The reader is strict, so a quoted field that is never closed, or closed in
    the middle of a later row, is an error instead of silently swallowing the
    rows after it. That row is reported at the line where it starts, and
    reading starts again on the next line, so only the broken row is lost.
    """
    position = 1  # index of the next line to read (the header is line 1)
    while position < len(lines):
        reader = csv.reader(iter(lines[position:]), strict=True)
        while True:
            start = position + reader.line_num + 1
            try:
                row = next(reader)
            except StopIteration:
                return
            except csv.Error as error:
                message = (
                    "a quoted field runs past the end of its row (unclosed quote?)"
                    if reader.line_num + position > start or "end of data" in str(error)
                    else f"malformed CSV: {error}"
                )
                yield start, InputProblem(source, start, message)
                position = start  # start again on the line after the broken row's first
                break
            yield start, row


# --- HTML ------------------------------------------------------------------------

# Elements whose content is not article text.
HTML_DROPPED = ("script", "style", "nav", "footer", "head", "noscript", "template", "svg")
# Elements that start a new line, so the segmenter sees the page's paragraphs.
HTML_BLOCKS = (
    "p", "div", "br", "h1", "h2", "h3", "h4", "h5", "h6", "li", "tr",
    "article", "section", "blockquote", "pre", "table", "ul", "ol", "dl", "dt", "dd",
    "figure", "figcaption", "header", "main", "aside", "hr", "caption",
)  # fmt: skip
HTML_CELLS = ("td", "th")
META_CHARSET = re.compile(rb"""<meta[^>]+charset\s*=\s*["']?\s*([A-Za-z0-9._:-]+)""", re.IGNORECASE)
# Labels that pages use for encodings Python knows under a larger superset.
CHARSET_SUPERSETS = {"gb2312": "gb18030", "gbk": "gb18030", "x-gbk": "gb18030", "big5": "big5hkscs"}
PARAGRAPH = "\u2029"


def read_html(data: bytes, source: str) -> str:
    """The visible text of a page, one line per block element."""
    soup = BeautifulSoup(decode_html(data, source), "html.parser")
    for tag in soup.find_all(HTML_DROPPED):
        tag.decompose()
    for tag in soup.find_all(HTML_BLOCKS):
        tag.insert_before(PARAGRAPH)
        tag.insert_after(PARAGRAPH)
    for tag in soup.find_all(HTML_CELLS):
        tag.insert_after(" ")
    # Whitespace inside a block (source line wrapping) is a space, as in a browser.
    lines = (" ".join(part.split()) for part in soup.get_text().split(PARAGRAPH))
    text = "\n".join(line for line in lines if line)
    if not text:
        raise InputError(f"{source}: no visible text in this page")
    return text


def decode_html(data: bytes, source: str) -> str:
    """Decode by the page's ``<meta charset>``, else by detection.

    A BOM wins over the label, and so do bytes that are valid UTF-8: saved or
    scraped pages are often re-encoded as UTF-8 but keep their old gb2312 label,
    while legacy-encoded Chinese is practically never valid UTF-8.
    """
    if _is_utf8(data) or data.startswith((b"\xff\xfe", b"\xfe\xff")) or b"\x00" in data[:4096]:
        return decode_bytes(data, source)
    match = META_CHARSET.search(data[:4096])
    if match:
        label = match.group(1).decode("ascii").lower()
        try:
            encoding = codecs.lookup(CHARSET_SUPERSETS.get(label, label)).name
            return data.decode(encoding)
        except (LookupError, UnicodeDecodeError):
            pass  # a wrong or unknown label: fall back to detection
    return decode_bytes(data, source)
