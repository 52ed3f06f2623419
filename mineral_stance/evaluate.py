"""Scoring: per-label and macro metrics, bootstrap intervals, leave-one-document-out runs.

One scoring function serves every system, so the comparison table compares
like with like.
"""

from __future__ import annotations

import json
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
from sklearn.metrics import (
    accuracy_score,
    confusion_matrix,
    f1_score,
    precision_recall_fscore_support,
)

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.train import tune_class_offsets, tune_thresholds


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


def _f1_from_counts(tp: np.ndarray, fp: np.ndarray, fn: np.ndarray) -> np.ndarray:
    """F1 per label from counts; 0 where a label is neither present nor predicted."""
    denominator = 2 * tp + fp + fn
    return np.divide(2 * tp, denominator, out=np.zeros(tp.shape), where=denominator > 0)


def _macro_f1_resampled(truth: np.ndarray, predicted: np.ndarray, n_classes: int,
                        index: np.ndarray) -> np.ndarray:
    """Macro-F1 (all labels, as ``stance_macro_f1``) of every resample (rows of ``index``)."""
    codes = truth[index] * n_classes + predicted[index]
    counts = np.stack([np.bincount(row, minlength=n_classes * n_classes) for row in codes])
    counts = counts.reshape(len(index), n_classes, n_classes)
    tp = np.diagonal(counts, axis1=1, axis2=2)
    return _f1_from_counts(tp, counts.sum(1) - tp, counts.sum(2) - tp).mean(1)


def _claim_macro_f1_resampled(truth: np.ndarray, predicted: np.ndarray,
                              index: np.ndarray) -> np.ndarray:
    """Macro-F1 over claim types (positive class of each) of every resample."""
    t, p = truth[index], predicted[index]  # (rounds, n, 3)
    tp = (t & p).sum(1)
    return _f1_from_counts(tp, (p & ~t.astype(bool)).sum(1), (t & ~p.astype(bool)).sum(1)).mean(1)


def bootstrap_intervals(
    truth: Targets, predicted: Targets, rounds: int = 1000, seed: int = 0
) -> dict[str, list[float]]:
    """95% percentile intervals of each task's macro-F1, resampling sentences.

    Counted with numpy over all resamples at once; the same numbers as
    ``claim_macro_f1``/``stance_macro_f1``/``voice_macro_f1`` on each resample.
    """
    rng = np.random.default_rng(seed)
    n = len(truth)
    index = rng.integers(0, n, (rounds, n))
    samples = {
        "claim_types": _claim_macro_f1_resampled(
            truth.claims.astype(int), predicted.claims.astype(int), index
        ),
        "stance": _macro_f1_resampled(truth.stance, predicted.stance, len(STANCES), index),
        "voice": _macro_f1_resampled(truth.voice, predicted.voice, len(VOICES), index),
    }
    return {
        task: [float(np.percentile(values, 2.5)), float(np.percentile(values, 97.5))]
        for task, values in samples.items()
    }


def cross_validation_folds(groups: list[str], n_folds: int | None) -> list[np.ndarray]:
    """Test-index arrays: one fold per group, or ``n_folds`` folds of whole groups."""
    group_array = np.array(groups)
    if n_folds is None:
        return [np.flatnonzero(group_array == g) for g in dict.fromkeys(groups)]
    from mineral_stance.dataset import outlet_folds

    return [test for _, test in outlet_folds(group_array, n_folds)]


def grouped_cross_validation(
    make_system: Callable[[], object],
    texts: list[str],
    targets: Targets,
    groups: list[str],
    n_folds: int | None = None,
    tune: bool = True,
    on_fold: Callable[[str], None] | None = None,
    contexts: list | None = None,
) -> tuple[Probabilities, Targets, list[list[float]]]:
    """Train without one fold, predict it, for each fold; groups never straddle folds.

    Systems that read context (``reads_context``) are given each sentence's
    ``contexts`` entry and, for their early-stopping split, its group.

    ``groups`` are document ids (leave one document out, the default) or the
    corpus's outlet fold groups with ``n_folds`` (outlet-held-out k-fold).
    Returns the out-of-fold probabilities, the decisions, and for each sentence
    the claim thresholds used. With ``tune``, the thresholds for a fold are
    tuned on the out-of-fold predictions of the *other* folds, so no fold's
    labels choose its own thresholds.
    """
    folds = cross_validation_folds(groups, n_folds)
    n = len(texts)
    oof = Probabilities(
        claims=np.zeros((n, len(CLAIM_TYPES))),
        stance=np.zeros((n, len(STANCES))),
        voice=np.zeros((n, len(VOICES))),
    )
    default_thresholds: list[float] = []
    for number, test_index in enumerate(folds):
        if on_fold:
            held_out = sorted({groups[i] for i in test_index})
            on_fold(held_out[0] if len(held_out) == 1 else
                    f"fold {number + 1}/{len(folds)} ({len(held_out)} groups, "
                    f"{len(test_index)} sentences)")
        system = make_system()
        probabilities = fit_on_fold(system, texts, targets, groups, test_index, contexts)
        default_thresholds = list(system.claim_thresholds)
        oof.claims[test_index] = probabilities.claims
        oof.stance[test_index] = probabilities.stance
        oof.voice[test_index] = probabilities.voice

    decisions, thresholds = held_out_decisions(oof, targets, folds, default_thresholds, tune)
    return oof, decisions, thresholds


def fit_on_fold(
    system,
    texts: list[str],
    targets: Targets,
    groups: list[str],
    test_index: np.ndarray,
    contexts: list | None = None,
) -> Probabilities:
    """Fit ``system`` on every sentence outside ``test_index`` and predict those inside.

    Systems that read context (``reads_context``) are given each sentence's
    ``contexts`` entry and, for their early-stopping split, its group.
    """
    train_index = np.setdiff1d(np.arange(len(texts)), test_index)
    train_texts = [texts[i] for i in train_index]
    test_texts = [texts[i] for i in test_index]
    if not getattr(system, "reads_context", False):
        system.fit(train_texts, targets.subset(train_index))
        return system.predict_proba(test_texts)
    system.fit(
        train_texts,
        targets.subset(train_index),
        contexts=[contexts[i] for i in train_index] if contexts else None,
        groups=[groups[i] for i in train_index],
    )
    return system.predict_proba(
        test_texts, contexts=[contexts[i] for i in test_index] if contexts else None
    )


def held_out_decisions(
    oof: Probabilities,
    targets: Targets,
    folds: list[np.ndarray],
    default_thresholds: list[float],
    tune: bool = True,
) -> tuple[Targets, list[list[float]]]:
    """Hard labels for out-of-fold probabilities, each fold decided by rules tuned on the
    others (claim thresholds, stance and voice offsets), so no fold's labels choose its own.
    Without ``tune``: the default thresholds and the plain argmax."""
    n = len(oof.stance)
    thresholds = np.tile(default_thresholds, (n, 1))
    decisions = Targets(
        claims=(oof.claims >= thresholds).astype(int),
        stance=oof.stance.argmax(1),
        voice=oof.voice.argmax(1),
    )
    if tune:
        for test_index in folds:
            others = np.ones(n, dtype=bool)
            others[test_index] = False
            thresholds[test_index] = tune_thresholds(oof.claims[others], targets.claims[others])
            stance_offsets = tune_class_offsets(oof.stance[others], targets.stance[others])
            voice_offsets = tune_class_offsets(oof.voice[others], targets.voice[others])
            decided = oof[test_index].decide(
                thresholds[test_index][0], stance_offsets, voice_offsets
            )
            decisions.claims[test_index] = decided.claims
            decisions.stance[test_index] = decided.stance
            decisions.voice[test_index] = decided.voice
    return decisions, thresholds.tolist()


def save_held_out(path: Path, oof: Probabilities, metadata: dict) -> None:
    """Out-of-fold probabilities and what they were made from (gold file, split, config),
    so ``train`` can reuse a comparison's cross-validation instead of running it again."""
    path.parent.mkdir(parents=True, exist_ok=True)
    np.savez_compressed(path, claims=oof.claims, stance=oof.stance, voice=oof.voice,
                        metadata=np.array(json.dumps(metadata)))


def load_held_out(path: Path, expected: dict) -> tuple[Probabilities, dict]:
    """Probabilities saved by ``save_held_out``; refused unless every ``expected`` item matches."""
    with np.load(path) as saved:
        metadata = json.loads(str(saved["metadata"]))
        oof = Probabilities(saved["claims"], saved["stance"], saved["voice"])
    for key, value in expected.items():
        if metadata.get(key) != value:
            raise ValueError(
                f"{path}: made with another {key} ({metadata.get(key)!r}, now {value!r}); "
                "run the comparison again or train without it"
            )
    return oof, metadata


def leave_one_document_out(
    make_system: Callable[[], object],
    texts: list[str],
    targets: Targets,
    doc_ids: list[str],
    tune: bool = True,
    on_fold: Callable[[str], None] | None = None,
) -> tuple[Probabilities, Targets, list[list[float]]]:
    """Train on all documents but one, predict that one, for each document."""
    return grouped_cross_validation(make_system, texts, targets, doc_ids, None, tune, on_fold)


def outlet_groups(frame, n_folds: int) -> tuple[list[str], int | None]:
    """Fold groups and fold count for a corpus frame: outlet-held-out k-fold when there
    are enough outlet groups, else (``n_folds`` 0, or too few groups) one fold per document."""
    groups = frame["fold_group"].tolist()
    if n_folds and len(set(groups)) >= n_folds:
        return groups, n_folds
    return frame["doc_id"].tolist(), None


def split_description(n_folds: int | None) -> str:
    """How a cross-validation split its data, in words for reports and cards."""
    if n_folds is None:
        return "leave one document out"
    return f"{n_folds}-fold cross-validation holding out whole outlets"


def scores_by(truth: Targets, predicted: Targets, keys: list[str]) -> dict[str, dict]:
    """Metrics for each value of a per-sentence key (document, perspective, script)."""
    key_array = np.array(keys)
    return {
        key: {"sentences": int((key_array == key).sum()),
              **score(truth.subset(np.flatnonzero(key_array == key)),
                      predicted.subset(np.flatnonzero(key_array == key)))}
        for key in dict.fromkeys(keys)
    }


def run_comparison(
    systems: dict[str, Callable[[], object]],
    texts: list[str],
    targets: Targets,
    groups: list[str],
    n_folds: int | None = None,
    breakdowns: dict[str, list[str]] | None = None,
    log: Callable[[str], None] = print,
    contexts: list | None = None,
    on_system: Callable[[str, Probabilities, Targets], None] | None = None,
) -> dict[str, dict]:
    """Cross-validated metrics, intervals and per-breakdown scores for each system.

    ``groups``/``n_folds`` choose the split (see :func:`grouped_cross_validation`);
    ``breakdowns`` maps a name (e.g. "perspective") to a per-sentence key, and
    each system's metrics are also reported for every value of that key;
    ``on_system`` receives each system's out-of-fold probabilities and decisions
    (for calibration and error reports).
    """
    results = {}
    for name, make_system in systems.items():
        log(f"{name}: cross-validation")
        tune = name not in ("majority", "rules")
        started = time.perf_counter()
        oof, decisions, _ = grouped_cross_validation(
            make_system,
            texts,
            targets,
            groups,
            n_folds,
            tune=tune,
            on_fold=lambda fold, name=name: log(f"  {name}: held-out {fold}"),
            contexts=contexts,
        )
        seconds = time.perf_counter() - started
        if on_system:
            on_system(name, oof, decisions)
        metrics = score(targets, decisions)
        results[name] = {
            "metrics": metrics,
            "bootstrap_95": bootstrap_intervals(targets, decisions),
            "seconds": round(seconds, 1),
            **{f"per_{key}": scores_by(targets, decisions, values)
               for key, values in (breakdowns or {}).items()},
        }
        log(
            f"  claim macro-F1 {metrics['claim_types']['macro_f1']:.3f}, "
            f"stance macro-F1 {metrics['stance']['macro_f1']:.3f}, "
            f"voice macro-F1 {metrics['voice']['macro_f1']:.3f} ({seconds / 60:.1f} min)"
        )
    return results
