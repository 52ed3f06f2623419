"""Scoring: per-label and macro metrics, bootstrap intervals, leave-one-document-out runs.

One scoring function serves every system, so the comparison table compares
like with like.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.train import tune_thresholds


def _per_label(truth: np.ndarray, predicted: np.ndarray, labels: list, names) -> dict:
    precision, recall, f1, support = precision_recall_fscore_support(
        truth, predicted, labels=labels, zero_division=0
    )
    return {
        name: {
            "precision": float(p),
            "recall": float(r),
            "f1": float(f),
            "support": int(s),
        }
        for name, p, r, f, s in zip(names, precision, recall, f1, support, strict=True)
    }


def claim_macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    return float(f1_score(truth, predicted, average="macro", zero_division=0))


def stance_macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    labels = list(range(len(STANCES)))
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))


def voice_macro_f1(truth: np.ndarray, predicted: np.ndarray) -> float:
    labels = list(range(len(VOICES)))
    return float(f1_score(truth, predicted, labels=labels, average="macro", zero_division=0))


def score(truth: Targets, predicted: Targets) -> dict:
    """The metrics object that ``evaluate --json`` prints."""
    claim_per_label = {}
    for column, name in enumerate(CLAIM_TYPES):
        p, r, f, s = precision_recall_fscore_support(
            truth.claims[:, column],
            predicted.claims[:, column],
            labels=[1],
            zero_division=0,
        )
        claim_per_label[name] = {
            "precision": float(p[0]),
            "recall": float(r[0]),
            "f1": float(f[0]),
            "support": int(s[0]),
        }
    stance_labels = list(range(len(STANCES)))
    voice_labels = list(range(len(VOICES)))
    return {
        "n": len(truth),
        "claim_types": {
            "macro_f1": claim_macro_f1(truth.claims, predicted.claims),
            "per_label": claim_per_label,
        },
        "stance": {
            "macro_f1": stance_macro_f1(truth.stance, predicted.stance),
            "accuracy": float(accuracy_score(truth.stance, predicted.stance)),
            "per_label": _per_label(truth.stance, predicted.stance, stance_labels, STANCES),
            "confusion_matrix": {
                "labels": list(STANCES),
                "rows_gold_columns_predicted": confusion_matrix(
                    truth.stance, predicted.stance, labels=stance_labels
                ).tolist(),
            },
        },
        "voice": {
            "macro_f1": voice_macro_f1(truth.voice, predicted.voice),
            "accuracy": float(accuracy_score(truth.voice, predicted.voice)),
            "per_label": _per_label(truth.voice, predicted.voice, voice_labels, VOICES),
        },
    }


def bootstrap_intervals(
    truth: Targets, predicted: Targets, rounds: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of each task's macro-F1, resampling sentences."""
    rng = np.random.default_rng(seed)
    n = len(truth)
    samples: dict[str, list[float]] = {"claim_types": [], "stance": [], "voice": []}
    for _ in range(rounds):
        index = rng.integers(0, n, n)
        samples["claim_types"].append(claim_macro_f1(truth.claims[index], predicted.claims[index]))
        samples["stance"].append(stance_macro_f1(truth.stance[index], predicted.stance[index]))
        samples["voice"].append(voice_macro_f1(truth.voice[index], predicted.voice[index]))
    return {
        task: [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
        for task, values in samples.items()
    }


def leave_one_document_out(
    make_system: Callable[[], object],
    texts: list[str],
    targets: Targets,
    doc_ids: list[str],
    tune: bool = True,
    on_fold: Callable[[str], None] | None = None,
) -> tuple[Probabilities, Targets, list[list[float]]]:
    """Train on four documents, predict the fifth, for each document.

    Returns the out-of-fold probabilities, the decisions, and for each sentence
    the claim thresholds used. With ``tune``, the thresholds for a document are
    tuned on the out-of-fold predictions of the *other* documents, so no
    document's labels choose its own thresholds.
    """
    documents = list(dict.fromkeys(doc_ids))
    doc_array = np.array(doc_ids)
    parts: dict[str, tuple[np.ndarray, Probabilities]] = {}
    default_thresholds: list[float] = []
    for document in documents:
        if on_fold:
            on_fold(document)
        train_index = np.flatnonzero(doc_array != document)
        test_index = np.flatnonzero(doc_array == document)
        system = make_system().fit([texts[i] for i in train_index], targets.subset(train_index))
        default_thresholds = list(system.claim_thresholds)
        parts[document] = (test_index, system.predict_proba([texts[i] for i in test_index]))

    n = len(texts)
    oof = Probabilities(
        claims=np.zeros((n, len(CLAIM_TYPES))),
        stance=np.zeros((n, len(STANCES))),
        voice=np.zeros((n, len(VOICES))),
    )
    for index, probabilities in parts.values():
        oof.claims[index] = probabilities.claims
        oof.stance[index] = probabilities.stance
        oof.voice[index] = probabilities.voice

    thresholds = np.tile(default_thresholds, (n, 1))
    if tune:
        for document in documents:
            others = doc_array != document
            thresholds[~others] = tune_thresholds(oof.claims[others], targets.claims[others])
    decisions = Targets(
        claims=(oof.claims >= thresholds).astype(int),
        stance=oof.stance.argmax(1),
        voice=oof.voice.argmax(1),
    )
    return oof, decisions, thresholds.tolist()


def run_comparison(
    systems: dict[str, Callable[[], object]],
    texts: list[str],
    targets: Targets,
    doc_ids: list[str],
    log: Callable[[str], None] = print,
) -> dict[str, dict]:
    """Leave-one-document-out metrics, intervals and thresholds for each system."""
    results = {}
    for name, make_system in systems.items():
        log(f"{name}: leave-one-document-out")
        tune = name not in ("majority", "rules")
        _, decisions, thresholds = leave_one_document_out(
            make_system,
            texts,
            targets,
            doc_ids,
            tune=tune,
            on_fold=lambda document, name=name: log(f"  {name}: held-out {document}"),
        )
        metrics = score(targets, decisions)
        results[name] = {
            "metrics": metrics,
            "bootstrap_95": bootstrap_intervals(targets, decisions),
            "per_document": {
                document: score(
                    targets.subset(np.flatnonzero(np.array(doc_ids) == document)),
                    decisions.subset(np.flatnonzero(np.array(doc_ids) == document)),
                )
                for document in dict.fromkeys(doc_ids)
            },
        }
        log(
            f"  claim macro-F1 {metrics['claim_types']['macro_f1']:.3f}, "
            f"stance macro-F1 {metrics['stance']['macro_f1']:.3f}, "
            f"voice macro-F1 {metrics['voice']['macro_f1']:.3f}"
        )
    return results
