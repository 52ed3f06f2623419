"""Between label records (the schema's JSON) and the arrays that models use."""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np

from mineral_stance.config import CLAIM_TYPES, STANCES, VOICES

if TYPE_CHECKING:  # pandas loads in to_pandas: predicting does not need it (0.5 s, 80 MB)
    import pandas as pd


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
    """Model outputs: claims (n, 3) sigmoid probabilities, stance (n, 4), voice (n, 2).

    The label names of the columns travel with the arrays (``claim_types``,
    ``stances``, ``voices``; ``columns`` for the flat table). Indexing with an
    int gives one row (1-D arrays); a slice or index array gives a subset.
    """

    claims: np.ndarray
    stance: np.ndarray
    voice: np.ndarray
    claim_types: tuple[str, ...] = CLAIM_TYPES
    stances: tuple[str, ...] = STANCES
    voices: tuple[str, ...] = VOICES

    def __len__(self) -> int:
        return len(self.stance) if self.stance.ndim == 2 else 1

    def __getitem__(self, index) -> Probabilities:
        return Probabilities(
            self.claims[index],
            self.stance[index],
            self.voice[index],
            self.claim_types,
            self.stances,
            self.voices,
        )

    @classmethod
    def empty(cls) -> Probabilities:
        """No rows, every column."""
        return cls(
            np.zeros((0, len(CLAIM_TYPES))), np.zeros((0, len(STANCES))), np.zeros((0, len(VOICES)))
        )

    @property
    def columns(self) -> list[str]:
        """Column names of ``to_pandas()``, the same as the ``p_*`` fields of predictions."""
        return (
            [f"p_claim_{name}" for name in self.claim_types]
            + [f"p_stance_{name}" for name in self.stances]
            + [f"p_voice_{name}" for name in self.voices]
        )

    def to_numpy(self) -> np.ndarray:
        """All probabilities side by side, (n, 9), in the order of ``columns``."""
        rows = [np.atleast_2d(a) for a in (self.claims, self.stance, self.voice)]
        return np.concatenate(rows, axis=1)

    def to_pandas(self) -> pd.DataFrame:
        """One row per sentence, one named column per label."""
        import pandas as pd

        return pd.DataFrame(self.to_numpy(), columns=self.columns)

    def decide(
        self,
        claim_thresholds: np.ndarray | list[float],
        stance_offsets: list[float] | None = None,
        voice_offsets: list[float] | None = None,
    ) -> Targets:
        """Hard labels: each claim above its threshold, the most probable stance and voice.

        Offsets (one per label, added to the log-probabilities before the argmax)
        move the boundaries between stances or voices, as thresholds do for claims;
        none means the plain argmax.
        """
        thresholds = np.asarray(claim_thresholds, dtype=float)
        return Targets(
            claims=(self.claims >= thresholds).astype(int),
            stance=offset_argmax(self.stance, stance_offsets),
            voice=offset_argmax(self.voice, voice_offsets),
        )

    @staticmethod
    def concatenate(parts: list[Probabilities]) -> Probabilities:
        return Probabilities(
            claims=np.concatenate([p.claims for p in parts]),
            stance=np.concatenate([p.stance for p in parts]),
            voice=np.concatenate([p.voice for p in parts]),
            claim_types=parts[0].claim_types,
            stances=parts[0].stances,
            voices=parts[0].voices,
        )


def offset_argmax(probabilities: np.ndarray, offsets: list[float] | None) -> np.ndarray:
    """The label of largest log-probability plus its offset (plain argmax without offsets)."""
    if offsets is None or not np.any(offsets):
        return probabilities.argmax(1)
    scores = np.log(np.clip(probabilities, 1e-12, None)) + np.asarray(offsets, dtype=float)
    return scores.argmax(1)


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
