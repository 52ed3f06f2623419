"""The output file of a batch run: nothing lost, nothing duplicated, one writer at a time.

Analysts run ``classify`` over folders they cannot re-create, so the output is
handled with care:

- **One writer.** An exclusive lock (``.OUT.lock``, via ``filelock``) is taken
  before the model loads; a second run on the same output is refused.
- **Articles are in or out.** Each finished article is appended in one write,
  synced to disk, and only then recorded in a progress journal
  (``OUT.progress``, one JSON line per article: its doc_id and the byte size
  of the output after it). ``--resume`` cuts the output back to the last size
  the journal vouches for, so an article cut off anywhere (mid-line, at a line
  end, before its doc_id) is redone, never half kept. A run that ends normally
  removes the journal.
- **--overwrite replaces, never deletes first.** The new output is written to
  a hidden staging file beside the old one and moved over it atomically at the
  end; a run that fails (bad model, no readable input, interruption, full disk)
  leaves the old output as it was and no empty file behind.
- **A leftover is never merged silently.** A plain run refuses an output, or
  the Parquet journal or progress journal an interrupted run left, unless
  ``--resume`` or ``--overwrite`` says what to do with it.

Parquet cannot be appended to, so a Parquet run appends to a JSONL journal
(``OUT.partial.jsonl``) and writes the Parquet file from it at the end.
"""

from __future__ import annotations

import json
import os
from pathlib import Path
from typing import BinaryIO, Literal

from filelock import FileLock, Timeout

from mineral_stance.batch import (
    finish_parquet,
    finished_doc_ids,
    journal_path,
    output_format,
    render_article,
    repair_interrupted,
)

Mode = Literal["new", "resume", "overwrite"]


class OutputRefused(ValueError):
    """The output cannot be used as asked (exists, in use, leftover journal): a usage error."""


def write_bytes(handle: BinaryIO, data: bytes) -> None:
    """Every byte written goes through here (one place to inject faults in tests)."""
    handle.write(data)


def lock_path(out: Path) -> Path:
    return out.with_name(f".{out.name}.lock")


def staging_path(out: Path) -> Path:
    """Where an --overwrite run writes until it succeeds (hidden: never read as an input)."""
    return out.with_name(f".{out.stem}.overwrite{out.suffix}")


def progress_path(target: Path) -> Path:
    return target.with_name(target.name + ".progress")


class BatchOutput:
    """Every file a classify run writes for one ``-o OUT``, and how they become the output.

    Use as a context manager around the whole run: entering takes the lock and
    checks (and for ``--resume`` repairs) what is there, before the model loads;
    ``write_article`` appends one finished article; ``commit`` makes the run's
    output final. Leaving without ``commit`` (an error, Ctrl-C) keeps every
    finished article for ``--resume``, or, for ``--overwrite``, the old output.
    """

    def __init__(self, out: Path, mode: Mode):
        self.out = out
        self.mode = mode
        self.format = output_format(out)
        self.work = staging_path(out) if mode == "overwrite" else out
        self.target = journal_path(self.work) if self.format == ".parquet" else self.work
        self.progress = progress_path(self.target)
        self.done_before: set[str] = set()
        self.repaired: str | None = None
        self.written = 0
        self._lock = FileLock(str(lock_path(out)), timeout=0)
        self._handle: BinaryIO | None = None
        self._journal: BinaryIO | None = None
        self._size = 0
        self._base: int | None = None  # output size when this run first wrote
        self._needs_header = False

    def files(self) -> set[Path]:
        """Every file this run may write or read back: none of them is ever an input."""
        files = {self.out, journal_path(self.out), lock_path(self.out)}
        files |= {progress_path(journal_path(self.out)), progress_path(self.out)}
        return files | {self.work, self.target, self.progress}

    # --- before the model loads ----------------------------------------------
    def __enter__(self) -> BatchOutput:
        self.out.parent.mkdir(parents=True, exist_ok=True)
        try:
            self._lock.acquire()
        except Timeout:
            raise OutputRefused(
                f"{self.out} is being written by another mineral-stance run "
                f"(lock {lock_path(self.out)}); wait for it to finish"
            ) from None
        try:
            self._check()
        except BaseException:
            self._lock.release()
            raise
        return self

    def _check(self) -> None:
        if self.out.exists() and not self.out.is_file():
            raise OutputRefused(f"{self.out} is not a regular file")
        leftovers = [p for p in self._leftovers(self.out) if p.exists()]
        if self.mode == "new" and leftovers:
            if self.out in leftovers:
                raise OutputRefused(
                    f"{self.out} exists; use --resume to add the remaining articles "
                    "or --overwrite to replace it"
                )
            raise OutputRefused(
                f"{leftovers[0]} is left from an interrupted run; use --resume to finish it "
                "or --overwrite to start again"
            )
        if self.mode == "overwrite":  # a staging file left by a killed run is ours to drop
            for path in self._leftovers(self.work):
                path.unlink(missing_ok=True)
        if self.mode == "resume":
            self.repaired = self._repair()
            self.done_before = finished_doc_ids(self.work)
        self._size = self.target.stat().st_size if self.target.exists() else 0

    def _leftovers(self, out: Path) -> list[Path]:
        target = journal_path(out) if self.format == ".parquet" else out
        return list(dict.fromkeys([out, target, progress_path(target)]))

    def _repair(self) -> str | None:
        """Cut the output back to its last finished article; return a note if anything was cut."""
        if not self.target.exists():
            return None
        size = self.target.stat().st_size
        if not self.progress.exists():  # a finished run, or one from before the journal
            cut = repair_interrupted(self.target)
            return f"article {cut!r} was cut off and will be redone" if cut else None
        vouched = [end for _, end in read_progress(self.progress) if end <= size]
        keep = max(vouched, default=0)
        if keep < size:
            with open(self.target, "r+b") as handle:
                handle.truncate(keep)
                os.fsync(handle.fileno())
            return f"{size - keep} byte(s) of an unfinished article were removed; it will be redone"
        return None

    # --- during the run ------------------------------------------------------
    def write_article(self, doc_id: str, records: list[dict]) -> None:
        """Append one article's records in one write, sync, then record it as finished."""
        if self._handle is None:
            self._open()
        assert self._handle is not None and self._journal is not None
        data = render_article(records, self.format == ".csv", self._needs_header)
        self._needs_header = False
        encoded = data.encode("utf-8")
        write_bytes(self._handle, encoded)
        self._handle.flush()
        os.fsync(self._handle.fileno())
        self._size += len(encoded)
        entry = json.dumps({"doc_id": doc_id, "end": self._size}, ensure_ascii=False) + "\n"
        write_bytes(self._journal, entry.encode("utf-8"))
        self._journal.flush()
        self.written += 1

    def _open(self) -> None:
        """Open the progress journal (vouching for what is there), then the output."""
        self._base = self._size
        self._journal = open(self.progress, "wb")
        base = json.dumps({"doc_id": None, "end": self._size}) + "\n"
        write_bytes(self._journal, base.encode("utf-8"))
        self._journal.flush()
        os.fsync(self._journal.fileno())
        self._handle = open(self.target, "ab")
        self._needs_header = self._size == 0

    def _close(self) -> None:
        for handle in (self._handle, self._journal):
            if handle is not None:
                handle.close()
        self._handle = self._journal = None

    # --- at the end ----------------------------------------------------------
    def commit(self) -> bool:
        """Make the output final; False (old output kept) when this run produced nothing."""
        self._close()
        if self.format == ".parquet" and (self.target.exists() or self.work.exists()):
            finish_parquet(self.work)
        if not self.work.exists():
            self._drop_own_files()
            return False
        if self.mode == "overwrite":
            for path in self._leftovers(self.out):
                if path != self.out:
                    path.unlink(missing_ok=True)
            self.work.replace(self.out)
        self.progress.unlink(missing_ok=True)
        return True

    def __exit__(self, kind, error, trace) -> None:
        try:
            self._close()
            if kind is not None and issubclass(kind, KeyboardInterrupt | Exception):
                self._abandon()
        finally:
            self._lock.release()

    def _abandon(self) -> None:
        """After a failure: an --overwrite run drops its staging; others keep what finished."""
        if self.mode == "overwrite" or self.written == 0:
            self._drop_own_files()

    def _drop_own_files(self) -> None:
        """Remove what this run created and did not finish, never what was there before."""
        if self.mode == "overwrite":
            for path in self._leftovers(self.work):
                path.unlink(missing_ok=True)
            return
        if self._base is None or self.written:
            return  # never wrote, or finished articles to keep for --resume
        if self._base == 0:  # the output is this run's own and holds no finished article
            self.target.unlink(missing_ok=True)
        elif self.target.exists():
            with open(self.target, "r+b") as handle:
                handle.truncate(self._base)
        self.progress.unlink(missing_ok=True)


def read_progress(path: Path) -> list[tuple[str | None, int]]:
    """(doc_id, output size after it) per finished article; a line cut short is ignored."""
    entries = []
    for line in path.read_bytes().split(b"\n"):
        try:
            entry = json.loads(line)
            entries.append((entry["doc_id"], int(entry["end"])))
        except (ValueError, KeyError, TypeError):
            continue
    return entries
