"""Defect 14: a broken model directory is refused on load, naming the file and the field."""

import json
import shutil

import pytest
import torch
from safetensors.torch import load_file, save_file

from mineral_stance.config import SHIPPED_MODEL_DIR
from mineral_stance.model_files import InvalidModelError, validate_model_dir
from mineral_stance.predict import StanceClassifier


@pytest.fixture
def model_copy(tiny_model_dir, tmp_path):
    return shutil.copytree(tiny_model_dir, tmp_path / "model")


def edit_config(directory, **changes):
    path = directory / "config.json"
    config = json.loads(path.read_text("utf-8"))
    config.update(changes)
    path.write_text(json.dumps(config), "utf-8")  # json writes NaN for float("nan")


def test_the_shipped_and_a_freshly_trained_model_pass(tiny_model_dir):
    shipped = json.loads((SHIPPED_MODEL_DIR / "config.json").read_text("utf-8"))
    assert validate_model_dir(SHIPPED_MODEL_DIR).method == shipped["method"]
    assert StanceClassifier.from_pretrained(tiny_model_dir).model is not None


@pytest.mark.parametrize(
    ("changes", "field"),
    [
        ({"claim_thresholds": [0.5]}, "claim_thresholds"),
        ({"claim_thresholds": [0.5, float("nan"), 0.5]}, "claim_thresholds[1]"),
        ({"claim_thresholds": [2.0, 0.5, 0.5]}, "claim_thresholds[0]"),
        ({"claim_thresholds": [0.5, 0.5, -1.0]}, "claim_thresholds[2]"),
        ({"claim_thresholds": [0.5, "0.5", 0.5]}, "claim_thresholds[1]"),
        ({"stance_offsets": [0.0, 0.5]}, "stance_offsets"),
        ({"voice_offsets": [0.0, "1"]}, "voice_offsets"),
        ({"stances": ["oppose", "support", "neutral", "unrelated"]}, "stances"),
        ({"claim_types": ["statistic", "threat_framing", "policy_recommendation"]}, "claim_types"),
        ({"method": "everything"}, "method"),
        ({"max_length": 0}, "max_length"),
        ({"max_length": 12.5}, "max_length"),
        ({"script": "klingon"}, "script"),
        ({"text_cues": ["no_such_cue"]}, "text_cues"),
        ({"head_dropout": 1.5}, "head_dropout"),
        ({"surprise": 1}, "unknown field"),
    ],
)
def test_bad_config_fields_are_refused_by_name(model_copy, changes, field):
    edit_config(model_copy, **changes)
    with pytest.raises(InvalidModelError) as error:
        StanceClassifier.from_pretrained(model_copy)
    assert str(error.value).startswith(f"{model_copy / 'config.json'}: {field}")


def test_nan_head_weights_are_refused(model_copy):
    heads = load_file(model_copy / "heads.safetensors")
    heads["stance_head.weight"][0, 0] = float("nan")
    save_file(heads, model_copy / "heads.safetensors")
    with pytest.raises(InvalidModelError, match=r"heads\.safetensors: stance_head\.weight: .*NaN"):
        StanceClassifier.from_pretrained(model_copy)


def test_encoder_tensors_in_the_heads_file_are_refused(model_copy):
    """strict=False used to let these overwrite the encoder's weights silently."""
    heads = load_file(model_copy / "heads.safetensors")
    heads["encoder.embeddings.word_embeddings.weight"] = torch.zeros(3, 3)
    save_file(heads, model_copy / "heads.safetensors")
    with pytest.raises(InvalidModelError, match="unexpected encoder weights encoder.embeddings"):
        StanceClassifier.from_pretrained(model_copy)


def test_heads_that_do_not_fit_the_labels_are_refused(model_copy):
    heads = load_file(model_copy / "heads.safetensors")
    heads["voice_head.weight"] = torch.zeros(3, heads["voice_head.weight"].shape[1])
    heads["voice_head.bias"] = torch.zeros(3)
    save_file(heads, model_copy / "heads.safetensors")
    with pytest.raises(InvalidModelError, match="voice_head: shapes"):
        StanceClassifier.from_pretrained(model_copy)


def test_a_hub_base_model_is_refused_without_touching_the_network(model_copy, monkeypatch):
    import socket

    def no_network(*args, **kwargs):
        raise AssertionError("the loader tried to open a network connection")

    monkeypatch.setattr(socket.socket, "connect", no_network)
    edit_config(model_copy, base_model="someone/not-a-cached-model")
    with pytest.raises(InvalidModelError, match="base_model: 'someone/not-a-cached-model'.*local"):
        StanceClassifier.from_pretrained(model_copy)


def test_missing_directory_and_unreadable_files_are_refused(tmp_path, model_copy):
    with pytest.raises(InvalidModelError, match="no such model directory"):
        validate_model_dir(tmp_path / "nowhere")
    (model_copy / "heads.safetensors").write_bytes(b"not safetensors")
    with pytest.raises(InvalidModelError, match="heads.safetensors: not a readable safetensors"):
        validate_model_dir(model_copy)
    (model_copy / "config.json").write_text("[" * 100_000, "utf-8")
    with pytest.raises(InvalidModelError, match="config.json: not valid JSON"):
        validate_model_dir(model_copy)
