"""Sentences longer than the model reads: cut them once, the same way for every input.

The encoder reads at most ``max_length`` tokens of a sentence; the rest used
to be dropped by the tokenizer without a trace, while the textual cues
(``cues``) still read the whole sentence, so a change in a tail the encoder
never saw could flip a label. Here a sentence over the limit is cut at the end
of the last token the encoder keeps, and both the encoder and the cues read
that cut text; the caller flags the sentence as ``truncated``.
"""

from __future__ import annotations

from mineral_stance.context import ENCODE_SLICE
from mineral_stance.model_config import ModelConfig, convert_script


def fit_to_model(
    config: ModelConfig, tokenizer, texts: list[str]
) -> tuple[list[str], list[bool]]:
    """Each text as the model reads it (cut if over ``max_length`` tokens), and whether cut."""
    fitted, truncated = [], []
    # in slices: the offsets of a corpus-sized call, as Python tuples, would stay in the
    # process's peak memory long after they are dropped
    for start in range(0, len(texts), ENCODE_SLICE):
        part = texts[start : start + ENCODE_SLICE]
        part_fitted, part_truncated = _fit_slice(config, tokenizer, part)
        fitted.extend(part_fitted)
        truncated.extend(part_truncated)
    return fitted, truncated


def _fit_slice(config: ModelConfig, tokenizer, texts: list[str]) -> tuple[list[str], list[bool]]:
    prefix = config.text_prefix
    converted = [prefix + text for text in convert_script(texts, config.script)]
    encoded = tokenizer(
        converted,
        truncation=False,
        return_offsets_mapping=True,
        return_special_tokens_mask=True,
        verbose=False,  # no "longer than the maximum" warning: that is what we handle here
    )
    budget = config.max_length - tokenizer.num_special_tokens_to_add(pair=False)
    fitted, truncated = [], []
    for i, text in enumerate(texts):
        content = [
            offsets
            for offsets, special in zip(
                encoded["offset_mapping"][i], encoded["special_tokens_mask"][i], strict=True
            )
            if not special
        ]
        if len(content) <= budget:
            fitted.append(text)
            truncated.append(False)
            continue
        end = content[budget - 1][1] - len(prefix)  # end of the last token the encoder keeps
        if len(converted[i]) != len(prefix) + len(text):  # script conversion changed the length
            end = round(end * len(text) / max(1, len(converted[i]) - len(prefix)))
        fitted.append(text[: max(0, end)])
        truncated.append(True)
    return fitted, truncated
