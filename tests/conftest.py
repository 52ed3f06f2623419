"""Shared fixtures: a tiny BERT built from scratch, so model tests run in seconds offline."""

from pathlib import Path

import pytest
import torch
from tokenizers import Tokenizer, models, normalizers, pre_tokenizers, processors, trainers
from transformers import BertConfig, BertModel, PreTrainedTokenizerFast

from mineral_stance.corpus import seed_paths

SENTENCES = [
    {
        "text": "美国应与盟友合作，确保供应链安全。",
        "claim_types": ["policy_recommendation"],
        "stance": "support",
        "voice": "author",
    },
    {
        "text": "中國一直供應美國54%的鍺,53%的鎵。",
        "claim_types": ["statistic"],
        "stance": "unrelated",
        "voice": "reported",
    },
    {
        "text": "美国主导关键矿产联盟是出于一已私利。",
        "claim_types": [],
        "stance": "oppose",
        "voice": "author",
    },
    {
        "text": "美國近期與澳大利亞就關鍵礦產達成了初步協議。",
        "claim_types": [],
        "stance": "neutral",
        "voice": "author",
    },
    {
        "text": "这并非中国最后一次诉诸经济胁迫。",
        "claim_types": ["threat_framing"],
        "stance": "unrelated",
        "voice": "author",
    },
    {
        "text": "The Minerals Security Partnership (MSP) was launched in 2022.",
        "claim_types": [],
        "stance": "neutral",
        "voice": "author",
    },
]


def make_records(n_docs: int = 3) -> list[dict]:
    """Small schema records spread over several documents (every label occurs)."""
    records = []
    for doc in range(n_docs):
        for i, sentence in enumerate(SENTENCES):
            records.append({"id": f"doc{doc}:{i:04d}", "doc_id": f"doc{doc}", **sentence})
    return records


@pytest.fixture(scope="session")
def tiny_base_model(tmp_path_factory) -> Path:
    """A 2-layer BERT with a WordPiece vocabulary learnt from the seeds, saved HF-style."""
    directory = tmp_path_factory.mktemp("tiny-bert")
    tokenizer = Tokenizer(models.WordPiece(unk_token="[UNK]"))
    tokenizer.normalizer = normalizers.BertNormalizer(handle_chinese_chars=True)
    tokenizer.pre_tokenizer = pre_tokenizers.BertPreTokenizer()
    trainer = trainers.WordPieceTrainer(
        vocab_size=800, special_tokens=["[PAD]", "[UNK]", "[CLS]", "[SEP]", "[MASK]"]
    )
    tokenizer.train([str(p) for p in seed_paths()], trainer)
    tokenizer.post_processor = processors.TemplateProcessing(
        single="[CLS] $A [SEP]",
        pair="[CLS] $A [SEP] $B:1 [SEP]:1",
        special_tokens=[
            ("[CLS]", tokenizer.token_to_id("[CLS]")),
            ("[SEP]", tokenizer.token_to_id("[SEP]")),
        ],
    )
    wrapped = PreTrainedTokenizerFast(
        tokenizer_object=tokenizer,
        unk_token="[UNK]",
        pad_token="[PAD]",
        cls_token="[CLS]",
        sep_token="[SEP]",
        mask_token="[MASK]",
    )
    wrapped.save_pretrained(directory)
    config = BertConfig(
        vocab_size=tokenizer.get_vocab_size(),
        hidden_size=32,
        num_hidden_layers=2,
        num_attention_heads=2,
        intermediate_size=64,
        max_position_embeddings=256,
    )
    torch.manual_seed(0)  # the same tiny weights on every machine: tolerances hold everywhere
    BertModel(config, add_pooling_layer=False).save_pretrained(directory)
    return directory


@pytest.fixture(scope="session")
def tiny_model_dir(tiny_base_model, tmp_path_factory) -> Path:
    """A trained (tiny) mineral_stance model directory, for API and CLI tests."""
    from mineral_stance.config import TrainConfig
    from mineral_stance.labels import targets_from_records
    from mineral_stance.predict import StanceClassifier

    records = make_records()
    config = TrainConfig(
        base_model=str(tiny_base_model), trained_layers=1, epochs=2, batch_size=4, lora_r=4
    )
    classifier = StanceClassifier(config).fit(
        [r["text"] for r in records], targets_from_records(records)
    )
    return classifier.save_pretrained(tmp_path_factory.mktemp("tiny-model") / "model")


def round_embeddings_like_onnx(classifier) -> None:
    """Give a torch classifier the int8 word-embedding rows the ONNX export stores.

    The rounding moves a tiny random model's probabilities by up to ~1e-3 (the
    real model's by far less: benchmarks/predict_speed.py), so the backends are
    compared on the same rows, where only fp32 arithmetic may differ.
    """
    from mineral_stance.onnx_backend import int8_rows

    table = classifier.model.encoder.get_input_embeddings().weight
    with torch.no_grad():
        quantised, scales = int8_rows(table.detach().float().numpy())
        table.copy_(torch.from_numpy(quantised.astype("float32") * scales))
