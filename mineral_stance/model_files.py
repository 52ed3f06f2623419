"""Check a saved model directory before anything in it is used.

A model directory is data someone else may have written by hand or cut short,
so the loader refuses one that would give silently wrong labels: every field
of ``config.json`` is checked for type and range, label names must be the
schema's in the schema's order (the output columns are named from it), the
heads must hold finite numbers of the right shapes and nothing else (a heads
file carrying ``encoder.*`` tensors would quietly overwrite encoder weights),
and the base encoder must be available without the network. Every refusal is
an ``InvalidModelError`` naming the file and the field.
"""

from __future__ import annotations

import json
import math
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file

from mineral_stance.config import CLAIM_TYPES, DEFAULT_BASE_MODEL, STANCES, VOICES
from mineral_stance.context import CONTEXT_MODES
from mineral_stance.cues import CUES
from mineral_stance.model import (
    ADAPTER_DIR,
    CONFIG_NAME,
    HEADS_NAME,
    SCRIPT_CONVERSIONS,
    TOP_LAYERS_NAME,
    ModelConfig,
)

METHODS = ("lora", "top_layers", "frozen")
HEADS = {"claim_head": "claim_types", "stance_head": "stances", "voice_head": "voices"}
# the smallest and largest token budgets that make sense for one sentence
MIN_MAX_LENGTH, MAX_MAX_LENGTH = 8, 8192


class InvalidModelError(ValueError):
    """A model directory that cannot be used; the message names the file and the field."""


def validate_model_dir(directory: str | Path) -> ModelConfig:
    """The directory's config, after checking config.json, the heads and the method's files."""
    directory = Path(directory)
    if not directory.is_dir():
        raise InvalidModelError(f"{directory}: no such model directory")
    config = validate_config(directory / CONFIG_NAME)
    validate_heads(directory / HEADS_NAME, config)
    if config.method == "lora":
        adapter = directory / ADAPTER_DIR
        if not (adapter / "adapter_config.json").is_file():
            raise InvalidModelError(f"{adapter}: missing adapter_config.json (method 'lora')")
        for weights in sorted(adapter.glob("*.safetensors")):
            _finite_tensors(weights)
    elif config.method == "top_layers":
        _finite_tensors(directory / TOP_LAYERS_NAME)
    check_base_model_is_local(config.base_model, directory / CONFIG_NAME)
    return config


def validate_config(path: Path) -> ModelConfig:
    """config.json as a ``ModelConfig``, every field checked."""
    if not path.is_file():
        raise InvalidModelError(f"{path.parent} is not a mineral_stance model (no {path.name})")
    try:
        data = json.loads(path.read_text(encoding="utf-8"))
    except (UnicodeDecodeError, json.JSONDecodeError, RecursionError) as error:
        raise InvalidModelError(f"{path}: not valid JSON ({error})") from None
    if not isinstance(data, dict):
        raise InvalidModelError(f"{path}: expected a JSON object, got {type(data).__name__}")
    known = set(ModelConfig.__dataclass_fields__)
    unknown = sorted(set(data) - known)
    if unknown:
        raise InvalidModelError(f"{path}: unknown field(s): {', '.join(unknown)}")

    def fail(name: str, problem: str) -> InvalidModelError:
        return InvalidModelError(f"{path}: {name}: {problem}")

    def check(name: str, ok: bool, problem: str) -> None:
        if name in data and not ok:
            raise fail(name, f"{problem}, got {data[name]!r}")

    value = data.get
    check("base_model", _text(value("base_model")) and value("base_model").strip(), "a name")
    check("method", value("method") in METHODS, f"one of {', '.join(METHODS)}")
    check(
        "max_length",
        _integer(value("max_length")) and MIN_MAX_LENGTH <= value("max_length") <= MAX_MAX_LENGTH,
        f"a whole number of tokens from {MIN_MAX_LENGTH} to {MAX_MAX_LENGTH}",
    )
    check("text_prefix", _text(value("text_prefix")), "a string")
    for name, expected in (("claim_types", CLAIM_TYPES), ("stances", STANCES), ("voices", VOICES)):
        check(
            name,
            value(name) == list(expected),
            f"must be {list(expected)} in this order (the output columns are named by it)",
        )
    thresholds = value("claim_thresholds")
    if "claim_thresholds" in data:
        if not isinstance(thresholds, list) or len(thresholds) != len(CLAIM_TYPES):
            raise fail(
                "claim_thresholds",
                f"one threshold per claim type ({len(CLAIM_TYPES)}), got {thresholds!r}",
            )
        for i, threshold in enumerate(thresholds):
            if not (_number(threshold) and 0.0 <= threshold <= 1.0):
                raise fail(
                    f"claim_thresholds[{i}]", f"a number from 0 to 1, got {threshold!r}"
                )
    for name, labels in (("stance_offsets", STANCES), ("voice_offsets", VOICES)):
        offsets = value(name)
        if name in data and not (
            isinstance(offsets, list)
            and len(offsets) == len(labels)
            and all(_number(o) and abs(o) <= 20 for o in offsets)
        ):
            raise fail(name, f"one number per label ({len(labels)}), got {offsets!r}")
    check("trained_layers", _integer(value("trained_layers")) and value("trained_layers") >= 0,
          "a whole number >= 0")  # fmt: skip
    check("lora_r", _integer(value("lora_r")) and value("lora_r") >= 1, "a whole number >= 1")
    check("lora_alpha", _number(value("lora_alpha")) and value("lora_alpha") > 0, "a number > 0")
    check(
        "lora_target_modules",
        isinstance(value("lora_target_modules"), list)
        and all(_text(m) for m in value("lora_target_modules")),
        "a list of module names",
    )
    check(
        "head_dropout",
        _number(value("head_dropout")) and 0.0 <= value("head_dropout") < 1.0,
        "a number from 0 to below 1",
    )
    cues = value("text_cues")
    check(
        "text_cues",
        isinstance(cues, list) and all(c in CUES for c in cues) and len(set(cues)) == len(cues),
        f"a list of distinct cue names from {', '.join(CUES)}",
    )
    check("script", value("script") in SCRIPT_CONVERSIONS, "'simplified', 'traditional' or ''")
    check("context", value("context") in CONTEXT_MODES, f"one of {', '.join(CONTEXT_MODES)}")
    check("article_vector", isinstance(value("article_vector"), bool), "true or false")
    check("training", isinstance(value("training"), dict), "an object")
    return ModelConfig(**data)


def validate_heads(path: Path, config: ModelConfig) -> dict[str, torch.Tensor]:
    """The heads' tensors: exactly the three heads, shapes fitting the labels, finite values."""
    tensors = _finite_tensors(path)
    expected = {f"{head}.{part}" for head in HEADS for part in ("weight", "bias")}
    unexpected = sorted(set(tensors) - expected)
    if unexpected:
        what = "encoder weights" if any(n.startswith("encoder.") for n in unexpected) else "tensors"
        raise InvalidModelError(
            f"{path}: unexpected {what} {', '.join(unexpected[:5])}"
            + (" …" if len(unexpected) > 5 else "")
            + " (a heads file holds only the three heads)"
        )
    missing = sorted(expected - set(tensors))
    if missing:
        raise InvalidModelError(f"{path}: missing {', '.join(missing)}")
    inputs = {tensors[f"{head}.weight"].shape[-1] for head in HEADS}
    for head, labels in HEADS.items():
        weight, bias = tensors[f"{head}.weight"], tensors[f"{head}.bias"]
        rows = len(getattr(config, labels))
        if weight.dim() != 2 or weight.shape[0] != rows or bias.shape != (rows,):
            raise InvalidModelError(
                f"{path}: {head}: shapes {tuple(weight.shape)} and {tuple(bias.shape)} do not fit "
                f"{rows} {labels} in config.json"
            )
    if len(inputs) != 1 or next(iter(inputs)) <= len(config.text_cues):
        raise InvalidModelError(
            f"{path}: the heads read {sorted(inputs)} inputs; they must all read the sentence "
            f"vector plus {len(config.text_cues)} text cue(s)"
        )
    return tensors


def check_fits_encoder(directory: Path, config: ModelConfig, encoder: torch.nn.Module) -> None:
    """The heads' input size and max_length against the base encoder actually loaded."""
    # a model that reads context pools the sentence's tokens and the context's apart
    # (and a model that reads its article's vector reads one vector more)
    vectors = (1 if config.context == "none" else 2) + int(config.article_vector)
    hidden = encoder.config.hidden_size * vectors
    heads = load_file(directory / HEADS_NAME)
    reads = heads["claim_head.weight"].shape[1]
    if reads != hidden + len(config.text_cues):
        raise InvalidModelError(
            f"{directory / HEADS_NAME}: the heads read {reads} inputs but the base encoder "
            f"{config.base_model!r} gives {hidden} plus {len(config.text_cues)} text cue(s)"
        )
    positions = getattr(encoder.config, "max_position_embeddings", None)
    length = config.max_length + config.context_length
    if positions is not None and length > positions:
        raise InvalidModelError(
            f"{directory / CONFIG_NAME}: max_length + context_length: {length} is more than "
            f"the base encoder's {positions} positions"
        )


def check_base_model_is_local(base_model: str, config_path: Path) -> None:
    """The bundled encoder, a local folder, or a hub model already in the local cache.

    Loading a model never downloads: a hub name that is not cached is refused
    here instead of waiting for the network (or for its time-out).
    """
    if base_model == DEFAULT_BASE_MODEL or Path(base_model).is_dir():
        return
    from huggingface_hub import try_to_load_from_cache

    try:
        cached = try_to_load_from_cache(base_model, "config.json")
    except ValueError:  # not even a valid hub name
        cached = None
    if not isinstance(cached, str):
        raise InvalidModelError(
            f"{config_path}: base_model: {base_model!r} is neither the bundled encoder "
            f"({DEFAULT_BASE_MODEL!r}) nor a local folder, and is not in the Hugging Face cache; "
            "mineral_stance does not download models when loading one. Download it yourself "
            "(e.g. `huggingface-cli download NAME`) or set base_model to its folder."
        )


def _finite_tensors(path: Path) -> dict[str, torch.Tensor]:
    if not path.is_file():
        raise InvalidModelError(f"{path}: missing")
    try:
        tensors = load_file(path)
    except (SafetensorError, OSError, ValueError) as error:
        raise InvalidModelError(f"{path}: not a readable safetensors file ({error})") from None
    for name, tensor in tensors.items():
        if tensor.is_floating_point() and not torch.isfinite(tensor).all():
            raise InvalidModelError(f"{path}: {name}: holds NaN or infinite values")
    return tensors


def _text(value: object) -> bool:
    return isinstance(value, str)


def _integer(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _number(value: object) -> bool:
    return (
        isinstance(value, int | float) and not isinstance(value, bool) and math.isfinite(value)
    )
