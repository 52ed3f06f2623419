"""Does ``suggest`` pick better sentences to annotate than chance? A simulation on the gold file.

Leave one seed article out at a time; the other four are the unlabelled pool.
Start from a random seed set, then add batches chosen (a) at random, (b) by
model uncertainty alone, (c) by ``suggest``'s uncertainty × diversity
selection, retraining after each batch. The model is the shipped method, the
linear probe (logistic regression on the frozen multilingual-e5-small sentence
vector and the schema's cues), so the encoder runs once: sentence vectors are
computed a single time and every round only refits the probe. Predictions on
the held-out articles are pooled and scored (mean of the three tasks'
macro-F1), averaged over a few random seed sets.

    python benchmarks/active_learning.py [--seeds 3] [--start 40] [--batch 20] [--budget 200]

Writes ``training/reports/active_learning.json`` and ``active_learning.png``.
"""

from __future__ import annotations

import argparse
import json
import time

import numpy as np

from mineral_stance.annotations import file_sha256, labelled_dataset, load_records
from mineral_stance.config import GOLD_PATH, REPORTS_DIR
from mineral_stance.cues import cue_features
from mineral_stance.evaluate import score
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.predict import load_classifier
from mineral_stance.suggest import embed_and_predict, normalise, select, uncertainty
from mineral_stance.train import linear_probe

STRATEGIES = ("random", "uncertainty", "suggest")
THRESHOLDS = [0.5, 0.5, 0.5]


def softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(1, keepdims=True))
    return shifted / shifted.sum(1, keepdims=True)


def fit_predict(features: np.ndarray, targets: Targets, train: np.ndarray, c: float):
    """Fit the probe's three heads on ``train`` rows; probabilities for every row."""
    x = features[train]
    claims = np.zeros((len(features), targets.claims.shape[1]))
    for column in range(targets.claims.shape[1]):
        w, b = linear_probe(x, targets.claims[train, column], 2, c)
        claims[:, column] = softmax(features @ w.T + b)[:, 1]
    heads = []
    for labels, n in ((targets.stance, 4), (targets.voice, 2)):
        w, b = linear_probe(x, labels[train], n, c)
        heads.append(softmax(features @ w.T + b))
    return Probabilities(claims, heads[0], heads[1])


def mean_macro_f1(metrics: dict) -> float:
    return float(np.mean([metrics[t]["macro_f1"] for t in ("claim_types", "stance", "voice")]))


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, default=3)
    parser.add_argument("--start", type=int, default=40)
    parser.add_argument("--batch", type=int, default=20)
    parser.add_argument("--budget", type=int, default=200)
    parser.add_argument("--c", type=float, default=8.0, help="the probe's inverse regularisation")
    args = parser.parse_args()
    started = time.perf_counter()

    records = load_records(GOLD_PATH)
    texts, targets, doc_ids = labelled_dataset(records)
    classifier = load_classifier()
    vectors, _ = embed_and_predict(classifier, texts)  # the one encoder pass
    features = np.hstack([vectors, cue_features(texts, classifier.model.config.text_cues)])
    unit = normalise(vectors)
    documents = list(dict.fromkeys(doc_ids))
    doc_ids = np.array(doc_ids)
    sizes = list(range(args.start, args.budget + 1, args.batch))

    curves: dict[str, list[list[float]]] = {s: [] for s in STRATEGIES}
    for seed in range(args.seeds):
        # pooled held-out probabilities per strategy and round
        pooled = {s: [[None] * len(texts) for _ in sizes] for s in STRATEGIES}
        for held_out in documents:
            test = np.flatnonzero(doc_ids == held_out)
            pool = np.flatnonzero(doc_ids != held_out)
            rng = np.random.default_rng(seed)
            start = rng.choice(pool, size=args.start, replace=False)
            for strategy in STRATEGIES:
                labelled = list(start)
                order = np.random.default_rng(1000 + seed).permutation(pool)
                for round_, size in enumerate(sizes):
                    probabilities = fit_predict(features, targets, np.array(labelled), args.c)
                    for i in test:
                        pooled[strategy][round_][i] = probabilities[int(i)]
                    if size == sizes[-1]:
                        break
                    unlabelled = np.setdiff1d(pool, labelled)
                    if strategy == "random":
                        taken = set(labelled)
                        picks = [i for i in order if i not in taken][: args.batch]
                    else:
                        u = uncertainty(probabilities[unlabelled], THRESHOLDS)
                        if strategy == "uncertainty":
                            picks = unlabelled[np.argsort(-u, kind="stable")[: args.batch]]
                        else:
                            chosen = select(u, unit[unlabelled], unit[labelled], args.batch)
                            picks = unlabelled[chosen]
                    labelled += [int(i) for i in picks]
        for strategy in STRATEGIES:
            curve = []
            for round_probabilities in pooled[strategy]:
                merged = Probabilities(
                    np.stack([p.claims for p in round_probabilities]),
                    np.stack([p.stance for p in round_probabilities]),
                    np.stack([p.voice for p in round_probabilities]),
                )
                curve.append(mean_macro_f1(score(targets, merged.decide(THRESHOLDS))))
            curves[strategy].append(curve)
        print(f"seed {seed}: " + ", ".join(f"{s} {curves[s][-1][-1]:.3f}" for s in STRATEGIES))

    summary = {
        "what": "mean of the three tasks' macro-F1 on held-out seed articles (leave one "
        "article out, predictions pooled) against the number of labelled sentences",
        "made_by": "python benchmarks/active_learning.py "
        f"--seeds {args.seeds} --start {args.start} --batch {args.batch} --budget {args.budget}",
        "gold_sha256": file_sha256(GOLD_PATH),
        "model": "linear probe on frozen multilingual-e5-small + cues (the shipped method), "
        f"C={args.c}, claim thresholds 0.5",
        "labelled_sentences": sizes,
        "mean": {s: np.mean(curves[s], axis=0).round(4).tolist() for s in STRATEGIES},
        "std": {s: np.std(curves[s], axis=0).round(4).tolist() for s in STRATEGIES},
        "per_seed": {s: np.round(curves[s], 4).tolist() for s in STRATEGIES},
        "seconds": round(time.perf_counter() - started, 1),
    }
    REPORTS_DIR.mkdir(parents=True, exist_ok=True)
    (REPORTS_DIR / "active_learning.json").write_text(
        json.dumps(summary, indent=2) + "\n", encoding="utf-8"
    )
    plot(summary, REPORTS_DIR / "active_learning.png")
    print(f"wrote {REPORTS_DIR / 'active_learning.json'} in {summary['seconds']} s")


def plot(summary: dict, path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    sizes = summary["labelled_sentences"]
    figure, axis = plt.subplots(figsize=(6, 4))
    for strategy, style in zip(STRATEGIES, ("o--", "s-.", "^-"), strict=True):
        mean, std = np.array(summary["mean"][strategy]), np.array(summary["std"][strategy])
        axis.plot(sizes, mean, style, label=strategy)
        axis.fill_between(sizes, mean - std, mean + std, alpha=0.15)
    axis.set_xlabel("labelled sentences")
    axis.set_ylabel("mean macro-F1 (claims, stance, voice)")
    axis.set_title("Choosing what to annotate: held-out seed articles")
    axis.legend()
    axis.grid(alpha=0.3)
    figure.tight_layout()
    figure.savefig(path, dpi=120)
    plt.close(figure)


if __name__ == "__main__":
    main()
