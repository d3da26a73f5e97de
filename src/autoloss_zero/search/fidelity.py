"""Multi-fidelity evaluation: rungs above the proxy, promotions by the ASHA rule.

Rung 0 is the proxy training every candidate gets. Each configured rung above it asks
for more trainings of a loss: more proxy seeds (its score is then the mean of all its
proxy trainings, copies' re-evaluations included) or trainings with the task's full
schedule scored on the validation split. A loss is promoted from rung i to i + 1 when it
sits in the top fraction ``top`` of the losses that completed rung i (Li et al., "A
System for Massively Parallel Hyperparameter Tuning", 2020: asynchronous successive
halving). Promotions are made as workers free up, before any new candidate, from the
highest rung down, so that the best losses are finished first.

Members are compared fairly across rungs by the tournament (see
:func:`compare_members`): at the highest fidelity both reached, the full schedule if both
have full-schedule scores, else their proxy means (every loss has those).
"""

from __future__ import annotations

import math
from dataclasses import dataclass

from .config import FidelityConfig


@dataclass(frozen=True)
class Rung:
    index: int
    schedule: str
    seeds: int
    top: float


def rungs_of(config: FidelityConfig) -> list[Rung]:
    """Rung 0 (one proxy training) and the configured rungs above it."""
    out = [Rung(0, "proxy", 1, 1.0)]
    for i, r in enumerate(config.rungs, 1):
        out.append(Rung(i, r.get("schedule", "proxy"), int(r["seeds"]), float(r["top"])))
    return out


def mean(scores) -> float | None:
    """The mean of the finished scores (None entries, NaN/Inf trainings, are skipped);
    None when there is none: the worst score."""
    vals = [s for s in scores if s is not None]
    return sum(vals) / len(vals) if vals else None


def best_to_promote(completed: dict[int, float | None], promoted: set[int],
                    top: float) -> int | None:
    """ASHA: the best group among the top ``floor(n * top)`` of the ``n`` groups that
    completed a rung (with their scores there) that is not promoted yet."""
    k = math.floor(len(completed) * top + 1e-9)
    ranked = sorted(completed.items(),
                    key=lambda kv: (kv[1] is None, -(kv[1] if kv[1] is not None else 0), kv[0]))
    for group, score in ranked[:k]:
        if score is not None and group not in promoted:
            return group
    return None


def compare_key(proxy: float | None, full: float | None, other_has_full: bool):
    """The score a member shows in a duel with another member (see module docstring)."""
    if full is not None and other_has_full:
        return full
    return -math.inf if proxy is None else proxy
