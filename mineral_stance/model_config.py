"""What a saved model is made of, readable without torch: its config and file names.

``model`` builds the network from these; the ONNX backend (``onnx_backend``) reads
them to predict with no torch, transformers or spaCy imported, so a process that
only labels sentences starts in a second or two.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from pathlib import Path

from mineral_stance.config import CLAIM_TYPES, DEFAULT_BASE_MODEL, STANCES, VOICES

CONFIG_NAME = "config.json"
HEADS_NAME = "heads.safetensors"
ADAPTER_DIR = "adapter"
TOP_LAYERS_NAME = "encoder_top.safetensors"


@dataclass
class ModelConfig:
    """Everything needed to rebuild a trained model around its base encoder."""

    base_model: str = DEFAULT_BASE_MODEL
    method: str = "lora"
    max_length: int = 128
    # multilingual-e5 expects a "query: " prefix on every input it was trained on
    text_prefix: str = "query: "
    claim_types: list[str] = field(default_factory=lambda: list(CLAIM_TYPES))
    stances: list[str] = field(default_factory=lambda: list(STANCES))
    voices: list[str] = field(default_factory=lambda: list(VOICES))
    claim_thresholds: list[float] = field(default_factory=lambda: [0.5] * len(CLAIM_TYPES))
    # per stance and per voice, added to the log-probabilities before the argmax:
    # tuned on out-of-fold predictions for macro-F1 as the claim thresholds are
    # (0 everywhere = the most probable label)
    stance_offsets: list[float] = field(default_factory=lambda: [0.0] * len(STANCES))
    voice_offsets: list[float] = field(default_factory=lambda: [0.0] * len(VOICES))
    trained_layers: int = 2
    lora_r: int = 16
    lora_alpha: int = 32
    lora_target_modules: list[str] = field(
        default_factory=lambda: ["query", "key", "value", "dense"]
    )
    head_dropout: float = 0.1
    # names of the textual cues (mineral_stance.cues) the heads read beside the
    # sentence vector; empty for a model that reads the sentence vector alone
    text_cues: list[str] = field(default_factory=list)
    # "simplified" converts Traditional characters before encoding (OpenCC t2s),
    # so the few Traditional training articles teach the same tokens as the rest;
    # "" leaves the text as it is
    script: str = ""
    # what the model reads beside each sentence (mineral_stance.context): "none",
    # "previous" or "previous+title", and how many tokens the context may add
    context: str = "none"
    context_length: int = 0
    # the heads also read the mean vector of the sentence's article (context.article_vectors)
    article_vector: bool = False
    # per task, the temperature that divides the logits (1 = uncalibrated), fitted on
    # out-of-fold predictions (mineral_stance.calibration)
    temperatures: dict[str, float] = field(
        default_factory=lambda: {"claims": 1.0, "stance": 1.0, "voice": 1.0}
    )
    training: dict = field(default_factory=dict)

    def save(self, directory: Path) -> None:
        text = json.dumps(asdict(self), ensure_ascii=False, indent=2)
        (directory / CONFIG_NAME).write_text(text, encoding="utf-8")

    @classmethod
    def load(cls, directory: Path) -> ModelConfig:
        path = directory / CONFIG_NAME
        if not path.exists():
            raise FileNotFoundError(f"{directory} is not a mineral_stance model (no {CONFIG_NAME})")
        return cls(**json.loads(path.read_text(encoding="utf-8")))


SCRIPT_CONVERSIONS = {"": None, "simplified": "t2s", "traditional": "s2t"}


@lru_cache(maxsize=2)
def _converter(conversion: str):
    import opencc

    return opencc.OpenCC(conversion)


def convert_script(texts: list[str], script: str) -> list[str]:
    """The texts in one Chinese script ("simplified" or "traditional"), or unchanged for ""."""
    if script not in SCRIPT_CONVERSIONS:
        raise ValueError(f"unknown script {script!r} (use 'simplified', 'traditional' or '')")
    conversion = SCRIPT_CONVERSIONS[script]
    if conversion is None:
        return list(texts)
    converter = _converter(conversion)
    return [converter.convert(text) for text in texts]


def default_text_prefix(base_model: str) -> str:
    """The e5 family wants "query: "; other encoders get the sentence as it is."""
    return "query: " if "e5" in base_model.lower() else ""
