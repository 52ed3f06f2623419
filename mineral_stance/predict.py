"""The classifier users hold: scikit-learn-style fit/predict, HF-style save/load.

from mineral_stance import load_classifier
clf = load_classifier()                 # the shipped model, offline
clf.predict(["美国应与盟友合作，确保供应链安全。"])
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import TYPE_CHECKING

from tqdm.auto import tqdm

from mineral_stance.config import (
    CLAIM_TYPES,
    LABELLED_KINDS,
    SHIPPED_MODEL_DIR,
    STANCES,
    VOICES,
    TrainConfig,
    inference_threads,
)
from mineral_stance.context import Context, contexts_of_articles
from mineral_stance.labels import Probabilities, Targets, label_dicts
from mineral_stance.results import ArticleResult, Predictions, prediction_columns
from mineral_stance.segment import Unit, segment_text
from mineral_stance.truncation import fit_to_model

if TYPE_CHECKING:  # torch, transformers and the training code load in the methods that need
    # them, so the ONNX backend (a subclass) predicts without importing them
    from mineral_stance.model import MultiTaskModel

# with a progress bar, sentences go to the model in chunks of this many batches
PROGRESS_CHUNK_BATCHES = 8


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
        from mineral_stance.train import fit

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
    def stance_offsets(self) -> list[float]:
        """Per stance, added to its log-probability before the argmax (tuned for macro-F1)."""
        return list(self._require_model().config.stance_offsets)

    @stance_offsets.setter
    def stance_offsets(self, values: list[float]) -> None:
        self._require_model().config.stance_offsets = [float(v) for v in values]

    @property
    def voice_offsets(self) -> list[float]:
        """Per voice, added to its log-probability before the argmax (tuned for macro-F1)."""
        return list(self._require_model().config.voice_offsets)

    @voice_offsets.setter
    def voice_offsets(self, values: list[float]) -> None:
        self._require_model().config.voice_offsets = [float(v) for v in values]

    def decide(self, probabilities: Probabilities) -> Targets:
        """This model's hard labels for its probabilities: claim thresholds, class offsets."""
        return probabilities.decide(
            self.claim_thresholds, self.stance_offsets, self.voice_offsets
        )

    @property
    def temperatures(self) -> dict[str, float]:
        """Per task, the temperature the logits are divided by (calibration)."""
        return dict(self._require_model().config.temperatures)

    @temperatures.setter
    def temperatures(self, values: dict[str, float]) -> None:
        self._require_model().config.temperatures = {k: float(v) for k, v in values.items()}

    @property
    def labels(self) -> dict[str, list[str]]:
        """Label names per task, in the order of the model's output columns."""
        config = self._require_model().config
        return {
            "claim_types": list(config.claim_types),
            "stance": list(config.stances),
            "voice": list(config.voices),
        }

    @property
    def id2label(self) -> dict[str, dict[int, str]]:
        """Column index → label name per task, as in a Hugging Face model config."""
        return {task: dict(enumerate(names)) for task, names in self.labels.items()}

    def predict_proba(
        self,
        texts: str | Iterable[str],
        contexts: Iterable[Context] | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> Probabilities:
        """Calibrated probabilities as arrays: claims (n, 3), stance (n, 4), voice (n, 2).

        ``texts`` is any iterable of strings (list, tuple, numpy array, pandas
        Series, generator); a single string gives one row (``probabilities[0]``).
        ``contexts`` (one ``Context`` per sentence) are read by a model trained
        with context; without them every sentence is read alone.
        Column names are on the result (``.columns``, ``.to_pandas()``).
        """
        single, sentences = as_sentences(texts)
        contexts = as_contexts(contexts, len(sentences), single)
        probabilities, _ = self._probabilities(
            sentences, contexts, batch_size, show_progress_bar
        )
        return probabilities[0] if single else probabilities

    def predict(
        self,
        texts: str | Iterable[str],
        contexts: Iterable[Context] | None = None,
        min_confidence: float | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> Predictions | SentenceResult:
        """One result per sentence: labels plus the probability of every label.

        A single string gives a single ``SentenceResult``, as the transformers
        pipeline and SetFit do; any iterable of strings gives ``Predictions``.
        With ``min_confidence``, each result also says whether its stance's
        probability is below it (``stance_uncertain``); the label is not changed.
        """
        if min_confidence is not None and not 0.0 <= min_confidence <= 1.0:
            raise ValueError(f"min_confidence must be between 0 and 1, not {min_confidence}")
        single, sentences = as_sentences(texts)
        contexts = as_contexts(contexts, len(sentences), single)
        probabilities, truncated = self._probabilities(
            sentences, contexts, batch_size, show_progress_bar
        )
        decisions = label_dicts(self.decide(probabilities))
        results = []
        for i, (text, decision) in enumerate(zip(sentences, decisions, strict=True)):
            result = SentenceResult(
                text=text,
                probabilities=_probability_dict(probabilities, i),
                truncated=truncated[i],
                **decision,
            )
            if min_confidence is not None:
                result.stance_uncertain = result.stance_confidence < min_confidence
            results.append(result)
        return results[0] if single else Predictions(results)

    def __call__(
        self,
        texts: str | Iterable[str],
        contexts: Iterable[Context] | None = None,
        min_confidence: float | None = None,
        batch_size: int | None = None,
        show_progress_bar: bool = False,
    ) -> Predictions | SentenceResult:
        """``clf(texts)`` is ``clf.predict(texts)``, as with a transformers pipeline."""
        return self.predict(
            texts,
            contexts,
            min_confidence=min_confidence,
            batch_size=batch_size,
            show_progress_bar=show_progress_bar,
        )

    def _model_probabilities(
        self, sentences: list[str], contexts: list[Context] | None, batch_size: int
    ) -> Probabilities:
        """The model's calibrated probabilities for sentences cut to fit: the seam a
        backend replaces."""
        from mineral_stance.train import predict_probabilities

        return predict_probabilities(
            self._require_model(),
            self.tokenizer,
            sentences,
            batch_size,
            contexts=contexts,
            cached=self.cache_states,
        )

    def _probabilities(
        self,
        sentences: list[str],
        contexts: list[Context] | None,
        batch_size: int | None,
        show_progress_bar: bool,
    ) -> tuple[Probabilities, list[bool]]:
        """Probabilities with named columns, and whether each sentence was cut to fit."""
        model = self._require_model()
        batch_size = self.batch_size if batch_size is None else batch_size
        if batch_size < 1:
            raise ValueError(f"batch_size must be at least 1, not {batch_size}")
        # a sentence over max_length is cut once, so the encoder and the cues read the same text
        sentences, truncated = fit_to_model(model.config, self.tokenizer, sentences)
        if not sentences:
            probabilities = Probabilities.empty()
        elif not show_progress_bar:
            probabilities = self._model_probabilities(sentences, contexts, batch_size)
        else:
            # chunks of several batches: the bar moves, each chunk still sorted by length
            parts = []
            with tqdm(total=len(sentences), unit=" sentences", desc="predicting") as bar:
                for start, end in progress_chunks(
                    contexts, len(sentences), batch_size * PROGRESS_CHUNK_BATCHES
                ):
                    part = sentences[start:end]
                    part_contexts = None if contexts is None else contexts[start:end]
                    parts.append(self._model_probabilities(part, part_contexts, batch_size))
                    bar.update(len(part))
            probabilities = Probabilities.concatenate(parts)
        config = model.config
        named = replace(
            probabilities,
            claim_types=tuple(config.claim_types),
            stances=tuple(config.stances),
            voices=tuple(config.voices),
        )
        return named, truncated

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
        labelled unit before it, the article's first heading, and the article it is
        in) for a model that reads context; captions, footnotes, tables and boilerplate
        get the schema's default for non-claims (no claim, ``unrelated``, ``author``) and
        probability columns left empty.
        """
        labelled, contexts = contexts_of_articles(groups)
        results = iter(
            self.predict([u.text for u in labelled], contexts, min_confidence=min_confidence)
        )
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
        return ArticleResult(doc_id, self.classify_units(units, min_confidence), text)

    # --- Hugging Face conventions ------------------------------------------
    def save_pretrained(self, directory: str | Path) -> Path:
        from mineral_stance.model import save_pretrained

        return save_pretrained(self._require_model(), self.tokenizer, directory)

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> StanceClassifier:
        from mineral_stance.model import from_pretrained

        classifier = cls()
        classifier.model, classifier.tokenizer = from_pretrained(directory)
        return classifier

    def _require_model(self) -> MultiTaskModel:
        if self.model is None:
            raise RuntimeError("the classifier is not trained: call fit() or from_pretrained()")
        return self.model


# the probability columns of a labelled unit, as Predictions tables name them
PROBABILITY_COLUMNS = [column for column in prediction_columns() if column.startswith("p_")]


def as_sentences(texts: str | Iterable[str]) -> tuple[bool, list[str]]:
    """(was it a single string, the sentences as a list); a clear TypeError for anything else."""
    if isinstance(texts, str):
        return True, [texts]
    if texts is None or isinstance(texts, bytes | dict) or not isinstance(texts, Iterable):
        raise TypeError(
            "expected a sentence (str) or an iterable of sentences "
            f"(list, tuple, numpy array, pandas Series), not {type(texts).__name__}"
        )
    if hasattr(texts, "columns"):  # a DataFrame iterates over its column names
        raise TypeError("pass one column of the DataFrame, e.g. df['text'], not the whole frame")
    sentences = list(texts.tolist() if hasattr(texts, "tolist") else texts)
    for position, text in enumerate(sentences):
        if not isinstance(text, str):
            raise TypeError(
                f"texts[{position}] is {type(text).__name__}, not str: "
                "every sentence must be a string (drop or fill missing values first)"
            )
    return False, sentences


def progress_chunks(
    contexts: list[Context] | None, n_sentences: int, size: int
) -> Iterator[tuple[int, int]]:
    """(start, end) of chunks of about ``size`` sentences that never split an article
    (a model reading article vectors must see each article whole)."""
    start = 0
    while start < n_sentences:
        end = min(start + size, n_sentences)
        while contexts is not None and 0 < end < n_sentences and (
            contexts[end].article and contexts[end].article == contexts[end - 1].article
        ):
            end += 1
        yield start, end
        start = end


def as_contexts(
    contexts: Iterable[Context] | None, n_sentences: int, single: bool
) -> list[Context] | None:
    """The contexts as a list, one per sentence (a single Context for a single sentence)."""
    if contexts is None:
        return None
    contexts = [contexts] if single and isinstance(contexts, Context) else list(contexts)
    if len(contexts) != n_sentences:
        raise ValueError(f"{n_sentences} sentences but {len(contexts)} contexts")
    for position, context in enumerate(contexts):
        if not isinstance(context, Context):
            raise TypeError(
                f"contexts[{position}] is {type(context).__name__}, not Context: "
                "use mineral_stance.context.Context(previous, title, article)"
            )
    return contexts


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
    if threads is not None and (isinstance(threads, bool) or not isinstance(threads, int)
                                or threads < 1):
        raise ValueError(f"threads must be a whole number of at least 1, got {threads!r}")
    directory = directory or SHIPPED_MODEL_DIR
    if backend == "onnx":
        from mineral_stance.onnx_backend import DEFAULT_PRECISION, OnnxStanceClassifier

        return OnnxStanceClassifier.from_pretrained(
            directory, precision=precision or DEFAULT_PRECISION, threads=threads
        )
    if backend != "torch":
        raise ValueError(f"unknown backend {backend!r} (use 'torch' or 'onnx')")
    import torch

    torch.set_num_threads(inference_threads(threads))
    return StanceClassifier.from_pretrained(directory)
