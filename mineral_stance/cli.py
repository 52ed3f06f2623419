"""The ``mineral-stance`` command line: one subcommand per pipeline step."""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

from mineral_stance.config import GOLD_PATH, SECOND_PASS_PATH


def cmd_segment(args: argparse.Namespace) -> int:
    """Write sentence units of each FILE as JSON Lines (stdout or -o)."""
    from mineral_stance.corpus import InputError, seed_paths, segment_file, write_units

    paths = [Path(p) for p in args.files] or seed_paths()
    out = open(args.output, "w", encoding="utf-8") if args.output else sys.stdout
    failed = 0
    try:
        for path in paths:
            try:
                write_units(segment_file(path), out)
            except (InputError, OSError) as error:
                print(f"error: {error}", file=sys.stderr)
                failed += 1
    finally:
        if out is not sys.stdout:
            out.close()
    return 1 if failed else 0


def cmd_validate(args: argparse.Namespace) -> int:
    """Check annotation files against the label schema; list every problem with its line."""
    from mineral_stance.annotations import validate_file

    status = 0
    for path in args.files:
        records, problems = validate_file(path)
        for problem in problems:
            print(problem)
        if problems:
            status = 1
            print(f"{path}: {len(problems)} problem(s), {len(records)} valid record(s)")
        else:
            print(f"{path}: OK, {len(records)} records")
    return status


def cmd_stats(args: argparse.Namespace) -> int:
    """Print label counts per document."""
    from mineral_stance.annotations import label_counts, load_records

    table = label_counts(load_records(args.file))
    print(table.T.to_string() if args.transpose else table.to_string())
    return 0


def cmd_agreement(args: argparse.Namespace) -> int:
    """Cohen's kappa between two annotations of the same sentences."""
    from mineral_stance.annotations import agreement, load_records

    result = agreement(load_records(args.first), load_records(args.second))
    print(result.to_text())
    if args.show_disagreements:
        for item in result.disagreements:
            print(f"\n{item['id']}  {item['text']}")
            print(f"  first:  {item['first']}\n  second: {item['second']}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="mineral-stance",
        description="Label claims, stance toward the US-led minerals alliance, and voice, "
        "sentence by sentence, in Chinese and English commentary.",
    )
    commands = parser.add_subparsers(dest="command", required=True)

    segment = commands.add_parser("segment", help="clean and split articles into sentence units")
    segment.add_argument("files", nargs="*", help="article files (default: the seed articles)")
    segment.add_argument("-o", "--output", help="write JSON Lines here instead of stdout")
    segment.set_defaults(run=cmd_segment)

    validate = commands.add_parser("validate", help="check annotation files against the schema")
    validate.add_argument("files", nargs="+")
    validate.set_defaults(run=cmd_validate)

    stats = commands.add_parser("stats", help="label counts per document")
    stats.add_argument("file", nargs="?", default=str(GOLD_PATH))
    stats.add_argument("--transpose", action="store_true", help="documents as columns")
    stats.set_defaults(run=cmd_stats)

    agree = commands.add_parser("agreement", help="Cohen's kappa between two annotation files")
    agree.add_argument("first", nargs="?", default=str(GOLD_PATH))
    agree.add_argument("second", nargs="?", default=str(SECOND_PASS_PATH))
    agree.add_argument("--show-disagreements", action="store_true")
    agree.set_defaults(run=cmd_agreement)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except ValueError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    except BrokenPipeError:
        return 0


if __name__ == "__main__":
    sys.exit(main())
