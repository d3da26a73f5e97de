"""Random streams of a search: every one derived from the master seed with a label.

One master seed per search; each use draws from a stream of its own, named by a label
(and step numbers where there are many), so that no two uses ever share a generator:
``stream(seed, "step", 7)`` (evolution step 7) and ``derive_seed(seed, "screening")``
(the screening samples) are unrelated even though both involve the numbers 7 and seed.
"""

from __future__ import annotations

import hashlib

import numpy as np


def _label(label: str) -> int:
    return int.from_bytes(hashlib.sha256(label.encode()).digest()[:4], "big")


def _entropy(seed: int, label: str, parts) -> list[int]:
    return [int(seed) & 0xFFFFFFFFFFFFFFFF, _label(label), *(int(p) for p in parts)]


def derive_seed(seed: int, label: str, *parts: int) -> int:
    """A 32-bit seed for (master seed, label, parts)."""
    return int(np.random.SeedSequence(_entropy(seed, label, parts)).generate_state(1)[0])


def stream(seed: int, label: str, *parts: int) -> np.random.Generator:
    """A numpy generator for (master seed, label, parts)."""
    return np.random.default_rng(np.random.SeedSequence(_entropy(seed, label, parts)))
