"""The SetFit baseline: a few contrastive steps on the tiny BERT, then logistic heads."""

import socket

import numpy as np

from mineral_stance.baselines import SetFitBaseline
from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES
from mineral_stance.labels import targets_from_records

from .conftest import make_records


def test_setfit_baseline_fits_and_predicts_offline(tiny_base_model, monkeypatch):
    connections = []

    def refuse(sock, address):
        connections.append(address)
        raise OSError("network access in a test")

    monkeypatch.setattr(socket.socket, "connect", refuse)
    records = make_records()
    texts = [r["text"] for r in records]
    system = SetFitBaseline(str(tiny_base_model), max_steps=4)
    assert system.name == "setfit"
    assert system.fit(texts, targets_from_records(records)) is system
    assert len(system.claim_thresholds) == len(CLAIM_TYPES)

    probabilities = system.predict_proba(texts[:5])
    assert probabilities.claims.shape == (5, len(CLAIM_TYPES))
    assert probabilities.stance.shape == (5, len(STANCES))
    assert probabilities.voice.shape == (5, len(VOICES))
    assert np.allclose(probabilities.stance.sum(1), 1.0)
    assert np.allclose(probabilities.voice.sum(1), 1.0)
    assert ((probabilities.claims >= 0) & (probabilities.claims <= 1)).all()
    assert connections == []
