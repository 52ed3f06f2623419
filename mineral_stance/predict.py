"""The classifier users hold: scikit-learn-style fit/predict, HF-style save/load.

from mineral_stance import load_classifier
clf = load_classifier()                 # the shipped model, offline
clf.predict(["美国应与盟友合作，确保供应链安全。"])
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch

from mineral_stance.config import (
    CLAIM_TYPES,
    LABELLED_KINDS,
    SHIPPED_MODEL_DIR,
    STANCES,
    VOICES,
    TrainConfig,
    inference_threads,
)
from mineral_stance.labels import Probabilities, Targets, label_dicts
from mineral_stance.model import MultiTaskModel, from_pretrained, save_pretrained
from mineral_stance.results import ArticleResult, Predictions
from mineral_stance.segment import Unit, segment_text
from mineral_stance.train import fit, predict_probabilities


@dataclass
class SentenceResult:
    """Labels of one sentence and the probability of every label."""

    text: str
    claim_types: list[str]
    stance: str
    voice: str
    probabilities: dict[str, float]

    def to_record(self) -> dict:
        return {
            "text": self.text,
            "claim_types": self.claim_types,
            "stance": self.stance,
            "voice": self.voice,
            **{f"p_{name}": round(value, 4) for name, value in self.probabilities.items()},
        }


class StanceClassifier:
    """Fine-tuned multilingual encoder with claim, stance and voice heads."""

    name = "fine-tuned"

    def __init__(self, config: TrainConfig | None = None):
        self.config = config or TrainConfig()
        self.model: MultiTaskModel | None = None
        self.tokenizer = None
        self.batch_size = 64

    # --- scikit-learn conventions ------------------------------------------
    def fit(self, texts: list[str], targets: Targets, progress: bool = False) -> StanceClassifier:
        self.model, self.tokenizer = fit(texts, targets, self.config, progress=progress)
        return self

    @property
    def claim_thresholds(self) -> list[float]:
        return list(self._require_model().config.claim_thresholds)

    @claim_thresholds.setter
    def claim_thresholds(self, values: list[float]) -> None:
        self._require_model().config.claim_thresholds = [float(v) for v in values]

    def predict_proba(self, texts: list[str]) -> Probabilities:
        """Raw probabilities as arrays: claims (n, 3), stance (n, 4), voice (n, 2)."""
        model = self._require_model()
        if not texts:
            return Probabilities(
                np.zeros((0, len(CLAIM_TYPES))), np.zeros((0, len(STANCES))), np.zeros((0, 2))
            )
        return predict_probabilities(model, self.tokenizer, list(texts), self.batch_size)

    def predict(self, texts: list[str]) -> Predictions:
        """One result per sentence: labels plus the probability of every label."""
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of sentences; wrap a single one in [ ]")
        probabilities = self.predict_proba(texts)
        decisions = label_dicts(probabilities.decide(self.claim_thresholds))
        return Predictions(
            [
                SentenceResult(
                    text=text,
                    probabilities=_probability_dict(probabilities, i),
                    **decision,
                )
                for i, (text, decision) in enumerate(zip(texts, decisions, strict=True))
            ]
        )

    def classify_units(self, units: list[Unit]) -> list[dict]:
        """Label one article's units (see ``classify_unit_groups``)."""
        return self.classify_unit_groups([units])[0]

    def classify_unit_groups(self, groups: list[list[Unit]]) -> list[list[dict]]:
        """Label the units of several articles with one model call.

        Body and heading units go through the model; captions, footnotes, tables
        and boilerplate get the schema's default for non-claims (no claim,
        ``unrelated``, ``author``) and probability columns left empty.
        """
        labelled = [u for units in groups for u in units if u.kind in LABELLED_KINDS]
        results = iter(self.predict([u.text for u in labelled]))
        out = []
        for units in groups:
            records = []
            for unit in units:
                record = unit.to_record()
                if unit.kind in LABELLED_KINDS:
                    record.update(next(results).to_record())
                else:
                    record.update({"claim_types": [], "stance": "unrelated", "voice": "author"})
                records.append(record)
            out.append(records)
        return out

    def classify_article(self, text: str, doc_id: str | None = None) -> ArticleResult:
        """Segment an article with the project's cleaner; label every unit; summarise."""
        doc_id = doc_id or "article"
        return ArticleResult(doc_id, self.classify_units(segment_text(text, doc_id)))

    # --- Hugging Face conventions ------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        return save_pretrained(self._require_model(), self.tokenizer, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> StanceClassifier:
        classifier = cls()
        classifier.model, classifier.tokenizer = from_pretrained(directory)
        return classifier

    def _require_model(self) -> MultiTaskModel:
        if self.model is None:
            raise RuntimeError("the classifier is not trained: call fit() or from_pretrained()")
        return self.model


def _probability_dict(probabilities: Probabilities, row: int) -> dict[str, float]:
    values = {f"claim_{name}": probabilities.claims[row, i] for i, name in enumerate(CLAIM_TYPES)}
    values.update(
        {f"stance_{name}": probabilities.stance[row, i] for i, name in enumerate(STANCES)}
    )
    values.update({f"voice_{name}": probabilities.voice[row, i] for i, name in enumerate(VOICES)})
    return {name: float(value) for name, value in values.items()}


def load_classifier(
    directory: str | Path | None = None,
    threads: int | None = None,
    backend: str = "torch",
    precision: str | None = None,
):
    """The shipped model (or one saved at ``directory``), loaded offline.

    ``backend="onnx"`` runs the encoder with ONNX Runtime (``pip install
    "mineral-stance[onnx]"``; exported once to the user cache, see
    ``onnx_backend``), with ``precision`` "fp32" or "int8". ``threads`` defaults
    to the cores not kept busy by other processes (``config.inference_threads``).
    """
    directory = directory or SHIPPED_MODEL_DIR
    if backend == "onnx":
        from mineral_stance.onnx_backend import DEFAULT_PRECISION, OnnxStanceClassifier

        return OnnxStanceClassifier.from_pretrained(
            directory, precision=precision or DEFAULT_PRECISION, threads=threads
        )
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r} (use 'torch' or 'onnx')")
    torch.set_num_threads(inference_threads(threads))
    return StanceClassifier.from_pretrained(directory)
