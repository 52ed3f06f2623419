"""Active learning: which sentences are most worth annotating next.

Two things make a sentence worth an annotator's time: the model is unsure
about it, and it is unlike what is already labelled (a hundred near-copies of
one uncertain sentence teach little more than one). So each candidate gets

* an uncertainty in [0, 1] per task: for stance and voice one minus the margin
  between the two most probable labels (or the normalised entropy); for claim
  types the uncertainty of the claim closest to its decision threshold; the
  three tasks averaged;
* a distance to the labelled set: one minus the cosine similarity of its
  sentence vector (the encoder's own) to the nearest gold or already chosen one.

Selection is greedy k-center weighted by uncertainty: each step takes the
candidate with the largest uncertainty × distance, then updates the distances.
Candidates that are near-duplicates of gold (cosine ≥ 0.95, or the same text)
or of a chosen sentence are never taken.
"""

from __future__ import annotations

import re

import numpy as np
import torch

from mineral_stance.labels import Probabilities, label_dicts

STRATEGIES = ("margin", "entropy")
# cosine similarity of sentence vectors at or above which two sentences count as the same
DUPLICATE_SIMILARITY = 0.95


@torch.inference_mode()
def embed_and_predict(classifier, texts: list[str], batch_size: int = 32):
    """Sentence vectors (n, d) the heads read and the model's probabilities, in one encoder pass."""
    from mineral_stance.model import convert_script
    from mineral_stance.train import tokenize

    model = classifier._require_model()
    config = model.config
    order = np.argsort([len(t) for t in texts], kind="stable")
    hidden = model.encoder.config.hidden_size
    vectors = np.zeros((len(texts), hidden), dtype=np.float32)
    claims = np.zeros((len(texts), len(config.claim_types)), dtype=np.float32)
    stance = np.zeros((len(texts), len(config.stances)), dtype=np.float32)
    voice = np.zeros((len(texts), len(config.voices)), dtype=np.float32)
    for start in range(0, len(texts), batch_size):
        batch = order[start : start + batch_size]
        batch_texts = [texts[i] for i in batch]
        inputs = tokenize(
            classifier.tokenizer,
            convert_script(batch_texts, config.script),
            config.text_prefix,
            config.max_length,
        )
        mask = inputs["attention_mask"]
        states = model.encoder(input_ids=inputs["input_ids"], attention_mask=mask).last_hidden_state
        pooled = model.pool(states, mask)
        vectors[batch] = pooled[:, :hidden].numpy()
        # sentences read alone: an article_vector model gets each one as its own article
        logits = model.classify(
            pooled, model.text_cues(batch_texts), model.article_input(pooled, None)
        )
        claims[batch] = torch.sigmoid(logits["claims"]).numpy()
        stance[batch] = torch.softmax(logits["stance"], -1).numpy()
        voice[batch] = torch.softmax(logits["voice"], -1).numpy()
    return vectors, Probabilities(claims, stance, voice)


def normalise(vectors: np.ndarray) -> np.ndarray:
    norms = np.linalg.norm(vectors, axis=1, keepdims=True)
    return vectors / np.maximum(norms, 1e-12)


def _class_uncertainty(p: np.ndarray, strategy: str) -> np.ndarray:
    """0 = certain, 1 = as unsure as possible, for rows of class probabilities."""
    if strategy == "margin":
        top = np.sort(p, axis=1)
        return 1.0 - (top[:, -1] - top[:, -2])
    entropy = -(p * np.log(np.clip(p, 1e-12, 1.0))).sum(1)
    return entropy / np.log(p.shape[1])


def uncertainty(
    probabilities: Probabilities, claim_thresholds, strategy: str = "margin"
) -> np.ndarray:
    """Per sentence, the mean over the three tasks of how unsure the model is (0 to 1)."""
    if strategy not in STRATEGIES:
        raise ValueError(f"unknown strategy {strategy!r} (use {' or '.join(STRATEGIES)})")
    claims = probabilities.claims
    if strategy == "margin":
        # distance to the threshold, scaled so that 0 and 1 are fully certain
        t = np.asarray(claim_thresholds, dtype=float)
        room = np.where(claims < t, t, 1.0 - t)
        claim_u = 1.0 - np.abs(claims - t) / np.maximum(room, 1e-6)
    else:
        q = np.clip(claims, 1e-12, 1 - 1e-12)
        claim_u = -(q * np.log(q) + (1 - q) * np.log(1 - q)) / np.log(2)
    per_task = [
        claim_u.max(1) if claims.shape[1] else np.zeros(len(claims)),
        _class_uncertainty(probabilities.stance, strategy),
        _class_uncertainty(probabilities.voice, strategy),
    ]
    return np.clip(np.mean(per_task, axis=0), 0.0, 1.0)


def select(
    scores: np.ndarray,
    vectors: np.ndarray,
    labelled_vectors: np.ndarray | None,
    n: int,
    duplicate_similarity: float = DUPLICATE_SIMILARITY,
) -> list[int]:
    """Indices of up to ``n`` candidates: greedy k-center weighted by ``scores``.

    ``vectors`` and ``labelled_vectors`` are unit length. A candidate whose
    similarity to a labelled or already chosen sentence reaches
    ``duplicate_similarity`` is never chosen.
    """
    if len(scores) == 0 or n <= 0:
        return []
    if labelled_vectors is not None and len(labelled_vectors):
        nearest = (vectors @ labelled_vectors.T).max(1)
    else:
        nearest = np.full(len(vectors), -1.0)
    eligible = nearest < duplicate_similarity
    distance = np.clip(1.0 - nearest, 0.0, 2.0)
    chosen: list[int] = []
    # a small floor keeps the uncertainty ranking when every distance is alike
    weights = np.maximum(scores, 1e-6)
    for _ in range(min(n, len(scores))):
        value = np.where(eligible, weights * distance, -np.inf)
        pick = int(np.argmax(value))
        if not np.isfinite(value[pick]):
            break
        chosen.append(pick)
        similarity = vectors @ vectors[pick]
        eligible &= similarity < duplicate_similarity
        eligible[pick] = False
        distance = np.minimum(distance, np.clip(1.0 - similarity, 0.0, 2.0))
    return chosen


def _same_text_key(text: str) -> str:
    return re.sub(r"\s+", "", text)


def suggest(
    classifier,
    candidates: list[dict],
    gold: list[dict],
    n: int,
    strategy: str = "margin",
    batch_size: int = 32,
) -> list[dict]:
    """The ``n`` candidate sentence records most worth annotating, best first.

    Each returned record keeps its fields and gains the model's labels and
    probabilities (the pre-annotation for ``export``), ``uncertainty`` and
    ``suggest_rank``.
    """
    gold_texts = {_same_text_key(r["text"]) for r in gold}
    seen: set[str] = set()
    pool = []
    for record in candidates:
        key = _same_text_key(record["text"])
        if key and key not in gold_texts and key not in seen:
            seen.add(key)
            pool.append(record)
    if not pool:
        return []
    vectors, probabilities = embed_and_predict(classifier, [r["text"] for r in pool], batch_size)
    vectors = normalise(vectors)
    gold_vectors = None
    if gold:
        gold_vectors, _ = embed_and_predict(classifier, [r["text"] for r in gold], batch_size)
        gold_vectors = normalise(gold_vectors)
    scores = uncertainty(probabilities, classifier.claim_thresholds, strategy)
    picked = select(scores, vectors, gold_vectors, n)
    decisions = label_dicts(classifier.decide(probabilities[picked]))
    out = []
    for rank, (index, labels) in enumerate(zip(picked, decisions, strict=True), start=1):
        record = {key: value for key, value in pool[index].items() if not key.startswith("p_")}
        record.update(labels)
        row = probabilities[index]
        values = (round(float(v), 4) for v in row.to_numpy()[0])
        record.update(dict(zip(row.columns, values, strict=True)))
        record["uncertainty"] = round(float(scores[index]), 4)
        record["suggest_rank"] = rank
        out.append(record)
    return out
