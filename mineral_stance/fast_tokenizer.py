"""The base encoder's tokenizer read with the ``tokenizers`` library alone.

Why: ``transformers.AutoTokenizer`` imports transformers (and through it torch),
seconds of start-up a process that only labels sentences does not need. A
fast tokenizer is one ``tokenizer.json``; the ``tokenizers`` library reads it in
a fraction of a second and gives the same ids (tests/test_fast_tokenizer.py
compares the two on the seed units). ``FastTokenizer`` offers the little of the
transformers API the prediction code uses: ``tokenizer(texts, truncation=True,
max_length=...)["input_ids"]``, offsets and special-token masks for
``truncation.fit_to_model``, ``num_special_tokens_to_add``, ``pad_token_id`` and
``backend_tokenizer``.
"""

from __future__ import annotations

import json
from pathlib import Path

from tokenizers import Tokenizer

TOKENIZER_FILE = "tokenizer.json"
TOKENIZER_CONFIG_FILE = "tokenizer_config.json"


class FastTokenizer:
    """A ``tokenizers.Tokenizer`` with the calls of a transformers fast tokenizer we use."""

    def __init__(self, backend: Tokenizer, pad_token: str | None = "<pad>"):
        backend.no_padding()
        backend.no_truncation()
        self.backend_tokenizer = backend
        self.pad_token_id = backend.token_to_id(pad_token) if pad_token else None

    @classmethod
    def from_pretrained(cls, directory: str | Path) -> FastTokenizer:
        """Read ``tokenizer.json`` (and the pad token from ``tokenizer_config.json``)."""
        directory = Path(directory)
        backend = Tokenizer.from_file(str(directory / TOKENIZER_FILE))
        pad_token = "<pad>"
        config_path = directory / TOKENIZER_CONFIG_FILE
        if config_path.is_file():
            pad = json.loads(config_path.read_text(encoding="utf-8")).get("pad_token", pad_token)
            pad_token = pad.get("content") if isinstance(pad, dict) else pad
        return cls(backend, pad_token)

    def num_special_tokens_to_add(self, pair: bool = False) -> int:
        return self.backend_tokenizer.post_processor.num_special_tokens_to_add(pair)

    def __call__(
        self,
        texts: list[str],
        truncation: bool = False,
        max_length: int | None = None,
        return_offsets_mapping: bool = False,
        return_special_tokens_mask: bool = False,
        verbose: bool = True,  # noqa: ARG002  (accepted as transformers does; we never warn)
    ) -> dict[str, list[list]]:
        """Token ids of each text with special tokens, cut at ``max_length`` if asked."""
        backend = self.backend_tokenizer
        if truncation and max_length is not None:
            backend.enable_truncation(max_length)
        try:
            encodings = backend.encode_batch(list(texts), add_special_tokens=True)
        finally:
            backend.no_truncation()
        out: dict[str, list[list]] = {"input_ids": [e.ids for e in encodings]}
        out["attention_mask"] = [e.attention_mask for e in encodings]
        if return_offsets_mapping:
            out["offset_mapping"] = [e.offsets for e in encodings]
        if return_special_tokens_mask:
            out["special_tokens_mask"] = [e.special_tokens_mask for e in encodings]
        return out


def load_tokenizer(directory: str | Path):
    """The tokenizer of a base-encoder directory: ``FastTokenizer`` when it has a
    ``tokenizer.json``, else (a slow-only tokenizer) transformers' ``AutoTokenizer``."""
    if (Path(directory) / TOKENIZER_FILE).is_file():
        return FastTokenizer.from_pretrained(directory)
    from transformers import AutoTokenizer

    from mineral_stance.model import quiet_transformers

    with quiet_transformers():
        return AutoTokenizer.from_pretrained(directory, local_files_only=True)
