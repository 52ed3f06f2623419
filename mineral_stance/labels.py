"""Between label records (the schema's JSON) and the arrays that models use."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES


@dataclass
class Targets:
    """Gold labels as arrays: claims (n, 3) of 0/1, stance (n,) and voice (n,) as indices."""

    claims: np.ndarray
    stance: np.ndarray
    voice: np.ndarray

    def __len__(self) -> int:
        return len(self.stance)

    def subset(self, index: np.ndarray) -> Targets:
        return Targets(self.claims[index], self.stance[index], self.voice[index])


@dataclass
class Probabilities:
    """Model outputs: claims (n, 3) sigmoid probabilities, stance (n, 4), voice (n, 2)."""

    claims: np.ndarray
    stance: np.ndarray
    voice: np.ndarray

    def __len__(self) -> int:
        return len(self.stance)

    def decide(self, claim_thresholds: np.ndarray | list[float]) -> Targets:
        """Hard labels: each claim above its threshold, the most probable stance and voice."""
        thresholds = np.asarray(claim_thresholds, dtype=float)
        return Targets(
            claims=(self.claims >= thresholds).astype(int),
            stance=self.stance.argmax(1),
            voice=self.voice.argmax(1),
        )

    @staticmethod
    def concatenate(parts: list[Probabilities]) -> Probabilities:
        return Probabilities(
            claims=np.concatenate([p.claims for p in parts]),
            stance=np.concatenate([p.stance for p in parts]),
            voice=np.concatenate([p.voice for p in parts]),
        )


def targets_from_records(records: list[dict]) -> Targets:
    return Targets(
        claims=np.array(
            [[int(c in r["claim_types"]) for c in CLAIM_TYPES] for r in records], dtype=int
        ).reshape(len(records), len(CLAIM_TYPES)),
        stance=np.array([STANCES.index(r["stance"]) for r in records], dtype=int),
        voice=np.array([VOICES.index(r["voice"]) for r in records], dtype=int),
    )


def label_dicts(targets: Targets) -> list[dict]:
    """Schema-style labels, one dict per sentence."""
    return [
        {
            "claim_types": [c for c, on in zip(CLAIM_TYPES, claims, strict=True) if on],
            "stance": STANCES[stance],
            "voice": VOICES[voice],
        }
        for claims, stance, voice in zip(targets.claims, targets.stance, targets.voice, strict=True)
    ]
