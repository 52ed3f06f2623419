"""Calibrated probabilities: one temperature per task, fitted on held-out predictions.

A model's probabilities are only as useful as they are honest: of the
sentences given stance probability 0.8, about 80% should have that stance.
Temperature scaling (Guo et al. 2017) divides each task's logits by one number
fitted to minimise the log loss on out-of-fold predictions, so it never
changes which label wins (nor, once thresholds are re-tuned on the scaled
probabilities, which claims are predicted), only how sure the model says it
is. Expected calibration error (ECE) measures the gap before and after.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

import numpy as np
from scipy.optimize import minimize_scalar

from mineral_stance.labels import Probabilities, Targets

TASKS: tuple[str, ...] = ("claims", "stance", "voice")
_EPSILON = 1e-6


def logits_of(probabilities: np.ndarray, task: str) -> np.ndarray:
    """Logits that give back ``probabilities``: logit(p) for claims, log p for softmax tasks
    (softmax ignores the constant that log p is off by)."""
    p = np.clip(np.asarray(probabilities, dtype=float), _EPSILON, 1 - _EPSILON)
    return np.log(p / (1 - p)) if task == "claims" else np.log(p)


def scaled(probabilities: np.ndarray, task: str, temperature: float) -> np.ndarray:
    """The probabilities after dividing the task's logits by ``temperature``."""
    logits = logits_of(probabilities, task) / temperature
    if task == "claims":
        return 1 / (1 + np.exp(-logits))
    logits = logits - logits.max(1, keepdims=True)
    exp = np.exp(logits)
    return exp / exp.sum(1, keepdims=True)


def log_loss(probabilities: np.ndarray, truth: np.ndarray, task: str) -> float:
    p = np.clip(probabilities, _EPSILON, 1 - _EPSILON)
    if task == "claims":
        return float(-(truth * np.log(p) + (1 - truth) * np.log(1 - p)).mean())
    return float(-np.log(p[np.arange(len(truth)), truth]).mean())


def fit_temperature(probabilities: np.ndarray, truth: np.ndarray, task: str) -> float:
    """The temperature in [0.05, 20] that minimises the task's log loss."""
    if len(truth) == 0:
        return 1.0
    result = minimize_scalar(
        lambda log_t: log_loss(scaled(probabilities, task, float(np.exp(log_t))), truth, task),
        bounds=(np.log(0.05), np.log(20.0)),
        method="bounded",
    )
    return float(np.exp(result.x))


def task_arrays(probabilities: Probabilities, targets: Targets) -> dict[str, tuple]:
    return {
        "claims": (probabilities.claims, targets.claims),
        "stance": (probabilities.stance, targets.stance),
        "voice": (probabilities.voice, targets.voice),
    }


def fit_temperatures(probabilities: Probabilities, targets: Targets) -> dict[str, float]:
    """One temperature per task, fitted on (held-out) probabilities and their gold labels."""
    return {
        task: round(fit_temperature(p, truth, task), 4)
        for task, (p, truth) in task_arrays(probabilities, targets).items()
    }


def apply_temperatures(
    probabilities: Probabilities, temperatures: dict[str, float]
) -> Probabilities:
    return Probabilities(
        claims=scaled(probabilities.claims, "claims", temperatures.get("claims", 1.0)),
        stance=scaled(probabilities.stance, "stance", temperatures.get("stance", 1.0)),
        voice=scaled(probabilities.voice, "voice", temperatures.get("voice", 1.0)),
    )


def cross_fitted(
    probabilities: Probabilities, targets: Targets, folds: list[np.ndarray]
) -> tuple[Probabilities, list[dict[str, float]]]:
    """Out-of-fold probabilities scaled fold by fold with temperatures fitted on the
    *other* folds, so the calibration reported is the calibration on unseen outlets."""
    out = Probabilities(
        probabilities.claims.copy(), probabilities.stance.copy(), probabilities.voice.copy()
    )
    per_fold = []
    for test_index in folds:
        others = np.setdiff1d(np.arange(len(targets)), test_index)
        temperatures = fit_temperatures(
            Probabilities(
                probabilities.claims[others],
                probabilities.stance[others],
                probabilities.voice[others],
            ),
            targets.subset(others),
        )
        per_fold.append(temperatures)
        for task, (p, _) in task_arrays(probabilities, targets).items():
            getattr(out, task)[test_index] = scaled(p[test_index], task, temperatures[task])
    return out, per_fold


def reliability_points(
    probabilities: np.ndarray, truth: np.ndarray, task: str
) -> tuple[np.ndarray, np.ndarray]:
    """(confidence, correct) pairs: the winning label's probability and whether it was right
    for stance and voice; each claim type's probability and whether it applies for claims."""
    if task == "claims":
        return probabilities.ravel(), np.asarray(truth).ravel().astype(float)
    return probabilities.max(1), (probabilities.argmax(1) == truth).astype(float)


def expected_calibration_error(
    probabilities: np.ndarray, truth: np.ndarray, task: str, bins: int = 10
) -> float:
    """Mean |accuracy − confidence| over equal-width confidence bins, weighted by bin size."""
    confidence, correct = reliability_points(probabilities, truth, task)
    if len(confidence) == 0:
        return 0.0
    edges = np.linspace(0, 1, bins + 1)
    which = np.clip(np.digitize(confidence, edges[1:-1]), 0, bins - 1)
    error = 0.0
    for b in range(bins):
        inside = which == b
        if inside.any():
            error += inside.mean() * abs(correct[inside].mean() - confidence[inside].mean())
    return float(error)


def calibration_errors(probabilities: Probabilities, targets: Targets) -> dict[str, float]:
    return {
        task: round(expected_calibration_error(p, truth, task), 4)
        for task, (p, truth) in task_arrays(probabilities, targets).items()
    }


def plot_reliability(
    before: Probabilities, after: Probabilities, targets: Targets, path: Path, title: str = ""
) -> None:
    """One panel per task: observed frequency against confidence, before and after scaling."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    figure, axes = plt.subplots(1, 3, figsize=(12, 4), sharey=True)
    edges = np.linspace(0, 1, 11)
    centres = (edges[:-1] + edges[1:]) / 2
    for axis, task in zip(axes, TASKS, strict=True):
        axis.plot([0, 1], [0, 1], color="grey", linestyle=":", linewidth=1)
        for probabilities, label, colour in ((before, "before", "#c44"), (after, "after", "#36c")):
            p, truth = task_arrays(probabilities, targets)[task]
            confidence, correct = reliability_points(p, truth, task)
            which = np.clip(np.digitize(confidence, edges[1:-1]), 0, 9)
            observed = [correct[which == b].mean() if (which == b).any() else np.nan
                        for b in range(10)]
            ece = expected_calibration_error(p, truth, task)
            axis.plot(centres, observed, marker="o", color=colour, label=f"{label} (ECE {ece:.3f})")
        axis.set_title(task)
        axis.set_xlabel("claim probability" if task == "claims" else "confidence (top label)")
        axis.legend(loc="upper left", fontsize=8)
    axes[0].set_ylabel("observed frequency")
    if title:
        figure.suptitle(title)
    figure.tight_layout()
    figure.savefig(path, dpi=110)
    plt.close(figure)


def calibration_report(
    probabilities: Probabilities,
    targets: Targets,
    folds: list[np.ndarray],
    out_dir: Path,
    name: str,
    log: Callable[[str], None] = print,
) -> dict:
    """Fit temperatures per fold, write calibration.md/json/png to ``out_dir``; return the
    figures and the temperatures fitted on all out-of-fold predictions (for the model)."""
    import json

    after, per_fold = cross_fitted(probabilities, targets, folds)
    result = {
        "system": name,
        "ece_before": calibration_errors(probabilities, targets),
        "ece_after": calibration_errors(after, targets),
        "temperatures_per_fold": per_fold,
        "temperatures": fit_temperatures(probabilities, targets),
    }
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "calibration.json").write_text(json.dumps(result, indent=2), encoding="utf-8")
    plot_reliability(probabilities, after, targets, out_dir / "calibration.png", name)
    rows = "\n".join(
        f"| {task} | {result['ece_before'][task]:.3f} | {result['ece_after'][task]:.3f} "
        f"| {result['temperatures'][task]:.2f} |"
        for task in TASKS
    )
    (out_dir / "calibration.md").write_text(
        f"# Calibration: {name}\n\n"
        "Expected calibration error (10 equal-width bins) of the out-of-fold probabilities, "
        "before and after temperature scaling. Each fold's temperatures are fitted on the "
        "other folds' out-of-fold predictions, so 'after' is measured on outlets the "
        "temperatures never saw. Claims: each claim type's probability against whether it "
        "applies; stance and voice: the top label's probability against whether it is right. "
        "The shipped model carries the temperatures fitted on all out-of-fold predictions.\n\n"
        "| task | ECE before | ECE after | temperature |\n|---|---|---|---|\n"
        f"{rows}\n\n![reliability per task](calibration.png)\n",
        encoding="utf-8",
    )
    log(f"calibration: ECE before {result['ece_before']}, after {result['ece_after']}")
    return result
