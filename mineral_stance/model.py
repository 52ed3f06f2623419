"""The multi-task network: one shared encoder, three heads, saved as a directory.

A sentence is encoded once (mean-pooled, L2-normalised token states, as
multilingual-e5 embeddings are used), and three small linear heads read that
vector, together with
the schema's textual cues (``cues``: modals, quantities, reporting verbs ...)
as 0/1 inputs when the model was trained with them:

- claim types: three sigmoid outputs, each with its own decision threshold;
- stance: a four-way softmax;
- voice: a two-way softmax.

A saved model is a Hugging Face-style directory that never contains the base
encoder, only what training changed:

    config.json            label maps, thresholds, base model name, settings
    heads.safetensors      the three heads
    adapter/               LoRA adapter (peft) when trained with method "lora"
    encoder_top.safetensors  unfrozen top layers when trained with "top_layers"
                           (neither for "frozen": the encoder is the base model)
    README.md              the model card
"""

from __future__ import annotations

import shutil
import warnings
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path

import torch
from safetensors.torch import load_file, save_file
from torch import nn
from transformers import AutoModel, AutoTokenizer
from transformers.utils import logging as transformers_logging

from mineral_stance.base_encoder import resolve_base_model
from mineral_stance.context import Context, article_vectors
from mineral_stance.cues import cue_features
from mineral_stance.model_config import (  # noqa: F401  (the names model.py always offered)
    ADAPTER_DIR,
    CONFIG_NAME,
    HEADS_NAME,
    SCRIPT_CONVERSIONS,
    TOP_LAYERS_NAME,
    ModelConfig,
    convert_script,
    default_text_prefix,
)


class MultiTaskModel(nn.Module):
    """Shared encoder plus claim, stance and voice heads over mean-pooled states."""

    def __init__(self, encoder: nn.Module, config: ModelConfig):
        super().__init__()
        self.encoder = encoder
        self.config = config
        # with context, the heads read the context's pooled tokens beside the sentence's,
        # and with article_vector the mean sentence vector of the article as well
        vectors = (1 if config.context == "none" else 2) + int(config.article_vector)
        features = vectors * encoder.config.hidden_size + len(config.text_cues)
        self.dropout = nn.Dropout(config.head_dropout)
        self.claim_head = nn.Linear(features, len(config.claim_types))
        self.stance_head = nn.Linear(features, len(config.stances))
        self.voice_head = nn.Linear(features, len(config.voices))

    def text_cues(self, texts: list[str]) -> torch.Tensor:
        """The 0/1 cue inputs this model's heads expect for ``texts`` (n, number of cues)."""
        return torch.from_numpy(cue_features(texts, self.config.text_cues))

    def forward(
        self,
        input_ids: torch.Tensor,
        attention_mask: torch.Tensor,
        cues: torch.Tensor | None = None,
        sentence_mask: torch.Tensor | None = None,
    ) -> dict:
        states = self.encoder(input_ids=input_ids, attention_mask=attention_mask).last_hidden_state
        return self.heads(states, attention_mask, cues, sentence_mask)

    def heads(
        self,
        states: torch.Tensor,
        attention_mask: torch.Tensor,
        cues: torch.Tensor | None = None,
        sentence_mask: torch.Tensor | None = None,
        article: torch.Tensor | None = None,
    ) -> dict:
        """Logits of the three heads from the encoder's last hidden states (and the cues,
        and for an ``article_vector`` model the article vectors)."""
        return self.classify(self.pool(states, attention_mask, sentence_mask), cues, article)

    def pool(
        self,
        states: torch.Tensor,
        attention_mask: torch.Tensor,
        sentence_mask: torch.Tensor | None = None,
    ) -> torch.Tensor:
        """The pooled vectors the heads read: the sentence's, then the context's if any.

        ``sentence_mask`` marks the sentence's own tokens when a context follows it
        (see ``context.encode``); without it every attended token is the sentence.
        """
        if sentence_mask is None:
            sentence_mask = attention_mask
        pooled = sentence_vector(states, sentence_mask)
        if self.config.context != "none":
            context_vector = sentence_vector(states, attention_mask - sentence_mask)
            pooled = torch.cat([pooled, context_vector], -1)
        return pooled

    def classify(
        self,
        pooled: torch.Tensor,
        cues: torch.Tensor | None = None,
        article: torch.Tensor | None = None,
    ) -> dict:
        """Logits of the three heads from the pooled vectors (``pool``), the article
        vectors (``context.article_vectors`` of the sentence vectors) and the cues."""
        if self.config.article_vector:
            if article is None:
                raise ValueError("this model reads article vectors: pass article=...")
            pooled = torch.cat([pooled, article.to(pooled.dtype)], dim=-1)
        pooled = self.dropout(pooled)
        if self.config.text_cues:
            if cues is None:
                raise ValueError("this model reads text cues: pass cues=model.text_cues(texts)")
            pooled = torch.cat([pooled, cues.to(pooled.dtype)], dim=-1)
        return {
            "claims": self.claim_head(pooled),
            "stance": self.stance_head(pooled),
            "voice": self.voice_head(pooled),
        }

    def article_input(
        self, pooled: torch.Tensor, contexts: list[Context] | None
    ) -> torch.Tensor | None:
        """For an ``article_vector`` model, each row's article vector from the pooled
        vectors of the sentences given together (None for any other model)."""
        if not self.config.article_vector:
            return None
        sentence_part = pooled[:, : self.encoder.config.hidden_size].detach().float().numpy()
        return torch.from_numpy(article_vectors(sentence_part, contexts))

    def heads_state_dict(self) -> dict[str, torch.Tensor]:
        return {
            name: tensor.detach().contiguous()
            for name, tensor in self.state_dict().items()
            if not name.startswith("encoder.")
        }


@contextmanager
def quiet_transformers() -> Iterator[None]:
    """Only errors and no progress bars from transformers while loading models.

    The load report lists the unused pooler of models saved with one; the
    heads never read the pooler, so only errors are worth printing.
    """
    verbosity = transformers_logging.get_verbosity()
    transformers_logging.set_verbosity_error()
    transformers_logging.disable_progress_bar()
    try:
        yield
    finally:
        transformers_logging.set_verbosity(verbosity)
        transformers_logging.enable_progress_bar()


def mean_pool(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """Average of the token states under the attention mask (e5's sentence vector)."""
    mask = attention_mask.unsqueeze(-1).to(states.dtype)
    return (states * mask).sum(1) / mask.sum(1).clamp(min=1.0)


def sentence_vector(states: torch.Tensor, attention_mask: torch.Tensor) -> torch.Tensor:
    """The L2-normalised mean of the token states: how e5 sentence embeddings are used."""
    return nn.functional.normalize(mean_pool(states, attention_mask), dim=-1)


def load_encoder(base_model: str, local_files_only: bool = False) -> tuple[nn.Module, object]:
    """The base encoder and its tokenizer, from the bundled e5, a local dir or a hub id.

    ``local_files_only`` keeps a hub id from reaching the network (loading a saved model).
    """
    location = resolve_base_model(base_model)
    with quiet_transformers():
        encoder = AutoModel.from_pretrained(
            location, add_pooling_layer=False, local_files_only=local_files_only
        )
        tokenizer = AutoTokenizer.from_pretrained(location, local_files_only=local_files_only)
    return encoder, tokenizer


def save_pretrained(model: MultiTaskModel, tokenizer, directory: str | Path) -> Path:
    """Write the trained parts (never the base encoder) and the config."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    model.config.save(directory)
    save_file(model.heads_state_dict(), directory / HEADS_NAME)
    # a model saved over an older one must not keep the other method's weights
    if model.config.method != "lora" and (directory / ADAPTER_DIR).is_dir():
        shutil.rmtree(directory / ADAPTER_DIR)
    if model.config.method != "top_layers":
        (directory / TOP_LAYERS_NAME).unlink(missing_ok=True)
    if model.config.method == "lora" and hasattr(model.encoder, "peft_config"):
        model.encoder.save_pretrained(directory / ADAPTER_DIR)
    elif model.config.method == "lora":
        # loaded for inference, the adapter is merged into the encoder: save the
        # adapter it was loaded from, not the whole merged encoder
        source = getattr(model, "adapter_source", None)
        if source is None:
            raise ValueError("this LoRA model has no adapter to save (it was merged)")
        if source.resolve() != (directory / ADAPTER_DIR).resolve():
            shutil.copytree(source, directory / ADAPTER_DIR, dirs_exist_ok=True)
    elif model.config.method == "top_layers":
        trainable = {
            name: param.detach().contiguous()
            for name, param in model.encoder.named_parameters()
            if param.requires_grad
        }
        save_file(trainable, directory / TOP_LAYERS_NAME)
    return directory


def from_pretrained(directory: str | Path) -> tuple[MultiTaskModel, object]:
    """Rebuild a saved model on top of its base encoder, ready for inference."""
    from mineral_stance.model_files import check_fits_encoder, validate_model_dir

    directory = Path(directory)
    config = validate_model_dir(directory)  # refuses a broken directory, naming file and field
    encoder, tokenizer = load_encoder(config.base_model, local_files_only=True)
    check_fits_encoder(directory, config, encoder)
    if config.method == "lora":
        from peft import PeftModel

        with warnings.catch_warnings():  # peft calls a deprecated transformers property
            warnings.simplefilter("ignore", FutureWarning)
            adapted = PeftModel.from_pretrained(encoder, directory / ADAPTER_DIR)
        encoder = adapted.merge_and_unload()
    elif config.method == "top_layers":
        missing = encoder.load_state_dict(load_file(directory / TOP_LAYERS_NAME), strict=False)
        if missing.unexpected_keys:
            raise ValueError(f"{directory}: weights do not fit the base encoder")
    model = MultiTaskModel(encoder, config)
    if config.method == "lora":
        model.adapter_source = directory / ADAPTER_DIR  # what save_pretrained writes back
    loaded = model.load_state_dict(load_file(directory / HEADS_NAME), strict=False)
    missing_heads = [name for name in loaded.missing_keys if not name.startswith("encoder.")]
    if missing_heads or loaded.unexpected_keys:
        raise ValueError(f"{directory}: {HEADS_NAME} does not match the label maps in config.json")
    model.eval()
    return model, tokenizer
