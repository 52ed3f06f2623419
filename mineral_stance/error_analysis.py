"""Error analysis a person can read: confusion matrices and the most confident errors.

The next round of annotation and modelling should aim at what fails. For each
task this writes the confusion matrix of the out-of-fold decisions and the
sentences the system got wrong while most sure of itself, each with its
article, title and the sentence before it, as Markdown.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from sklearn.metrics import confusion_matrix

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.context import Context
from mineral_stance.labels import Probabilities, Targets

TOP_ERRORS = 30


def _cell(text: str, limit: int = 220) -> str:
    text = " ".join(str(text).split()).replace("|", "\\|")
    return text if len(text) <= limit else text[: limit - 1] + "…"


def _matrix(truth: np.ndarray, predicted: np.ndarray, names: list[str]) -> list[str]:
    matrix = confusion_matrix(truth, predicted, labels=list(range(len(names))))
    lines = ["| gold ↓ / predicted → | " + " | ".join(names) + " |",
             "|---|" + "---|" * len(names)]
    lines += [f"| {name} | " + " | ".join(str(v) for v in row) + " |"
              for name, row in zip(names, matrix, strict=True)]
    return lines


def confident_errors(
    task: str, targets: Targets, probabilities: Probabilities, decisions: Targets
) -> list[tuple[int, str, str, float]]:
    """(row, gold, predicted, confidence) of every error, most confident first.

    Stance and voice: the predicted label's probability. Claims: one error per
    wrong claim type, with the probability of the wrong decision (p for a false
    claim, 1 − p for a missed one).
    """
    errors = []
    if task == "claims":
        for column, name in enumerate(CLAIM_TYPES):
            p = probabilities.claims[:, column]
            for row in np.flatnonzero(decisions.claims[:, column] != targets.claims[:, column]):
                if decisions.claims[row, column]:
                    errors.append((int(row), f"not {name}", name, float(p[row])))
                else:
                    errors.append((int(row), name, f"not {name}", float(1 - p[row])))
    else:
        names = STANCES if task == "stance" else VOICES
        truth, predicted = getattr(targets, task), getattr(decisions, task)
        p = getattr(probabilities, task)
        for row in np.flatnonzero(truth != predicted):
            errors.append(
                (int(row), names[truth[row]], names[predicted[row]], float(p[row, predicted[row]]))
            )
    return sorted(errors, key=lambda error: -error[3])


def error_report(
    name: str,
    frame: pd.DataFrame,
    targets: Targets,
    probabilities: Probabilities,
    decisions: Targets,
    contexts: list[Context],
    top: int = TOP_ERRORS,
) -> str:
    """Markdown: per task, the confusion matrix and the ``top`` most confident errors."""
    lines = [
        f"# Errors of {name} (out-of-fold, outlets held out)",
        "",
        "Per task, the confusion matrix of the held-out decisions and the "
        f"{top} errors made with the highest probability, with the article, its title "
        "and the sentence before (the context a reader had). Made by `mineral-stance compare`.",
    ]
    for task, heading in (("claims", "Claim types"), ("stance", "Stance"), ("voice", "Voice")):
        lines += ["", f"## {heading}", ""]
        if task == "claims":
            for column, claim in enumerate(CLAIM_TYPES):
                lines += [f"**{claim}**", ""]
                lines += _matrix(targets.claims[:, column], decisions.claims[:, column],
                                 [f"not {claim}", claim])
                lines.append("")
        else:
            names = list(STANCES if task == "stance" else VOICES)
            lines += _matrix(getattr(targets, task), getattr(decisions, task), names)
            lines.append("")
        errors = confident_errors(task, targets, probabilities, decisions)
        lines += [f"{len(errors)} errors; the {min(top, len(errors))} most confident:", "",
                  "| p | gold | predicted | sentence | previous sentence | article (title) |",
                  "|---|---|---|---|---|---|"]
        for row, gold, predicted, confidence in errors[:top]:
            context = contexts[row]
            lines.append(
                f"| {confidence:.2f} | {gold} | {predicted} | {_cell(frame['text'].iloc[row])} "
                f"| {_cell(context.previous, 120)} "
                f"| {frame['doc_id'].iloc[row]} ({_cell(context.title, 80)}) |"
            )
    return "\n".join(lines) + "\n"
