"""Sentences per second of ``clf.predict`` against a plain transformers forward pass.

Both run the same model on the same sentences (every unit of the five seed
articles) in the same process, alternating round by round so that machine
noise hits both alike. The plain pass is what a user would write by hand:
tokenize fixed-size batches in input order, run the encoder and heads under
``torch.no_grad``. ``clf.predict`` adds length-sorted batching, label
decisions and result objects.

    python benchmarks/predict_speed.py [--model DIR] [--rounds 5] [--threads 2]

Writes ``benchmarks/results/predict_speed.json``.
"""

from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import torch

from mineral_stance.corpus import seed_paths, segment_file
from mineral_stance.model import convert_script
from mineral_stance.predict import load_classifier
from mineral_stance.train import tokenize

RESULTS = Path(__file__).resolve().parent / "results" / "predict_speed.json"


def plain_forward(clf, texts: list[str], batch_size: int) -> None:
    model, config = clf.model, clf.model.config
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            batch = texts[start : start + batch_size]
            converted = convert_script(batch, config.script)
            inputs = tokenize(clf.tokenizer, converted, config.text_prefix, config.max_length)
            logits = model(inputs["input_ids"], inputs["attention_mask"], model.text_cues(batch))
            torch.sigmoid(logits["claims"]), torch.softmax(logits["stance"], -1)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", help="model directory (default: the shipped model)")
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=64)
    parser.add_argument("--output", default=str(RESULTS))
    args = parser.parse_args()

    torch.set_num_threads(args.threads)
    clf = load_classifier(args.model)
    clf.batch_size = args.batch_size
    texts = [u.text for path in seed_paths() for u in segment_file(path)]
    clf.predict(texts[:64])  # warm-up
    plain_forward(clf, texts[:64], args.batch_size)

    timings: dict[str, list[float]] = {"clf.predict": [], "plain forward": []}
    for _ in range(args.rounds):
        start = time.perf_counter()
        clf.predict(texts)
        timings["clf.predict"].append(time.perf_counter() - start)
        start = time.perf_counter()
        plain_forward(clf, texts, args.batch_size)
        timings["plain forward"].append(time.perf_counter() - start)

    result = {
        "sentences": len(texts),
        "rounds": args.rounds,
        "threads": args.threads,
        "batch_size": args.batch_size,
        "machine": {"processor": platform.processor(), "cpus": torch.get_num_threads()},
        "sentences_per_second": {
            name: round(len(texts) / statistics.median(values), 1)
            for name, values in timings.items()
        },
        "seconds_per_round": {
            name: [round(v, 3) for v in values] for name, values in timings.items()
        },
    }
    output = Path(args.output)
    output.parent.mkdir(parents=True, exist_ok=True)
    output.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result["sentences_per_second"]))


if __name__ == "__main__":
    main()
