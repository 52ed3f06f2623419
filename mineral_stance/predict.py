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
)
from mineral_stance.context import Context
from mineral_stance.labels import Probabilities, Targets, label_dicts
from mineral_stance.model import MultiTaskModel, from_pretrained, save_pretrained
from mineral_stance.results import ArticleResult, Predictions
from mineral_stance.segment import Unit, segment_text
from mineral_stance.train import fit, predict_probabilities
from mineral_stance.truncation import fit_to_model


@dataclass
class SentenceResult:
    """Labels of one sentence and the probability of every label."""

    text: str
    claim_types: list[str]
    stance: str
    voice: str
    probabilities: dict[str, float]
    # longer than the model's max_length: labelled from its first max_length tokens only
    truncated: bool = False
    # set when the caller asked for a minimum confidence: the stance label stays as
    # it is, and ``stance_uncertain`` says its probability fell below that minimum
    stance_uncertain: bool | None = None

    @property
    def stance_confidence(self) -> float:
        return self.probabilities[f"stance_{self.stance}"]

    def to_record(self) -> dict:
        record = {
            "text": self.text,
            "claim_types": self.claim_types,
            "stance": self.stance,
            "voice": self.voice,
            "truncated": self.truncated,
            **{f"p_{name}": round(value, 4) for name, value in self.probabilities.items()},
        }
        if self.stance_uncertain is not None:
            record["stance_confidence"] = round(self.stance_confidence, 4)
            record["stance_uncertain"] = self.stance_uncertain
        return record


class StanceClassifier:
    """Fine-tuned multilingual encoder with claim, stance and voice heads."""

    name = "fine-tuned"
    # cross-validation hands this system each sentence's context and outlet group
    reads_context = True

    def __init__(self, config: TrainConfig | None = None, cache_states: bool = False):
        """``cache_states`` (for cross-validation) keeps the frozen lower layers' states
        of every sentence seen, in training and prediction, for the next fold."""
        self.config = config or TrainConfig()
        self.model: MultiTaskModel | None = None
        self.tokenizer = None
        self.batch_size = 64
        self.cache_states = cache_states

    # --- scikit-learn conventions ------------------------------------------
    def fit(
        self,
        texts: list[str],
        targets: Targets,
        progress: bool = False,
        contexts: list[Context] | None = None,
        groups: list[str] | None = None,
    ) -> StanceClassifier:
        """Train on sentences (with their contexts, and outlet groups for early stopping)."""
        self.model, self.tokenizer = fit(
            texts, targets, self.config, progress=progress, contexts=contexts, groups=groups
        )
        return self

    @property
    def claim_thresholds(self) -> list[float]:
        return list(self._require_model().config.claim_thresholds)

    @claim_thresholds.setter
    def claim_thresholds(self, values: list[float]) -> None:
        self._require_model().config.claim_thresholds = [float(v) for v in values]

    @property
    def temperatures(self) -> dict[str, float]:
        return dict(self._require_model().config.temperatures)

    @temperatures.setter
    def temperatures(self, values: dict[str, float]) -> None:
        self._require_model().config.temperatures = {k: float(v) for k, v in values.items()}

    def predict_proba(
        self, texts: list[str], contexts: list[Context] | None = None
    ) -> Probabilities:
        """Calibrated probabilities as arrays: claims (n, 3), stance (n, 4), voice (n, 2).

        ``contexts`` (one per sentence) are read by a model trained with context;
        without them every sentence is read alone.
        """
        model = self._require_model()
        if not texts:
            return Probabilities(
                np.zeros((0, len(CLAIM_TYPES))), np.zeros((0, len(STANCES))), np.zeros((0, 2))
            )
        # a sentence over max_length is cut once, so the encoder and the cues read the same text
        fitted, _ = fit_to_model(model.config, self.tokenizer, list(texts))
        return predict_probabilities(
            model, self.tokenizer, fitted, self.batch_size, contexts=contexts,
            cached=self.cache_states,
        )

    def predict(
        self,
        texts: list[str],
        contexts: list[Context] | None = None,
        min_confidence: float | None = None,
    ) -> Predictions:
        """One result per sentence: labels plus the probability of every label.

        With ``min_confidence``, each result also says whether its stance's
        probability is below it (``stance_uncertain``); the label is not changed.
        """
        if isinstance(texts, str):
            raise TypeError("predict() takes a list of sentences; wrap a single one in [ ]")
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        fitted, truncated = fit_to_model(self._require_model().config, self.tokenizer, list(texts))
        probabilities = self.predict_proba(fitted, contexts)
        decisions = label_dicts(probabilities.decide(self.claim_thresholds))
        results = []
        for i, (text, decision) in enumerate(zip(texts, decisions, strict=True)):
            result = SentenceResult(
                text=text,
                probabilities=_probability_dict(probabilities, i),
                truncated=truncated[i],
                **decision,
            )
            if min_confidence is not None:
                result.stance_uncertain = result.stance_confidence < min_confidence
            results.append(result)
        return Predictions(results)

    def classify_units(
        self, units: list[Unit], min_confidence: float | None = None
    ) -> list[dict]:
        """Label one article's units (see ``classify_unit_groups``)."""
        return self.classify_unit_groups([units], min_confidence)[0]

    def classify_unit_groups(
        self, groups: list[list[Unit]], min_confidence: float | None = None
    ) -> list[list[dict]]:
        """Label the units of several articles with one model call.

        Body and heading units go through the model, each with its context (the
        labelled unit before it and the article's first heading) for a model that
        reads context; captions, footnotes, tables and boilerplate get the schema's
        default for non-claims (no claim, ``unrelated``, ``author``) and probability
        columns left empty.
        """
        labelled, contexts = [], []
        for units in groups:
            article = [u for u in units if u.kind in LABELLED_KINDS]
            title = next((u.text for u in units if u.kind == "heading"), "")
            for position, unit in enumerate(article):
                labelled.append(unit)
                contexts.append(Context(article[position - 1].text if position else "", title))
        results = iter(self.predict([u.text for u in labelled], contexts, min_confidence))
        out = []
        for units in groups:
            records = []
            for unit in units:
                record = unit.to_record()
                if unit.kind in LABELLED_KINDS:
                    record.update(next(results).to_record())
                else:  # the same columns as a labelled unit, probabilities empty
                    record.update({"claim_types": [], "stance": "unrelated", "voice": "author"})
                    record.update({"truncated": False, **dict.fromkeys(PROBABILITY_COLUMNS)})
                records.append(record)
            out.append(records)
        return out

    def classify_article(
        self, text: str, doc_id: str | None = None, min_confidence: float | None = None
    ) -> ArticleResult:
        """Segment an article with the project's cleaner; label every unit in its context;
        summarise. ``min_confidence`` flags stances below it (see ``predict``)."""
        doc_id = doc_id or "article"
        units = segment_text(text, doc_id)
        return ArticleResult(doc_id, self.classify_units(units, min_confidence))

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


PROBABILITY_COLUMNS = (
    [f"p_claim_{name}" for name in CLAIM_TYPES]
    + [f"p_stance_{name}" for name in STANCES]
    + [f"p_voice_{name}" for name in VOICES]
)


def _probability_dict(probabilities: Probabilities, row: int) -> dict[str, float]:
    values = {f"claim_{name}": probabilities.claims[row, i] for i, name in enumerate(CLAIM_TYPES)}
    values.update(
        {f"stance_{name}": probabilities.stance[row, i] for i, name in enumerate(STANCES)}
    )
    values.update({f"voice_{name}": probabilities.voice[row, i] for i, name in enumerate(VOICES)})
    return {name: float(value) for name, value in values.items()}


def load_classifier(directory: str | Path | None = None, threads: int | None = None):
    """The shipped model (or one saved at ``directory``), loaded offline."""
    if threads is not None:
        if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
            raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
        torch.set_num_threads(threads)
    return StanceClassifier.from_pretrained(directory or SHIPPED_MODEL_DIR)
