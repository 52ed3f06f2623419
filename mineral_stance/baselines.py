"""Baselines scored in the same harness as the fine-tuned model.

Every system has the same small interface: ``fit(texts, targets)`` returns the
system, ``predict_proba(texts)`` returns ``Probabilities``, and
``claim_thresholds`` holds the per-claim decision thresholds.
"""

from __future__ import annotations

import os

import numpy as np
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.cues import (
    ALLIANCE,
    DISPARAGING,
    NORMATIVE,
    QUANTITY,
    QUOTATION,
    REPORTING,
    THREAT,
)
from mineral_stance.labels import Probabilities, Targets


def _class_probabilities(model: LogisticRegression, features, n_classes: int) -> np.ndarray:
    """predict_proba widened to every class, even those missing from a training fold."""
    out = np.zeros((features.shape[0], n_classes))
    out[:, model.classes_] = model.predict_proba(features)
    return out


class MajorityBaseline:
    """Always the most frequent label of each task (claim types: each label's majority)."""

    name = "majority"

    def fit(self, texts: list[str], targets: Targets) -> MajorityBaseline:
        self.claims = targets.claims.mean(0)
        self.stance = np.bincount(targets.stance, minlength=len(STANCES)) / len(targets)
        self.voice = np.bincount(targets.voice, minlength=len(VOICES)) / len(targets)
        self.claim_thresholds = [0.5] * len(CLAIM_TYPES)
        return self

    def predict_proba(self, texts: list[str]) -> Probabilities:
        n = len(texts)
        return Probabilities(
            claims=np.tile(self.claims, (n, 1)),
            stance=np.tile(self.stance, (n, 1)),
            voice=np.tile(self.voice, (n, 1)),
        )


class LinearBaseline:
    """Logistic regression per task over given features (balanced class weights)."""

    def _fit_heads(self, features, targets: Targets) -> None:
        def logistic() -> LogisticRegression:
            return LogisticRegression(max_iter=2000, class_weight="balanced", C=self.C)

        self.claim_models = []
        for column in range(targets.claims.shape[1]):
            labels = targets.claims[:, column]
            self.claim_models.append(logistic().fit(features, labels) if labels.any() else None)
        self.stance_model = logistic().fit(features, targets.stance)
        self.voice_model = logistic().fit(features, targets.voice)
        self.claim_thresholds = [0.5] * len(CLAIM_TYPES)

    def _predict_heads(self, features) -> Probabilities:
        claims = np.column_stack(
            [
                m.predict_proba(features)[:, 1] if m is not None else np.zeros(features.shape[0])
                for m in self.claim_models
            ]
        )
        return Probabilities(
            claims=claims,
            stance=_class_probabilities(self.stance_model, features, len(STANCES)),
            voice=_class_probabilities(self.voice_model, features, len(VOICES)),
        )


class TfidfBaseline(LinearBaseline):
    """Character uni- and bigram TF-IDF (works across scripts without a word segmenter).

    1–2-grams scored best of 1–2, 1–3 and 2–4 with C in {1, 4, 16} on the
    leave-one-document-out protocol, so the baseline is not a straw man."""

    name = "tfidf-char-lr"
    C = 4.0

    def fit(self, texts: list[str], targets: Targets) -> TfidfBaseline:
        self.vectorizer = TfidfVectorizer(
            analyzer="char_wb", ngram_range=(1, 2), min_df=1, sublinear_tf=True
        )
        self._fit_heads(self.vectorizer.fit_transform(texts), targets)
        return self

    def predict_proba(self, texts: list[str]) -> Probabilities:
        return self._predict_heads(self.vectorizer.transform(texts))


class EmbeddingBaseline(LinearBaseline):
    """Frozen multilingual-e5 sentence embeddings (mean pooled) with logistic regression."""

    name = "e5-frozen-lr"
    C = 2.0

    def __init__(self, base_model: str):
        self.base_model = base_model
        self._encoder = None

    def embed(self, texts: list[str]) -> np.ndarray:
        import torch

        from mineral_stance.model import default_text_prefix, load_encoder, sentence_vector
        from mineral_stance.train import tokenize

        if self._encoder is None:
            self._encoder, self._tokenizer = load_encoder(self.base_model)
            self._encoder.eval()
        prefix = default_text_prefix(self.base_model)
        out = []
        with torch.inference_mode():
            for start in range(0, len(texts), 32):
                inputs = tokenize(self._tokenizer, texts[start : start + 32], prefix, 128)
                states = self._encoder(**inputs).last_hidden_state
                out.append(sentence_vector(states, inputs["attention_mask"]).numpy())
        return np.concatenate(out)

    def fit(self, texts: list[str], targets: Targets) -> EmbeddingBaseline:
        self._fit_heads(self.embed(texts), targets)
        return self

    def predict_proba(self, texts: list[str]) -> Probabilities:
        return self._predict_heads(self.embed(texts))


class SetFitBaseline(EmbeddingBaseline):
    """SetFit: the same e5 body contrastively fine-tuned on stance pairs, then logistic heads.

    The body is tuned once per ``fit`` (SetFit's cosine-similarity pair loss on the
    stance labels, the hardest task, with a bounded step budget); the tuned body
    then embeds sentences (mean pooled, L2-normalised) for balanced logistic
    regression heads for every task, exactly as ``EmbeddingBaseline`` does with a
    frozen body. Needs the optional extra: ``pip install -e .[setfit]``.
    """

    name = "setfit"

    def __init__(
        self,
        base_model: str,
        max_steps: int = 150,
        seed: int = 13,
        batch_size: int = 16,
        num_iterations: int = 5,
        body_learning_rate: float = 2e-5,
        max_length: int = 128,
    ):
        super().__init__(base_model)
        self.max_steps = max_steps
        self.seed = seed
        self.batch_size = batch_size
        self.num_iterations = num_iterations
        self.body_learning_rate = body_learning_rate
        self.max_length = max_length

    @staticmethod
    def _import_setfit():
        os.environ.setdefault("HF_HUB_OFFLINE", "1")
        try:
            import setfit
        except ImportError as error:
            raise ImportError(
                "the setfit baseline needs the optional extra: pip install -e '.[setfit]'"
            ) from error
        setfit.logging.set_verbosity_warning()
        setfit.logging.disable_progress_bar()
        return setfit

    def embed(self, texts: list[str]) -> np.ndarray:
        from mineral_stance.model import default_text_prefix

        prefix = default_text_prefix(self.base_model)
        return self._encoder.encode(
            [prefix + text for text in texts],
            batch_size=32,
            normalize_embeddings=True,
            convert_to_numpy=True,
            show_progress_bar=False,
        )

    def fit(self, texts: list[str], targets: Targets) -> SetFitBaseline:
        import tempfile

        from transformers.trainer_callback import PrinterCallback, ProgressCallback

        from mineral_stance.base_encoder import resolve_base_model
        from mineral_stance.model import default_text_prefix, quiet_transformers

        setfit = self._import_setfit()
        prefix = default_text_prefix(self.base_model)
        with quiet_transformers():  # as in load_encoder
            model = setfit.SetFitModel.from_pretrained(
                resolve_base_model(self.base_model), device="cpu"
            )
            body = model.model_body
            body.max_seq_length = self.max_length
            if len(set(targets.stance.tolist())) > 1:  # contrastive pairs need two classes
                with tempfile.TemporaryDirectory() as output_dir:
                    args = setfit.TrainingArguments(
                        output_dir=output_dir,
                        batch_size=self.batch_size,
                        num_epochs=1,
                        max_steps=self.max_steps,
                        num_iterations=self.num_iterations,
                        body_learning_rate=self.body_learning_rate,
                        seed=self.seed,
                        max_length=self.max_length,
                        show_progress_bar=False,
                        report_to="none",
                        logging_strategy="no",
                        logging_first_step=False,
                        save_strategy="no",
                        eval_strategy="no",
                    )
                    trainer = setfit.Trainer(model=model, args=args)
                    trainer.st_trainer.args.dataloader_pin_memory = False
                    for callback in (ProgressCallback, PrinterCallback):
                        trainer.st_trainer.remove_callback(callback)
                    trainer.train_embeddings(
                        [prefix + text for text in texts], targets.stance.tolist(), args=args
                    )
        body.eval()
        self._encoder = body
        self._fit_heads(self.embed(texts), targets)
        return self


# --- Transparent rules ---------------------------------------------------------


class RulesBaseline:
    """The schema's own cues (see ``cues``) as decisions: number-with-unit for statistic,
    modals for recommendation, a threat lexicon, alliance terms (with disparaging
    words → oppose), reporting verbs and quotations for voice."""

    name = "rules"

    def fit(self, texts: list[str], targets: Targets) -> RulesBaseline:
        self.claim_thresholds = [0.5] * len(CLAIM_TYPES)
        return self

    def predict_proba(self, texts: list[str]) -> Probabilities:
        n = len(texts)
        claims = np.zeros((n, len(CLAIM_TYPES)))
        stance = np.zeros((n, len(STANCES)))
        voice = np.zeros((n, len(VOICES)))
        for i, text in enumerate(texts):
            claims[i] = [bool(THREAT.search(text)), bool(NORMATIVE.search(text)),
                         bool(QUANTITY.search(text))]  # fmt: skip
            if ALLIANCE.search(text):
                label = "oppose" if DISPARAGING.search(text) else "neutral"
            else:
                label = "unrelated"
            stance[i, STANCES.index(label)] = 1.0
            reported = REPORTING.search(text) or QUOTATION.search(text)
            voice[i, VOICES.index("reported" if reported else "author")] = 1.0
        return Probabilities(claims=claims, stance=stance, voice=voice)
