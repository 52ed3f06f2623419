"""A sentence with what an analyst reads around it: the sentence before and the title.

Many sentences take their stance or voice from outside themselves: a quotation
that spans sentences, 他表示 in the line before, a heading that names the
alliance. A model trained with ``context = "previous"`` or ``"previous+title"``
reads each sentence as the first text of a pair and that context as the
second. The context is cut to fit, never the sentence: the sentence keeps the
``max_length`` budget it has without context, and the context gets
``context_length`` tokens more (the title at most a third of them).

The heads read the sentence's own tokens (mean-pooled, as without context) and,
beside them, the context's tokens, so the sentence vector stays the sentence's
while attention lets each side read the other.

A model trained with ``article_vector`` reads the whole article another way: its
heads see, beside each sentence's vector, the mean of the vectors of every
sentence of the same article (``Context.article`` names it) given in the same
call. An analyst reads a sentence knowing what the article is arguing; this
gives the stance head that, at no extra encoder cost (every sentence of the
article is encoded anyway).
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
from tokenizers import Encoding

from mineral_stance.config import LABELLED_KINDS
from mineral_stance.model_config import convert_script

if TYPE_CHECKING:
    import torch

CONTEXT_MODES: tuple[str, ...] = ("none", "previous", "previous+title")
# sentences tokenized per call (encode_rows without context, truncation.fit_to_model):
# bounds the peak memory a corpus-sized tokenizer output would leave behind
ENCODE_SLICE = 512


@dataclass(frozen=True)
class Context:
    """What surrounds one sentence: the unit before it in its article, the article's
    title, and which article it is (sentences with the same ``article`` are read as one
    article; a sentence without one is an article of its own)."""

    previous: str = ""
    title: str = ""
    article: str = ""


def article_vectors(vectors: np.ndarray, contexts: list[Context] | None) -> np.ndarray:
    """Per sentence, the L2-normalised mean of the ``vectors`` of its article's sentences.

    Sentences are grouped by ``Context.article``; one without an article (or without
    contexts at all) is its own article, so its article vector is its own vector.
    """
    if contexts is None:
        keys = [f"\0{row}" for row in range(len(vectors))]
    else:
        keys = [c.article or f"\0{row}" for row, c in enumerate(contexts)]
    _, group = np.unique(np.array(keys, dtype=object), return_inverse=True)
    sums = np.zeros((group.max() + 1 if len(group) else 0, vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, group, vectors)
    norms = np.linalg.norm(sums, axis=1, keepdims=True)
    return (sums / np.maximum(norms, 1e-12))[group].astype(vectors.dtype)


def check_context_mode(mode: str) -> str:
    if mode not in CONTEXT_MODES:
        raise ValueError(f"unknown context {mode!r} (use {', '.join(map(repr, CONTEXT_MODES))})")
    return mode


def convert_contexts(contexts: list[Context] | None, script: str) -> list[Context] | None:
    """The contexts in the model's script, as the sentences are."""
    if contexts is None or not script:
        return contexts
    previous = convert_script([c.previous for c in contexts], script)
    titles = convert_script([c.title for c in contexts], script)
    return [
        Context(p, t, c.article) for p, t, c in zip(previous, titles, contexts, strict=True)
    ]


def contexts_of_articles(articles: list[list]) -> tuple[list, list[Context]]:
    """The units to label (body and heading, anything with ``kind`` and ``text``) of each
    article, in reading order, and each one's context: the labelled unit before it, the
    article's first heading, and the article (numbered in the order given)."""
    labelled, contexts = [], []
    for number, units in enumerate(articles):
        article = [u for u in units if u.kind in LABELLED_KINDS]
        title = next((u.text for u in units if u.kind == "heading"), "")
        for position, unit in enumerate(article):
            labelled.append(unit)
            previous = article[position - 1].text if position else ""
            contexts.append(Context(previous, title, article=str(number)))
    return labelled, contexts


def contexts_of_units(texts: list[str], titles: list[str], doc_ids: list[str]) -> list[Context]:
    """Each sentence's context in reading order: the sentence before it in the same document."""
    contexts, previous_doc, previous_text = [], None, ""
    for text, title, doc_id in zip(texts, titles, doc_ids, strict=True):
        contexts.append(Context(previous_text if doc_id == previous_doc else "", title, doc_id))
        previous_doc, previous_text = doc_id, text
    return contexts


def _context_encoding(backend, context: Context, mode: str, budget: int) -> Encoding | None:
    """The context parts the mode uses as one encoding, cut to ``budget`` tokens in all."""
    if mode == "none" or budget <= 0:
        return None
    parts = []
    title_length = 0
    if mode == "previous+title" and context.title:
        title = backend.encode(context.title, add_special_tokens=False)
        title.truncate(budget // 3)
        title_length = len(title.ids)
    if context.previous:
        previous = backend.encode(context.previous, add_special_tokens=False)
        previous.truncate(budget - title_length)
        parts.append(previous)
    if title_length:
        parts.append(title)
    parts = [part for part in parts if part.ids]
    if not parts:
        return None
    return Encoding.merge(parts, growing_offsets=True) if len(parts) > 1 else parts[0]


def encode_rows(
    tokenizer,
    texts: list[str],
    contexts: list[Context] | None,
    prefix: str,
    max_length: int,
    mode: str = "none",
    context_length: int = 0,
) -> list[tuple[np.ndarray, int]]:
    """Per sentence, its input ids (unpadded) and how many of them are the sentence's own.

    Without context (mode "none", or no contexts given) the ids are the sentence
    alone, cut at ``max_length``. With context, the sentence is the first text of
    a pair, cut at ``max_length`` as it would be alone, and the context the
    second, cut to the ``context_length`` tokens left for it.
    """
    check_context_mode(mode)
    if mode == "none" or contexts is None:
        rows = []
        # in slices, each kept as compact arrays: the tokenizer's full output for a
        # corpus-sized call (offsets, masks, Python ints) would raise the peak memory
        for start in range(0, len(texts), ENCODE_SLICE):
            encoded = tokenizer(
                [prefix + text for text in texts[start : start + ENCODE_SLICE]],
                truncation=True,
                max_length=max_length,
            )["input_ids"]
            rows.extend((np.array(ids, dtype=np.int32), len(ids)) for ids in encoded)
        return rows
    if len(contexts) != len(texts):
        raise ValueError(f"{len(texts)} sentences but {len(contexts)} contexts")
    backend = tokenizer.backend_tokenizer
    processor = backend.post_processor
    rows = []
    for text, context in zip(texts, contexts, strict=True):
        sentence = backend.encode(prefix + text, add_special_tokens=False)
        sentence.truncate(max_length - processor.num_special_tokens_to_add(False))
        second = _context_encoding(backend, context, mode, context_length)
        if second is None:
            ids = processor.process(sentence, None, True).ids
            rows.append((np.array(ids, dtype=np.int32), len(ids)))
        else:
            pair = processor.process(sentence, second, True)
            # the first text and the special tokens before the second: <s> sentence </s></s>
            rows.append((np.array(pair.ids, dtype=np.int32), pair.sequence_ids.index(1)))
    return rows


def pad_rows(rows: list[tuple[np.ndarray, int]], pad_id: int) -> dict[str, np.ndarray]:
    """Rows of ``encode_rows`` as padded int64 arrays: input ids, attention and sentence mask."""
    longest = max((len(ids) for ids, _ in rows), default=0)
    input_ids = np.full((len(rows), longest), pad_id, dtype=np.int64)
    attention_mask = np.zeros((len(rows), longest), dtype=np.int64)
    sentence_mask = np.zeros((len(rows), longest), dtype=np.int64)
    for row, (ids, sentence_length) in enumerate(rows):
        input_ids[row, : len(ids)] = ids
        attention_mask[row, : len(ids)] = 1
        sentence_mask[row, :sentence_length] = 1
    return {
        "input_ids": input_ids,
        "attention_mask": attention_mask,
        "sentence_mask": sentence_mask,
    }


def encode(
    tokenizer,
    texts: list[str],
    contexts: list[Context] | None,
    prefix: str,
    max_length: int,
    mode: str = "none",
    context_length: int = 0,
) -> dict[str, torch.Tensor]:
    """Padded input ids, attention mask and sentence mask (the sentence's own tokens)."""
    import torch  # here, not at the top: the ONNX backend predicts without torch

    rows = encode_rows(tokenizer, texts, contexts, prefix, max_length, mode, context_length)
    arrays = pad_rows(rows, tokenizer.pad_token_id or 0)
    return {name: torch.from_numpy(array) for name, array in arrays.items()}


def token_sorted_batches(
    tokenizer,
    texts: list[str],
    contexts: list[Context] | None,
    prefix: str,
    max_length: int,
    mode: str,
    context_length: int,
    batch_size: int,
) -> Iterator[tuple[np.ndarray, dict[str, np.ndarray]]]:
    """(positions, padded inputs) batches of texts of similar token count.

    Texts (with their contexts) are tokenized once, then sorted by their number
    of tokens (not characters: Chinese and English differ several-fold in
    characters per token), so each padded batch wastes little of the encoder's work.
    """
    rows = encode_rows(tokenizer, texts, contexts, prefix, max_length, mode, context_length)
    order = np.argsort([len(ids) for ids, _ in rows], kind="stable")
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(rows), batch_size):
        positions = order[start : start + batch_size]
        yield positions, pad_rows([rows[i] for i in positions], pad_id)
