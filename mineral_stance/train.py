"""Fine-tune the multi-task model on labelled sentences, on a CPU, reproducibly.

Choices made for two CPU cores and a few hundred sentences:
- inputs cut at 128 tokens and batched by length, so little time goes to padding;
- the embedding matrix (250k x 384, most of the model) and all but the top
  ``trained_layers`` transformer layers stay frozen; their output is computed
  once per sentence and cached, so an epoch costs only the top layers;
- the top layers train either through LoRA adapters (peft) on every attention
  and feed-forward projection ("lora"), or in full ("top_layers"), or not at
  all ("frozen": only the heads learn);
- with ``head_init = "linear_probe"`` the heads start at a logistic regression on
  the frozen features (LP-FT) instead of at random;
- class imbalance handled by loss weights (inverse frequency to a power, 0.5 by default);
- with ``text_cues``, the heads also read the schema's textual cues (``cues``);
- with ``script = "simplified"``, Traditional characters are converted first;
- one seed fixes data order, dropout and initialisation.
"""

from __future__ import annotations

import random
import warnings
from collections.abc import Iterator

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mineral_stance.config import TrainConfig
from mineral_stance.cues import CUE_NAMES
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.model import (
    ModelConfig,
    MultiTaskModel,
    convert_script,
    default_text_prefix,
    load_encoder,
    sentence_vector,
)


def set_seed(seed: int) -> None:
    random.seed(seed)
    np.random.seed(seed)
    torch.manual_seed(seed)


def length_grouped_batches(
    lengths: list[int], batch_size: int, rng: np.random.Generator
) -> Iterator[np.ndarray]:
    """Shuffled batches of similar-length items: shuffle, sort within windows, shuffle batches."""
    order = rng.permutation(len(lengths))
    window = batch_size * 8
    batches = []
    for start in range(0, len(order), window):
        chunk = order[start : start + window]
        chunk = chunk[np.argsort([lengths[i] for i in chunk], kind="stable")]
        batches.extend(chunk[i : i + batch_size] for i in range(0, len(chunk), batch_size))
    for index in rng.permutation(len(batches)):
        yield batches[index]


def balanced_weights(labels: np.ndarray, n_classes: int, power: float = 0.5) -> torch.Tensor:
    """Class weights count**-power, normalised to mean 1 (absent classes get the max).

    power 1 is scikit-learn's "balanced" (what the linear probe uses); 0.5, the
    inverse square root, is the gentler default.
    """
    counts = np.bincount(labels, minlength=n_classes).astype(float)
    weights = np.maximum(counts, 1.0) ** -power
    weights[counts == 0] = weights.max()
    return torch.tensor(weights / weights.mean(), dtype=torch.float32)


def positive_weights(claims: np.ndarray, power: float = 0.5) -> torch.Tensor:
    """BCE pos_weight per claim type: (negatives / positives)**power, capped at 10."""
    positives = claims.sum(0).astype(float)
    negatives = len(claims) - positives
    ratio = (negatives / np.maximum(positives, 1.0)) ** power
    return torch.tensor(np.clip(ratio, 1.0, 10.0), dtype=torch.float32)


def prepare_encoder(encoder: nn.Module, config: TrainConfig, model_config: ModelConfig):
    """Freeze the encoder, then attach LoRA adapters to, or unfreeze, its top layers.

    Method "frozen" leaves the whole encoder frozen: only the heads learn.
    """
    for param in encoder.parameters():
        param.requires_grad = False
    if config.method == "frozen":
        return encoder
    n_layers = encoder.config.num_hidden_layers
    top = list(range(n_layers - config.trained_layers, n_layers))
    if config.method == "lora":
        from peft import LoraConfig, get_peft_model

        lora = LoraConfig(
            r=config.lora_r,
            lora_alpha=config.lora_alpha,
            lora_dropout=config.lora_dropout,
            target_modules=model_config.lora_target_modules,
            layers_to_transform=top,
            layers_pattern="layer",
            bias="none",
        )
        with warnings.catch_warnings():  # peft calls a deprecated transformers property
            warnings.simplefilter("ignore", FutureWarning)
            return get_peft_model(encoder, lora)
    if config.method == "top_layers":
        for index in top:
            for param in encoder.encoder.layer[index].parameters():
                param.requires_grad = True
        return encoder
    raise ValueError(
        f"unknown training method {config.method!r} (use 'lora', 'top_layers' or 'frozen')"
    )


def underlying_model(encoder: nn.Module) -> nn.Module:
    """The transformers model inside a peft wrapper (or the encoder itself)."""
    return encoder.get_base_model() if hasattr(encoder, "get_base_model") else encoder


@torch.inference_mode()
def frozen_states(
    encoder: nn.Module,
    tokenizer,
    texts: list[str],
    prefix: str,
    max_length: int,
    first_trained: int,
) -> list[torch.Tensor]:
    """Per sentence, the hidden states entering the first trained layer (no padding).

    The layers below ``first_trained`` are the base encoder's own, never trained,
    so a sentence's states depend only on the base model, the prefix, the length
    limit and the layer: they are computed once per process and reused by every
    cross-validation fold and the final fit.
    """
    base = underlying_model(encoder)
    base.eval()
    key = (getattr(base.config, "_name_or_path", ""), prefix, max_length, first_trained)
    known = _STATE_CACHE.setdefault(key, {})
    missing = [i for i, text in enumerate(texts) if text not in known]
    order = sorted(missing, key=lambda i: len(texts[i]))
    for start in range(0, len(order), 32):
        batch = order[start : start + 32]
        inputs = tokenize(tokenizer, [texts[i] for i in batch], prefix, max_length)
        hidden = base(**inputs, output_hidden_states=True).hidden_states[first_trained]
        for row, index in enumerate(batch):
            length = int(inputs["attention_mask"][row].sum())
            known[texts[index]] = hidden[row, :length].clone()
    return [known[text] for text in texts]


# (base model, prefix, max_length, layer) -> sentence -> frozen states; see frozen_states
_STATE_CACHE: dict[tuple, dict[str, torch.Tensor]] = {}


def run_top_layers(
    encoder: nn.Module, states: torch.Tensor, attention_mask: torch.Tensor, first_trained: int
) -> torch.Tensor:
    """The trained top layers over cached states, as the full model would run them."""
    from transformers.masking_utils import create_bidirectional_mask

    base = underlying_model(encoder)
    mask = create_bidirectional_mask(
        config=base.config, inputs_embeds=states, attention_mask=attention_mask
    )
    for layer in base.encoder.layer[first_trained:]:
        states = layer(states, mask)
    return states


def pad_states(states: list[torch.Tensor]) -> tuple[torch.Tensor, torch.Tensor]:
    """Stack variable-length cached states into a padded batch and its attention mask."""
    longest = max(len(s) for s in states)
    hidden = states[0].shape[-1]
    batch = torch.zeros(len(states), longest, hidden)
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, item in enumerate(states):
        batch[row, : len(item)] = item
        mask[row, : len(item)] = 1
    return batch, mask


def linear_probe(
    features: np.ndarray, labels: np.ndarray, n_classes: int, c: float
) -> tuple[np.ndarray, np.ndarray]:
    """Softmax weights (n_classes, d) and biases of a balanced logistic regression.

    Classes absent from ``labels`` get zero weights and a bias far below the
    others, so the head starts by never predicting them.
    """
    from sklearn.linear_model import LogisticRegression

    weights = np.zeros((n_classes, features.shape[1]), dtype=np.float32)
    biases = np.full(n_classes, -10.0, dtype=np.float32)
    present = np.unique(labels)
    if len(present) == 1:
        biases[present[0]] = 0.0
        return weights, biases
    probe = LogisticRegression(max_iter=3000, class_weight="balanced", C=c).fit(features, labels)
    if len(present) == 2:  # binary: one coefficient vector, for the second class
        weights[present[1]], biases[present[1]] = probe.coef_[0], probe.intercept_[0]
        biases[present[0]] = 0.0
    else:
        weights[present], biases[present] = probe.coef_, probe.intercept_
    return weights, biases


@torch.no_grad()
def init_heads_by_linear_probe(
    model: MultiTaskModel,
    cached: list[torch.Tensor],
    cues: torch.Tensor,
    targets: Targets,
    first_trained: int,
    c: float,
) -> None:
    """Start each head at the logistic regression on the frozen encoder's features (LP-FT).

    Fine-tuning from a random head distorts the pretrained features before the
    head is any good; starting from the linear probe keeps what the frozen
    encoder and the cues already separate, which generalises better to unseen
    documents.
    """
    model.eval()
    vectors = []
    for start in range(0, len(cached), 32):
        states, mask = pad_states(cached[start : start + 32])
        vectors.append(
            sentence_vector(run_top_layers(model.encoder, states, mask, first_trained), mask)
        )
    features = torch.cat([torch.cat(vectors), cues], dim=-1).numpy()
    for column in range(targets.claims.shape[1]):
        weights, biases = linear_probe(features, targets.claims[:, column], 2, c)
        model.claim_head.weight[column] = torch.from_numpy(weights[1] - weights[0])
        model.claim_head.bias[column] = float(biases[1] - biases[0])
    for head, labels in ((model.stance_head, targets.stance), (model.voice_head, targets.voice)):
        weights, biases = linear_probe(features, labels, head.out_features, c)
        head.weight.copy_(torch.from_numpy(weights))
        head.bias.copy_(torch.from_numpy(biases))
    model.train()


def tokenize(tokenizer, texts: list[str], prefix: str, max_length: int) -> dict:
    return tokenizer(
        [prefix + text for text in texts],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def fit(
    texts: list[str],
    targets: Targets,
    config: TrainConfig,
    progress: bool = True,
) -> tuple[MultiTaskModel, object]:
    """Train a model from scratch on (texts, targets); return it in eval mode, with tokenizer."""
    if config.head_init not in ("random", "linear_probe"):  # before the costly encoding pass
        raise ValueError(f"unknown head_init {config.head_init!r} (use 'random' or 'linear_probe')")
    # imported here, not at the top: transformers' optimisation module pulls in
    # trainer_utils and peft, seconds of start-up that predicting never needs
    from transformers import get_linear_schedule_with_warmup

    set_seed(config.seed)
    torch.set_num_threads(config.threads)
    encoder, tokenizer = load_encoder(config.base_model)
    trained_layers = 0 if config.method == "frozen" else config.trained_layers
    model_config = ModelConfig(
        base_model=config.base_model,
        method=config.method,
        max_length=config.max_length,
        text_prefix=default_text_prefix(config.base_model),
        trained_layers=trained_layers,
        lora_r=config.lora_r,
        lora_alpha=config.lora_alpha,
        head_dropout=config.head_dropout,
        text_cues=list(CUE_NAMES) if config.text_cues else [],
        script=config.script,
    )
    first_trained = encoder.config.num_hidden_layers - trained_layers
    cached = frozen_states(
        encoder,
        tokenizer,
        convert_script(texts, model_config.script),
        model_config.text_prefix,
        config.max_length,
        first_trained,
    )
    encoder = prepare_encoder(encoder, config, model_config)
    model = MultiTaskModel(encoder, model_config)
    cues = model.text_cues(texts)
    if config.head_init == "linear_probe":
        init_heads_by_linear_probe(model, cached, cues, targets, first_trained, config.probe_c)
    model.train()

    claim_loss = nn.BCEWithLogitsLoss(
        pos_weight=positive_weights(targets.claims, config.class_weight_power)
        if config.class_weighting
        else None
    )
    stance_loss = nn.CrossEntropyLoss(
        weight=balanced_weights(
            targets.stance, len(model_config.stances), config.class_weight_power
        )
        if config.class_weighting
        else None
    )
    voice_loss = nn.CrossEntropyLoss(
        weight=balanced_weights(targets.voice, len(model_config.voices), config.class_weight_power)
        if config.class_weighting
        else None
    )

    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    groups = [{"params": head_params, "lr": config.head_learning_rate}]
    if encoder_params:  # none with method "frozen"
        groups.append({"params": encoder_params, "lr": config.learning_rate})
    optimizer = torch.optim.AdamW(groups, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(texts) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    rng = np.random.default_rng(config.seed)
    claims = torch.tensor(targets.claims, dtype=torch.float32)
    stance = torch.tensor(targets.stance)
    voice = torch.tensor(targets.voice)
    lengths = [len(state) for state in cached]

    bar = tqdm(
        total=total_steps, desc="training", disable=not progress or not total_steps, unit="batch"
    )
    for _epoch in range(config.epochs):
        for batch in length_grouped_batches(lengths, config.batch_size, rng):
            states, mask = pad_states([cached[i] for i in batch])
            top_states = run_top_layers(model.encoder, states, mask, first_trained)
            logits = model.heads(top_states, mask, cues[batch])
            loss = (
                claim_loss(logits["claims"], claims[batch])
                + stance_loss(logits["stance"], stance[batch])
                + voice_loss(logits["voice"], voice[batch])
            )
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
    bar.close()
    model.config.training = {
        k: v for k, v in vars(config).items() if isinstance(v, int | float | str)
    }
    model.eval()
    return model, tokenizer


def token_sorted_batches(
    tokenizer, texts: list[str], prefix: str, max_length: int, batch_size: int
) -> Iterator[tuple[np.ndarray, np.ndarray, np.ndarray]]:
    """(positions, input_ids, attention_mask) batches of texts of similar token count.

    Texts are tokenized once, then sorted by their number of tokens (not
    characters: Chinese and English differ several-fold in characters per
    token), so each padded batch wastes little of the encoder's work.
    """
    encoded = tokenizer(
        [prefix + text for text in texts], truncation=True, max_length=max_length
    )["input_ids"]
    order = np.argsort([len(ids) for ids in encoded], kind="stable")
    pad_id = tokenizer.pad_token_id or 0
    for start in range(0, len(texts), batch_size):
        positions = order[start : start + batch_size]
        width = max(len(encoded[i]) for i in positions)
        input_ids = np.full((len(positions), width), pad_id, dtype=np.int64)
        attention_mask = np.zeros((len(positions), width), dtype=np.int64)
        for row, i in enumerate(positions):
            input_ids[row, : len(encoded[i])] = encoded[i]
            attention_mask[row, : len(encoded[i])] = 1
        yield positions, input_ids, attention_mask


@torch.inference_mode()
def predict_probabilities(
    model: MultiTaskModel, tokenizer, texts: list[str], batch_size: int = 64
) -> Probabilities:
    """Probabilities for every text, batched by token count, returned in input order."""
    config = model.config
    converted = convert_script(texts, config.script)
    cues = model.text_cues(texts)
    claims = np.zeros((len(texts), len(config.claim_types)), dtype=np.float32)
    stance = np.zeros((len(texts), len(config.stances)), dtype=np.float32)
    voice = np.zeros((len(texts), len(config.voices)), dtype=np.float32)
    for batch, input_ids, attention_mask in token_sorted_batches(
        tokenizer, converted, config.text_prefix, config.max_length, batch_size
    ):
        logits = model(torch.from_numpy(input_ids), torch.from_numpy(attention_mask), cues[batch])
        claims[batch] = torch.sigmoid(logits["claims"]).numpy()
        stance[batch] = torch.softmax(logits["stance"], -1).numpy()
        voice[batch] = torch.softmax(logits["voice"], -1).numpy()
    return Probabilities(claims=claims, stance=stance, voice=voice)


def tune_thresholds(probabilities: np.ndarray, truth: np.ndarray) -> list[float]:
    """Per claim type, the threshold that maximises F1 on held-out predictions.

    F1 is often flat over a wide range of thresholds; among equally good ones
    the threshold nearest 0.5 (the balanced-loss default) is kept, rather than
    the lowest, which transfers badly to another document.
    """
    from sklearn.metrics import f1_score

    candidates = np.round(np.linspace(0.1, 0.9, 33), 3)
    thresholds = []
    for column in range(truth.shape[1]):
        scores = np.array(
            [
                f1_score(truth[:, column], probabilities[:, column] >= t, zero_division=0)
                for t in candidates
            ]
        )
        best = np.flatnonzero(scores == scores.max())
        thresholds.append(float(candidates[best[np.argmin(np.abs(candidates[best] - 0.5))]]))
    return thresholds
