"""The gradient-equivalence check (paper Section 3.2) and the normal-form index.

Two losses are taken as equivalent when the norms of their gradients with respect to
the B screening samples' raw predictions agree to ``digits`` significant digits for
every sample. The normal form of the expression tree (a free check) comes first.
Both indexes map a key to the id of the first candidate that had it.
"""

from __future__ import annotations

import math
from collections.abc import Iterable


def fingerprint(norms: Iterable[float], digits: int = 2) -> str:
    """The B gradient norms, each rounded to ``digits`` significant digits, as text."""
    return ",".join(f"{float(n):.{digits - 1}e}" if math.isfinite(n) else "nan" for n in norms)


class EquivalenceIndex:
    """Normal-form and fingerprint keys -> the first candidate id that had them."""

    def __init__(self) -> None:
        self.by_key: dict[str, int] = {}
        self.by_fingerprint: dict[str, int] = {}

    def add(self, cand_id: int, key: str | None, fp: str | None) -> None:
        if key is not None:
            self.by_key.setdefault(key, cand_id)
        if fp is not None:
            self.by_fingerprint.setdefault(fp, cand_id)

    def by_normal_form(self, key: str) -> int | None:
        return self.by_key.get(key)

    def by_gradient(self, fp: str) -> int | None:
        return self.by_fingerprint.get(fp)
