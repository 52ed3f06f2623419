"""Seconds to segment 1, 10 and 50 MB of text: segmentation must grow linearly.

Two kinds of text per size, both built from the five seed articles:

- ``articles``: the seed articles one after another, repeated to the size
  (what a big JSONL or a long report looks like);
- ``one_paragraph``: the same text with every line break replaced by a space,
  so the whole input is one paragraph full of spaces (PDF text whose lines all
  run on). This is where ``_squeeze_spaces`` used to rescan the rest of the
  paragraph at every space: 2 MB took 506 s.

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


def text_of_size(megabytes: float, kind: str) -> str:
    """Seed text repeated until its UTF-8 encoding reaches ``megabytes``."""
    seeds = "\n\n".join(read_article(path).text for path in seed_paths())
    if kind == "one_paragraph":
        seeds = " ".join(seeds.replace("\t", " ").split("\n"))
    unit = len(seeds.encode("utf-8"))
    return (seeds + "\n\n") * max(1, round(megabytes * MB / unit))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--sizes", type=float, nargs="+", default=[1, 10, 50])
    parser.add_argument("--kinds", nargs="+", default=["articles", "one_paragraph"])
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    runs = []
    for kind in args.kinds:
        for size in args.sizes:
            text = text_of_size(size, kind)
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
        + " ".join(["--sizes", *map(str, args.sizes), "--kinds", *args.kinds]),
        "machine": {"python": platform.python_version(), "processor": platform.machine()},
        "runs": runs,
    }
    Path(args.output).parent.mkdir(parents=True, exist_ok=True)
    Path(args.output).write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(f"wrote {args.output}")


if __name__ == "__main__":
    main()
