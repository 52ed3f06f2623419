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

import hashlib
import os
import random
import warnings
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from mineral_stance.config import TrainConfig
from mineral_stance.context import (
    Context,
    check_context_mode,
    convert_contexts,
    encode,
    token_sorted_batches,
)
from mineral_stance.cues import CUE_NAMES
from mineral_stance.labels import Probabilities, Targets
from mineral_stance.model import (
    ModelConfig,
    MultiTaskModel,
    convert_script,
    default_text_prefix,
    load_encoder,
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


@dataclass
class CachedStates:
    """Per sentence, the hidden states entering the first trained layer (no padding),
    and how many of those tokens are the sentence itself (the rest is its context)."""

    states: list[torch.Tensor]
    sentence_lengths: list[int]

    def __len__(self) -> int:
        return len(self.states)


# The frozen lower layers give every sentence the same states in every fold of a
# cross-validation: compute them once per input and setting, keep them
# for the next fold of the same configuration, and forget them when it changes.
_STATE_CACHE: dict = {"key": None, "states": {}}
# With this environment variable naming a directory, the cache is also kept on disk
# (one file per configuration), so `train` after `compare` encodes nothing again.
STATE_CACHE_ENV = "MINERAL_STANCE_STATE_CACHE"


def _state_cache_file(key: tuple) -> Path | None:
    directory = os.environ.get(STATE_CACHE_ENV)
    if not directory:
        return None
    digest = hashlib.sha1(repr(key).encode("utf-8")).hexdigest()[:16]
    return Path(directory) / f"frozen-states-{digest}.pt"


@torch.inference_mode()
def frozen_states(
    encoder: nn.Module,
    tokenizer,
    texts: list[str],
    model_config: ModelConfig,
    first_trained: int,
    contexts: list[Context] | None = None,
) -> CachedStates:
    """The states entering the first trained layer, from the cache where already computed."""
    key = (
        model_config.base_model,
        model_config.text_prefix,
        model_config.max_length,
        model_config.context,
        model_config.context_length,
        first_trained,
    )
    disk = _state_cache_file(key)
    if _STATE_CACHE["key"] != key:
        stored = torch.load(disk, weights_only=True) if disk and disk.exists() else {}
        _STATE_CACHE.update(key=key, states={(text, Context(*ctx) if ctx else None): value
                                             for (text, ctx), value in stored.items()})
    cache: dict = _STATE_CACHE["states"]
    use_context = model_config.context != "none" and contexts is not None
    # keyed by what the encoder reads: the article a sentence belongs to changes no state
    items = [
        (text, Context(contexts[i].previous, contexts[i].title) if use_context else None)
        for i, text in enumerate(texts)
    ]
    missing = list(dict.fromkeys(item for item in items if item not in cache))
    base = underlying_model(encoder)
    base.eval()
    order = np.argsort([len(text) + len(ctx.previous if ctx else "") for text, ctx in missing])
    for start in range(0, len(missing), 32):
        batch = [missing[i] for i in order[start : start + 32]]
        inputs = encode(
            tokenizer,
            [text for text, _ in batch],
            [ctx for _, ctx in batch] if use_context else None,
            model_config.text_prefix,
            model_config.max_length,
            model_config.context,
            model_config.context_length,
        )
        hidden = base(
            input_ids=inputs["input_ids"],
            attention_mask=inputs["attention_mask"],
            output_hidden_states=True,
        ).hidden_states[first_trained]
        for row, item in enumerate(batch):
            length = int(inputs["attention_mask"][row].sum())
            cache[item] = (
                hidden[row, :length].clone(),
                int(inputs["sentence_mask"][row].sum()),
            )
    if disk and missing:
        disk.parent.mkdir(parents=True, exist_ok=True)
        plain = {(text, (ctx.previous, ctx.title) if ctx else ()): value
                 for (text, ctx), value in cache.items()}
        torch.save(plain, disk.with_suffix(".tmp"))
        disk.with_suffix(".tmp").replace(disk)
    return CachedStates(
        states=[cache[item][0] for item in items],
        sentence_lengths=[cache[item][1] for item in items],
    )


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


def pad_states(
    states: list[torch.Tensor], sentence_lengths: list[int]
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor]:
    """Stack variable-length cached states into a padded batch, its attention mask and
    its sentence mask (the sentence's own tokens, before any context)."""
    longest = max(len(s) for s in states)
    hidden = states[0].shape[-1]
    batch = torch.zeros(len(states), longest, hidden)
    mask = torch.zeros(len(states), longest, dtype=torch.long)
    sentence_mask = torch.zeros(len(states), longest, dtype=torch.long)
    for row, (item, length) in enumerate(zip(states, sentence_lengths, strict=True)):
        batch[row, : len(item)] = item.float()
        mask[row, : len(item)] = 1
        sentence_mask[row, :length] = 1
    return batch, mask, sentence_mask


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
    cached: CachedStates,
    cues: torch.Tensor,
    targets: Targets,
    first_trained: int,
    c: float,
    article: torch.Tensor | None = None,
) -> None:
    """Start each head at the logistic regression on the frozen encoder's features (LP-FT).

    Fine-tuning from a random head distorts the pretrained features before the
    head is any good; starting from the linear probe keeps what the frozen
    encoder and the cues already separate, which generalises better to unseen
    documents.
    """
    model.eval()
    parts = [pooled_vectors(model, cached, first_trained)]
    if article is not None:
        parts.append(article)
    features = torch.cat([*parts, cues], dim=-1).numpy()
    for column in range(targets.claims.shape[1]):
        weights, biases = linear_probe(features, targets.claims[:, column], 2, c)
        model.claim_head.weight[column] = torch.from_numpy(weights[1] - weights[0])
        model.claim_head.bias[column] = float(biases[1] - biases[0])
    for head, labels in ((model.stance_head, targets.stance), (model.voice_head, targets.voice)):
        weights, biases = linear_probe(features, labels, head.out_features, c)
        head.weight.copy_(torch.from_numpy(weights))
        head.bias.copy_(torch.from_numpy(biases))
    model.train()


@torch.no_grad()
def pooled_vectors(model: MultiTaskModel, cached: CachedStates, first_trained: int) -> torch.Tensor:
    """The pooled vectors (``MultiTaskModel.pool``) of cached sentences, through the top layers."""
    vectors = []
    for start in range(0, len(cached), 32):
        states, mask, sentence_mask = pad_states(
            cached.states[start : start + 32], cached.sentence_lengths[start : start + 32]
        )
        top = run_top_layers(model.encoder, states, mask, first_trained)
        vectors.append(model.pool(top, mask, sentence_mask))
    return torch.cat(vectors)


def tokenize(tokenizer, texts: list[str], prefix: str, max_length: int) -> dict:
    """Sentences alone (no context), padded, cut at ``max_length`` tokens."""
    return tokenizer(
        [prefix + text for text in texts],
        truncation=True,
        max_length=max_length,
        padding=True,
        return_tensors="pt",
    )


def inner_validation_split(
    groups: list[str], fraction: float, seed: int
) -> tuple[np.ndarray, np.ndarray]:
    """(train, validation) indices with whole groups (outlets) on each side.

    About ``fraction`` of the sentences are held out, by dealing groups in a
    seeded random order until the share is reached; at least one group stays
    on each side.
    """
    names = list(dict.fromkeys(groups))
    rng = np.random.default_rng(seed)
    order = rng.permutation(len(names))
    group_array = np.asarray(groups)
    held: list[str] = []
    for position in order[:-1]:
        if (np.isin(group_array, held)).sum() >= fraction * len(groups):
            break
        held.append(names[position])
    validation = np.flatnonzero(np.isin(group_array, held))
    return np.setdiff1d(np.arange(len(groups)), validation), validation


class MultiTaskLoss(nn.Module):
    """Sum of the three tasks' losses, each class weighted by its count**-power."""

    def __init__(self, targets: Targets, config: TrainConfig, model_config: ModelConfig):
        super().__init__()
        weighted = config.class_weighting
        power = config.class_weight_power
        self.claims = nn.BCEWithLogitsLoss(
            pos_weight=positive_weights(targets.claims, power) if weighted else None
        )
        self.stance = nn.CrossEntropyLoss(
            weight=balanced_weights(targets.stance, len(model_config.stances), power)
            if weighted
            else None
        )
        self.voice = nn.CrossEntropyLoss(
            weight=balanced_weights(targets.voice, len(model_config.voices), power)
            if weighted
            else None
        )

    def forward(self, logits: dict, claims, stance, voice) -> torch.Tensor:
        return (
            self.claims(logits["claims"], claims)
            + self.stance(logits["stance"], stance)
            + self.voice(logits["voice"], voice)
        )


def trainable_state(model: MultiTaskModel) -> dict[str, torch.Tensor]:
    """A copy of what training changes (heads, adapters or unfrozen layers)."""
    return {
        name: param.detach().clone()
        for name, param in model.named_parameters()
        if param.requires_grad
    }


def fit(
    texts: list[str],
    targets: Targets,
    config: TrainConfig,
    progress: bool = True,
    contexts: list[Context] | None = None,
    groups: list[str] | None = None,
) -> tuple[MultiTaskModel, object]:
    """Train a model from scratch on (texts, targets); return it in eval mode, with tokenizer.

    ``contexts`` (one per text) feed a model configured to read context; ``groups``
    (outlets) keep the early-stopping validation split from sharing an outlet with
    the sentences it judges (without them, sentences are split at random).
    """
    if config.head_init not in ("random", "linear_probe"):  # before the costly encoding pass
        raise ValueError(f"unknown head_init {config.head_init!r} (use 'random' or 'linear_probe')")
    # imported here, not at the top: transformers' optimisation module pulls in
    # trainer_utils and peft, seconds of start-up that predicting never needs
    from transformers import get_linear_schedule_with_warmup

    check_context_mode(config.context)
    if contexts is not None and len(contexts) != len(texts):
        raise ValueError(f"{len(texts)} sentences but {len(contexts)} contexts")
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
        context=config.context,
        context_length=config.context_length if config.context != "none" else 0,
        article_vector=config.article_vector,
    )
    first_trained = encoder.config.num_hidden_layers - trained_layers
    cached = frozen_states(
        encoder,
        tokenizer,
        convert_script(texts, model_config.script),
        model_config,
        first_trained,
        convert_contexts(contexts, model_config.script),
    )
    encoder = prepare_encoder(encoder, config, model_config)
    model = MultiTaskModel(encoder, model_config)
    cues = model.text_cues(texts)
    def current_article_vectors() -> torch.Tensor | None:
        """Each sentence's article vector from the encoder as it is now: constants to the
        heads, recomputed after every epoch while the encoder trains."""
        if not model_config.article_vector:
            return None
        was_training = model.training
        model.eval()
        vectors = pooled_vectors(model, cached, first_trained)
        model.train(was_training)
        return model.article_input(vectors, contexts)

    article = current_article_vectors()

    train_index = np.arange(len(texts))
    validation_index = np.array([], dtype=int)
    if config.validation_fraction > 0 and config.epochs > 0:
        train_index, validation_index = inner_validation_split(
            groups if groups is not None else [str(i) for i in range(len(texts))],
            config.validation_fraction,
            config.seed,
        )
    train_targets = targets.subset(train_index)
    train_cached = CachedStates(
        [cached.states[i] for i in train_index], [cached.sentence_lengths[i] for i in train_index]
    )
    if config.head_init == "linear_probe":
        init_heads_by_linear_probe(
            model, train_cached, cues[train_index], train_targets, first_trained, config.probe_c,
            article=article[train_index] if article is not None else None,
        )
    model.train()
    loss_of = MultiTaskLoss(train_targets, config, model_config)

    head_params = [p for n, p in model.named_parameters() if not n.startswith("encoder.")]
    encoder_params = [p for p in model.encoder.parameters() if p.requires_grad]
    param_groups = [{"params": head_params, "lr": config.head_learning_rate}]
    if encoder_params:  # none with method "frozen"
        param_groups.append({"params": encoder_params, "lr": config.learning_rate})
    optimizer = torch.optim.AdamW(param_groups, weight_decay=config.weight_decay)
    steps_per_epoch = -(-len(train_index) // config.batch_size)
    total_steps = steps_per_epoch * config.epochs
    scheduler = get_linear_schedule_with_warmup(
        optimizer, int(config.warmup_ratio * total_steps), total_steps
    )
    rng = np.random.default_rng(config.seed)
    claims = torch.tensor(targets.claims, dtype=torch.float32)
    stance = torch.tensor(targets.stance)
    voice = torch.tensor(targets.voice)
    lengths = [len(cached.states[i]) for i in train_index]

    def batch_logits(batch: np.ndarray) -> dict:
        states, mask, sentence_mask = pad_states(
            [cached.states[i] for i in batch], [cached.sentence_lengths[i] for i in batch]
        )
        top_states = run_top_layers(model.encoder, states, mask, first_trained)
        return model.heads(
            top_states, mask, cues[batch], sentence_mask,
            article[batch] if article is not None else None,
        )

    @torch.no_grad()
    def validation_loss() -> float:
        model.eval()
        total = 0.0
        for start in range(0, len(validation_index), 64):
            batch = validation_index[start : start + 64]
            loss = loss_of(batch_logits(batch), claims[batch], stance[batch], voice[batch])
            total += float(loss) * len(batch)
        model.train()
        return total / len(validation_index)

    best_loss, best_state, best_epoch, stale = float("inf"), None, 0, 0
    history: list[float] = []
    bar = tqdm(
        total=total_steps, desc="training", disable=not progress or not total_steps, unit="batch"
    )
    for epoch in range(config.epochs):
        for position in length_grouped_batches(lengths, config.batch_size, rng):
            batch = train_index[position]
            loss = loss_of(batch_logits(batch), claims[batch], stance[batch], voice[batch])
            optimizer.zero_grad()
            loss.backward()
            torch.nn.utils.clip_grad_norm_(model.parameters(), 1.0)
            optimizer.step()
            scheduler.step()
            bar.update(1)
            bar.set_postfix(loss=f"{loss.item():.3f}")
        if encoder_params:
            article = current_article_vectors()
        if len(validation_index):
            history.append(round(validation_loss(), 4))
            if history[-1] < best_loss:
                best_loss, best_epoch, stale = history[-1], epoch, 0
                best_state = trainable_state(model)
            else:
                stale += 1
                if stale >= config.patience:
                    break
    bar.close()
    if best_state is not None:  # early stopping: back to the epoch that validated best
        model.load_state_dict(best_state, strict=False)
    model.config.training = {
        k: v for k, v in vars(config).items() if isinstance(v, int | float | str)
    }
    model.config.training["sentences"] = len(texts)
    if history:
        model.config.training["validation_loss"] = history
        model.config.training["best_epoch"] = best_epoch + 1
    model.eval()
    return model, tokenizer


@torch.inference_mode()
def predict_probabilities(
    model: MultiTaskModel,
    tokenizer,
    texts: list[str],
    batch_size: int = 64,
    contexts: list[Context] | None = None,
    calibrated: bool = True,
    cached: bool = False,
) -> Probabilities:
    """Probabilities for every text, batched by token count, returned in input order.

    ``contexts`` are read only by a model trained with context; without them such a
    model reads each sentence alone. With ``calibrated``, logits are divided by the
    model's per-task temperatures. With ``cached`` (cross-validation), the frozen
    lower layers' states come from, and go to, the cache training uses, so each
    sentence passes the frozen layers once in a whole cross-validation.
    """
    config = model.config
    if contexts is not None and len(contexts) != len(texts):
        raise ValueError(f"{len(texts)} sentences but {len(contexts)} contexts")
    temperatures = config.temperatures if calibrated else {}
    if cached:
        return _predict_from_cached_states(model, tokenizer, texts, batch_size, contexts,
                                           temperatures)
    cues = model.text_cues(texts)
    if not texts:
        return Probabilities.empty()
    pooled: torch.Tensor | None = None
    for batch, inputs in token_sorted_batches(
        tokenizer,
        convert_script(texts, config.script),
        convert_contexts(contexts, config.script) if config.context != "none" else None,
        config.text_prefix,
        config.max_length,
        config.context,
        config.context_length,
        batch_size,
    ):
        attention_mask = torch.from_numpy(inputs["attention_mask"])
        states = model.encoder(
            input_ids=torch.from_numpy(inputs["input_ids"]), attention_mask=attention_mask
        ).last_hidden_state
        vectors = model.pool(states, attention_mask, torch.from_numpy(inputs["sentence_mask"]))
        if pooled is None:
            pooled = torch.zeros(len(texts), vectors.shape[1])
        pooled[batch] = vectors
    # the heads run once every sentence is pooled: an article vector needs its whole article
    logits = model.classify(pooled, cues, model.article_input(pooled, contexts))
    return Probabilities(*_probabilities(logits, temperatures))


def _probabilities(logits: dict, temperatures: dict) -> tuple[np.ndarray, ...]:
    scale = {task: temperatures.get(task, 1.0) for task in ("claims", "stance", "voice")}
    return (
        torch.sigmoid(logits["claims"] / scale["claims"]).numpy(),
        torch.softmax(logits["stance"] / scale["stance"], -1).numpy(),
        torch.softmax(logits["voice"] / scale["voice"], -1).numpy(),
    )


@torch.inference_mode()
def _predict_from_cached_states(
    model: MultiTaskModel,
    tokenizer,
    texts: list[str],
    batch_size: int,
    contexts: list[Context] | None,
    temperatures: dict,
) -> Probabilities:
    """As ``predict_probabilities``, but the frozen layers' states through the cache."""
    config = model.config
    first_trained = model.encoder.config.num_hidden_layers - config.trained_layers
    states = frozen_states(
        model.encoder,
        tokenizer,
        convert_script(texts, config.script),
        config,
        first_trained,
        convert_contexts(contexts, config.script) if config.context != "none" else None,
    )
    if not texts:
        return Probabilities.empty()
    pooled = pooled_vectors(model, states, first_trained)
    logits = model.classify(pooled, model.text_cues(texts), model.article_input(pooled, contexts))
    return Probabilities(*_probabilities(logits, temperatures))


def tune_class_offsets(probabilities: np.ndarray, truth: np.ndarray) -> list[float]:
    """Offsets for a single-label task (see ``Probabilities.decide``) that maximise its
    macro-F1 on held-out predictions.

    Coordinate ascent over a grid, the first label fixed at 0; among equally good
    offsets the one nearest 0 is kept. The argmax of balanced-loss heads over-calls
    rare labels (support, oppose) on outlets they were not trained on; the offsets
    trade that recall back for precision where macro-F1 gains.
    """
    from mineral_stance.labels import offset_argmax

    n_labels = probabilities.shape[1]
    candidates = np.round(np.linspace(-2.0, 2.0, 41), 2)

    def macro_f1(offsets: list[float]) -> float:
        predicted = offset_argmax(probabilities, offsets)
        scores = []
        for label in range(n_labels):
            true_positive = np.sum((predicted == label) & (truth == label))
            denominator = np.sum(predicted == label) + np.sum(truth == label)
            scores.append(2 * true_positive / denominator if denominator else 0.0)
        return float(np.mean(scores))

    offsets = [0.0] * n_labels
    for _ in range(2):
        for label in range(1, n_labels):
            scores = np.array(
                [macro_f1(offsets[:label] + [float(c)] + offsets[label + 1 :]) for c in candidates]
            )
            best = np.flatnonzero(scores >= scores.max() - 1e-12)
            offsets[label] = float(candidates[best[np.argmin(np.abs(candidates[best]))]])
    return offsets


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
