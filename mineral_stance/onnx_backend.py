"""The fast CPU backend: the encoder run by ONNX Runtime instead of torch.

``load_classifier(backend="onnx")`` (``classify --backend onnx``) gives a
classifier with the same API and the labels of the torch one. The first load
exports the model's encoder (any LoRA adapter or trained top layers merged in,
mean pooling and L2 normalisation included, and for a model that reads context
the context's pooled vector beside the sentence's) to the user cache::

    ~/.cache/mineral-stance/onnx/<model>-<key>-<precision>/encoder.onnx       the graph
                                                          encoder.onnx.data  its weights
                                                          manifest.json

The export is the one step that needs torch. It stores the word-embedding matrix
(two thirds of the weights) as int8 rows with a scale each, and saves the graph
as ONNX Runtime optimises it, so a later load takes a fraction of a second and
holds one copy of the weights. ``key`` is a hash of everything the encoder is
made of (the base encoder's weights, the adapter or top layers, the export
settings), so a retrained model or a new base encoder gets a new export, and the
manifest's sha256 of each file is checked (through a size+mtime stamp) on every
load: a damaged, truncated or stale export is rebuilt, never used. The three
heads are a few kB of weights and run in numpy from the model directory, and
the tokenizer is read with the ``tokenizers`` library (``fast_tokenizer``), so
predicting imports neither torch, transformers nor spaCy.

Precisions (measured in ``benchmarks/predict_speed.py`` against fp32 torch on
the 661 seed units; the default must change at most 1% of labels per task):

- ``fp32``: fp32 arithmetic; changes 0/2/0 claim/stance/voice labels of the shipped
  model (1/0/0 of the linear probe that shipped before it);
- ``int8``: per-channel dynamic int8 weights for the transformer layers'
  matrix products, except the ones listed in ``INT8_FP32_NODES``; changes
  5/19/9 labels of the shipped model (stance 2.9%; activation scales are set per
  batch, so the count moves a little with batching): faster, but not a default.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import shutil
import tempfile
import warnings
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mineral_stance.base_encoder import resolve_base_model, stamped_sha256
from mineral_stance.config import cache_dir, inference_threads
from mineral_stance.context import (
    Context,
    article_vectors,
    convert_contexts,
    token_sorted_batches,
)
from mineral_stance.cues import cue_features
from mineral_stance.fast_tokenizer import load_tokenizer
from mineral_stance.labels import Probabilities
from mineral_stance.model_config import (
    ADAPTER_DIR,
    HEADS_NAME,
    TOP_LAYERS_NAME,
    ModelConfig,
    convert_script,
)
from mineral_stance.predict import StanceClassifier

# bump when the exported graph changes, so old cache entries are not reused
EXPORT_VERSION = 4
PRECISIONS = ("fp32", "int8")
DEFAULT_PRECISION = "fp32"
ONNX_NAME = "encoder.onnx"
# the weights, beside the graph: ONNX Runtime reads them straight into its tensors
WEIGHTS_NAME = "encoder.onnx.data"
MANIFEST_NAME = "manifest.json"
OPSET = 17
# matrix products the int8 precision leaves in fp32 (regular expressions over ONNX
# node names): every layer's feed-forward output (its input, after GELU, has
# outliers that per-tensor activation quantisation crushes) and the whole first
# layer. On the linear probe shipped before, quantising every MatMul changed
# 9/15/4 of the 661 seed units' claim/stance/voice labels and this set 3/5/3; on
# the probe shipped now (context, retrained) it changes 15/27/2 (reduce_range:
# 22/22/6), and with the int8 embedding rows 21/19/5.
INT8_FP32_NODES: tuple[str, ...] = (r"layer\.\d+/output/dense/", r"layer\.0/")
# output of the model -> its head's parameter prefix in heads.safetensors
HEADS = {"claims": "claim_head", "stance": "stance_head", "voice": "voice_head"}


def onnx_cache_root() -> Path:
    return cache_dir() / "onnx"


# --- What the exported file is made of ------------------------------------------


def _weight_files(directory: Path) -> list[Path]:
    patterns = ("*.safetensors", "*.bin", "config.json")
    return sorted({p for pattern in patterns for p in directory.glob(pattern) if p.is_file()})


def encoder_key(model_dir: Path, config: ModelConfig, precision: str) -> str:
    """Hash of the encoder's ingredients: base weights, adapter or top layers, settings."""
    base = Path(resolve_base_model(config.base_model))
    parts: dict[str, object] = {
        "export_version": EXPORT_VERSION,
        "precision": precision,
        "int8_fp32_nodes": list(INT8_FP32_NODES) if precision == "int8" else [],
        "method": config.method,
        "context": config.context != "none",
        "base": {p.name: stamped_sha256(p) for p in _weight_files(base)} if base.is_dir() else "",
        "base_model": config.base_model,
    }
    if config.method == "lora":
        adapter = model_dir / ADAPTER_DIR
        parts["adapter"] = {
            p.name: stamped_sha256(p) for p in sorted(adapter.glob("*")) if p.is_file()
        }
    elif config.method == "top_layers":
        parts["top_layers"] = stamped_sha256(model_dir / TOP_LAYERS_NAME)
    text = json.dumps(parts, sort_keys=True)
    return hashlib.sha256(text.encode("utf-8")).hexdigest()


def onnx_directory(model_dir: Path, config: ModelConfig, precision: str) -> Path:
    key = encoder_key(model_dir, config, precision)
    name = "".join(c if c.isalnum() or c in "-_." else "-" for c in model_dir.resolve().name)
    return onnx_cache_root() / f"{name}-{key[:16]}-{precision}"


def _is_sound(directory: Path) -> bool:
    """True when the manifest is there and every file's size and sha256 match it."""
    try:
        manifest = json.loads((directory / MANIFEST_NAME).read_text(encoding="utf-8"))
        files = manifest["files"]
        if set(files) != {ONNX_NAME, WEIGHTS_NAME}:
            return False
        for name, expected in files.items():
            path = directory / name
            if path.stat().st_size != expected["size"]:
                return False
            if stamped_sha256(path) != expected["sha256"]:
                return False
        return True
    except (OSError, ValueError, KeyError, TypeError, AttributeError):
        return False


# --- Export -------------------------------------------------------------------------


def _export_fp32(model_dir: Path, path: Path) -> None:
    """The torch encoder (adapter merged) + the heads' pooling, as one ONNX graph.

    Its output is what the heads read before the cues: the sentence vector, and for
    a model trained with context the context's vector beside it (which needs the
    sentence mask as a third input).
    """
    import torch
    from torch import nn

    from mineral_stance.model import from_pretrained, sentence_vector

    model, _ = from_pretrained(model_dir)
    reads_context = model.config.context != "none"

    class SentenceEncoder(nn.Module):
        def __init__(self, encoder: nn.Module):
            super().__init__()
            self.encoder = encoder

        def forward(
            self,
            input_ids: torch.Tensor,
            attention_mask: torch.Tensor,
            sentence_mask: torch.Tensor | None = None,
        ) -> torch.Tensor:
            states = self.encoder(
                input_ids=input_ids, attention_mask=attention_mask
            ).last_hidden_state
            if sentence_mask is None:
                return sentence_vector(states, attention_mask)
            context_mask = attention_mask - sentence_mask
            return torch.cat(
                [sentence_vector(states, sentence_mask), sentence_vector(states, context_mask)],
                -1,
            )

    wrapper = SentenceEncoder(model.encoder).eval()
    inputs = ["input_ids", "attention_mask"] + (["sentence_mask"] if reads_context else [])
    example = tuple(torch.ones((2, 8), dtype=torch.long) for _ in inputs)
    # the tracer warns about Python conditions in transformers' mask code; they
    # hold for every input (the attention mask always covers the whole batch)
    with torch.inference_mode(), warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            wrapper,
            example,
            str(path),
            dynamo=False,
            input_names=inputs,
            output_names=["sentence_vector"],
            dynamic_axes={
                **{name: {0: "batch", 1: "tokens"} for name in inputs},
                "sentence_vector": {0: "batch"},
            },
            opset_version=OPSET,
            do_constant_folding=True,
        )


def int8_rows(weights: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Each row as int8 with its own fp32 scale (symmetric: ``scale = max |row| / 127``).

    The export's word-embedding table; the tests round torch's table with it to
    check that the graph computes what torch computes from the same rows.
    """
    scales = np.abs(weights).max(axis=1, keepdims=True) / 127.0
    scales[scales == 0] = 1.0
    quantised = np.clip(np.round(weights / scales), -127, 127).astype(np.int8)
    return quantised, scales.astype(np.float32)


def _embeddings_to_int8(path: Path) -> None:
    """Store the word-embedding matrix as int8 rows, each with its own scale.

    Two thirds of the encoder's weights are this 250k x 384 table, of which a
    text uses a few thousand rows. Stored as int8 with one fp32 scale per row
    (symmetric, ``scale = max |row| / 127``) it takes a quarter of the memory;
    the graph gathers the rows, then multiplies by their scales. The rounding
    (at most half a step, 0.4% of the row's largest value) moves no label of
    the seed units (benchmarks/predict_speed.py).
    """
    import onnx
    from onnx import helper, numpy_helper

    model = onnx.load(str(path))
    graph = model.graph
    initializers = {init.name: init for init in graph.initializer}
    for node in list(graph.node):
        if node.op_type != "Gather" or node.input[0] not in initializers:
            continue
        table = initializers[node.input[0]]
        weights = numpy_helper.to_array(table)
        if "word_embeddings" not in table.name or weights.dtype != np.float32:
            continue
        quantised, scales = int8_rows(weights)
        table.CopyFrom(numpy_helper.from_array(quantised, table.name))
        scale_table = table.name + "_scales"
        graph.initializer.append(numpy_helper.from_array(scales, scale_table))
        gathered = node.output[0]
        node.output[0] = gathered + "_int8"
        position = list(graph.node).index(node) + 1
        new_nodes = [
            helper.make_node(
                "Cast", [gathered + "_int8"], [gathered + "_unscaled"],
                to=onnx.TensorProto.FLOAT, name=node.name + "_to_float",
            ),
            helper.make_node(
                "Gather", [scale_table, node.input[1]], [gathered + "_scales"],
                name=node.name + "_scales",
            ),
            helper.make_node(
                "Mul", [gathered + "_unscaled", gathered + "_scales"], [gathered],
                name=node.name + "_scaled",
            ),
        ]
        for offset, new_node in enumerate(new_nodes):
            graph.node.insert(position + offset, new_node)
    onnx.save(model, str(path))


def _optimise(source: Path, target: Path) -> None:
    """Save the graph as ONNX Runtime optimises it (fused attention, layer norms, GELU)
    with its weights in one file beside it.

    Loading the optimised graph takes a fraction of a second instead of seconds,
    and ONNX Runtime no longer holds the unoptimised weights beside the optimised
    ones while it loads. "Extended" optimisations only: they are portable across
    CPUs, unlike the layout ones ("all"), which the session still applies at load.
    """
    ort = onnxruntime()
    options = ort.SessionOptions()
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_EXTENDED
    options.optimized_model_filepath = str(target)
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_file_name", WEIGHTS_NAME
    )
    options.add_session_config_entry(
        "session.optimized_model_external_initializers_min_size_in_bytes", "1024"
    )
    ort.InferenceSession(str(source), options, providers=["CPUExecutionProvider"])


def _quantise_int8(source: Path, target: Path) -> None:
    """Per-channel dynamic int8 weights for MatMuls, except the nodes kept in fp32."""
    import onnx
    from onnxruntime.quantization import QuantType, quantize_dynamic

    names = [node.name for node in onnx.load(str(source)).graph.node if node.op_type == "MatMul"]
    excluded = [name for name in names if any(re.search(p, name) for p in INT8_FP32_NODES)]
    quantize_dynamic(
        source,
        target,
        per_channel=True,
        weight_type=QuantType.QInt8,
        op_types_to_quantize=["MatMul"],
        nodes_to_exclude=excluded,
        # attention scores (activation x activation) stay fp32: only weights are int8
        extra_options={"MatMulConstBOnly": True},
    )


def export_encoder(model_dir: str | Path, precision: str = DEFAULT_PRECISION) -> Path:
    """The model's encoder as an ONNX file in the user cache, exported if missing or damaged.

    Written to a temporary sibling directory and renamed into place, so an
    interrupted export never leaves a half-written file that looks finished.
    """
    if precision not in PRECISIONS:
        raise ValueError(f"unknown precision {precision!r} (use {' or '.join(PRECISIONS)})")
    model_dir = Path(model_dir)
    config = ModelConfig.load(model_dir)
    directory = onnx_directory(model_dir, config, precision)
    if _is_sound(directory):
        return directory / ONNX_NAME
    directory.parent.mkdir(parents=True, exist_ok=True)
    temporary = Path(tempfile.mkdtemp(prefix=f".{directory.name}.tmp-", dir=directory.parent))
    try:
        graph = temporary / "fp32.onnx"
        _export_fp32(model_dir, graph)
        if precision == "int8":
            _quantise_int8(graph, temporary / "int8.onnx")
            graph = temporary / "int8.onnx"
        _embeddings_to_int8(graph)
        _optimise(graph, temporary / ONNX_NAME)
        for leftover in temporary.glob("*"):
            if leftover.name not in (ONNX_NAME, WEIGHTS_NAME):
                leftover.unlink()
        files = {
            name: {"size": (temporary / name).stat().st_size,
                   "sha256": stamped_sha256(temporary / name)}
            for name in (ONNX_NAME, WEIGHTS_NAME)
        }
        manifest = {
            "model_dir": str(model_dir.resolve()),
            "precision": precision,
            "export_version": EXPORT_VERSION,
            "files": files,
        }
        (temporary / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        temporary.chmod(0o755)
        if directory.exists():  # stale or damaged: move aside, then delete
            shutil.rmtree(directory, ignore_errors=True)
        try:
            os.replace(temporary, directory)
        except OSError:
            if not _is_sound(directory):  # another process won the race with a sound file
                raise
    finally:
        shutil.rmtree(temporary, ignore_errors=True)
    _is_sound(directory)  # stamps the renamed files, so the next load does not hash them
    _remove_stale_exports(directory)
    return directory / ONNX_NAME


def _remove_stale_exports(current: Path) -> None:
    """Delete older exports of the same model and precision (hundreds of MB each)."""
    name, _, precision = current.name.rpartition("-")
    name = name.rsplit("-", 1)[0]
    for other in current.parent.glob(f"{name}-*-{precision}"):
        if other != current and other.is_dir() and other.name.count("-") == current.name.count("-"):
            shutil.rmtree(other, ignore_errors=True)


# --- Inference ---------------------------------------------------------------------


def onnxruntime():
    """The onnxruntime module, or an error that says which extra to install."""
    try:
        import onnxruntime
    except ImportError:
        raise ImportError(
            'the onnx backend needs ONNX Runtime: pip install "mineral-stance[onnx]"'
        ) from None
    return onnxruntime


def make_session(path: Path, threads: int):
    """An ONNX Runtime session on ``threads`` CPU threads, all graph optimisations on."""
    ort = onnxruntime()

    options = ort.SessionOptions()
    options.intra_op_num_threads = threads
    options.inter_op_num_threads = 1
    options.execution_mode = ort.ExecutionMode.ORT_SEQUENTIAL
    options.graph_optimization_level = ort.GraphOptimizationLevel.ORT_ENABLE_ALL
    return ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])


@dataclass
class OnnxModel:
    """What the ONNX classifier holds: the session, the heads' weights, the config."""

    config: ModelConfig
    session: object
    heads: dict[str, np.ndarray]
    path: Path

    def sentence_vectors(self, inputs: dict[str, np.ndarray]) -> np.ndarray:
        """The pooled vectors the heads read (sentence, and context for a context model)."""
        feed = {item.name: inputs[item.name] for item in self.session.get_inputs()}
        return self.session.run(["sentence_vector"], feed)[0]

    def logits(
        self, vectors: np.ndarray, cues: np.ndarray, contexts: list[Context] | None = None
    ) -> dict[str, np.ndarray]:
        """The heads (in numpy) over the pooled vectors of every sentence given together."""
        parts = [vectors]
        if self.config.article_vector:  # the sentence part of each of its article's rows
            hidden = vectors.shape[1] // (1 if self.config.context == "none" else 2)
            parts.append(article_vectors(vectors[:, :hidden], contexts))
        if self.config.text_cues:
            parts.append(cues)
        features = np.concatenate(parts, axis=1)
        return {
            task: features @ self.heads[f"{head}.weight"].T + self.heads[f"{head}.bias"]
            for task, head in HEADS.items()
        }


def _softmax(logits: np.ndarray) -> np.ndarray:
    shifted = np.exp(logits - logits.max(axis=1, keepdims=True))
    return shifted / shifted.sum(axis=1, keepdims=True)


def _load_heads(model_dir: Path) -> dict[str, np.ndarray]:
    from safetensors.numpy import load_file

    weights = load_file(model_dir / HEADS_NAME)
    return {
        name: weights[name].astype(np.float32)
        for head in HEADS.values()
        for name in (f"{head}.weight", f"{head}.bias")
    }


class OnnxStanceClassifier(StanceClassifier):
    """The classifier with its encoder run by ONNX Runtime; predictions as the torch one."""

    name = "onnx"
    # ONNX Runtime keeps the largest batch's activations in its memory arena: batches
    # of 16 cut the peak memory by about 130 MB against 64 with no loss of speed
    # (the batches are sorted by token count, so small batches waste no padding)
    DEFAULT_BATCH_SIZE = 16

    def _model_probabilities(
        self, texts: list[str], contexts: list[Context] | None, batch_size: int
    ) -> Probabilities:
        """The encoder run by ONNX Runtime, the heads in numpy (the torch path's seam)."""
        model = self._require_model()
        config = model.config
        claims = np.zeros((len(texts), len(config.claim_types)), dtype=np.float32)
        stance = np.zeros((len(texts), len(config.stances)), dtype=np.float32)
        voice = np.zeros((len(texts), len(config.voices)), dtype=np.float32)
        if not texts:
            return Probabilities(claims, stance, voice)
        texts = list(texts)
        cues = cue_features(texts, config.text_cues)
        reads_context = config.context != "none" and contexts is not None
        scale = {task: config.temperatures.get(task, 1.0) for task in HEADS}
        vectors: np.ndarray | None = None
        for batch, inputs in token_sorted_batches(
            self.tokenizer,
            convert_script(texts, config.script),
            convert_contexts(contexts, config.script) if reads_context else None,
            config.text_prefix,
            config.max_length,
            config.context,
            config.context_length,
            batch_size,
        ):
            pooled = model.sentence_vectors(inputs)
            if vectors is None:
                vectors = np.zeros((len(texts), pooled.shape[1]), dtype=np.float32)
            vectors[batch] = pooled
        # the heads run once every sentence is pooled: an article vector needs its whole article
        logits = model.logits(vectors, cues, contexts)
        claims = 1.0 / (1.0 + np.exp(-logits["claims"] / scale["claims"]))
        stance = _softmax(logits["stance"] / scale["stance"])
        voice = _softmax(logits["voice"] / scale["voice"])
        return Probabilities(claims=claims, stance=stance, voice=voice)

    def fit(self, *args, **kwargs):
        raise NotImplementedError("train with the torch backend; load the result with 'onnx'")

    def save_pretrained(self, directory: str | Path) -> Path:
        raise NotImplementedError(
            "an ONNX classifier is read from a saved model; save with the torch backend"
        )

    @classmethod
    def from_pretrained(
        cls,
        directory: str | Path,
        precision: str = DEFAULT_PRECISION,
        threads: int | None = None,
    ) -> OnnxStanceClassifier:
        onnxruntime()  # before an export that would be of no use
        directory = Path(directory)
        config = ModelConfig.load(directory)
        path = export_encoder(directory, precision)
        try:
            session = make_session(path, inference_threads(threads))
        except Exception:  # unreadable despite its checksum (e.g. written by another version)
            shutil.rmtree(path.parent, ignore_errors=True)
            path = export_encoder(directory, precision)
            session = make_session(path, inference_threads(threads))
        classifier = cls()
        classifier.batch_size = cls.DEFAULT_BATCH_SIZE
        # the tokenizers library, not transformers: prediction imports no torch
        classifier.tokenizer = load_tokenizer(resolve_base_model(config.base_model))
        classifier.model = OnnxModel(config, session, _load_heads(directory), path)
        return classifier
