"""Seconds to segment 1, 10 and 50 MB of text: segmentation must grow linearly.

Two kinds of text per size, both built from the five seed articles:

- ``articles``: the seed articles one after another, repeated to the size
  (what a big JSONL or a long report looks like);
- ``spaced_paragraphs``: the seeds' body sentences with a space between every
  two characters (the PDF artefact the cleaner removes), run together into
  paragraphs of 1 MB each, one line per paragraph. This is where
  ``_squeeze_spaces`` used to copy the rest of the paragraph at every space
  (quadratic: a 2 MB file took 506 s; see ``--paragraph-mb`` to try smaller ones).

Linear time means seconds per MB stays flat from 1 to 50 MB.

    python benchmarks/segment_speed.py [--sizes 1 10 50] [--kinds articles one_paragraph]

Writes ``benchmarks/results/segment_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import time
from pathlib import Path

from mineral_stance.corpus import read_article, seed_paths
from mineral_stance.segment import segment_text

RESULTS = Path(__file__).resolve().parent / "results" / "segment_speed.json"
MB = 1_000_000


def text_of_size(megabytes: float, kind: str, paragraph_mb: float = 1.0) -> str:
    """Seed text repeated until its UTF-8 encoding reaches ``megabytes``."""
    if kind == "articles":
        unit = "\n\n".join(read_article(path).text for path in seed_paths()) + "\n\n"
        return unit * max(1, round(megabytes * MB / len(unit.encode("utf-8"))))
    sentences = [
        " ".join(unit.text)
        for path in seed_paths()
        for unit in segment_text(read_article(path).text, "seed")
        if unit.kind == "body"
    ]
    cycle = " ".join(sentences)
    per_paragraph = min(megabytes, paragraph_mb) * MB
    paragraph = cycle * max(1, round(per_paragraph / len(cycle.encode("utf-8"))))
    return (paragraph + "\n") * max(1, round(megabytes * MB / len(paragraph.encode("utf-8"))))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 50])
    parser.add_argument("--kinds", nargs="+", default=["articles", "spaced_paragraphs"])
    parser.add_argument("--paragraph-mb", type=float, default=1.0)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    runs = []
    for kind in args.kinds:
        for size in args.sizes:
            text = text_of_size(size, kind, args.paragraph_mb)
            megabytes = len(text.encode("utf-8")) / MB
            started = time.perf_counter()
            units = segment_text(text, "bench")
            seconds = time.perf_counter() - started
            runs.append(
                {
                    "kind": kind,
                    "megabytes": round(megabytes, 2),
                    "characters": len(text),
                    "units": len(units),
                    "seconds": round(seconds, 2),
                    "seconds_per_mb": round(seconds / megabytes, 3),
                }
            )
            print(json.dumps(runs[-1]), flush=True)
            del text, units
    result = {
        "command": "python benchmarks/segment_speed.py "
        + " ".join(["--sizes", *map(str, args.sizes), "--kinds", *args.kinds])
        + f" --paragraph-mb {args.paragraph_mb}",
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
