"""Racing in confirmation: more full-schedule trainings where the ranking is a coin toss.

Confirmation re-trains the top losses ``seeds`` times each and ranks them by their mean. When
the leader's mean is within noise of another's, that order is not a finding: on
segmentation/mAcc (2026-12-02) the rank 1 led cross-entropy by 0.004 on validation with
3 trainings each (standard deviations 0.007 and 0.027) and then lost to it by 0.034 on the
test split. Racing keeps training the losses that are not separated from the leader,
one training each per round, until the leader is ahead of every other by more than one
standard error of the difference of means, or each has ``max_seeds`` trainings (then the
higher mean ranks first, as without racing).
"""

from __future__ import annotations

import math
from statistics import fmean, variance


def standard_error(a: list[float], b: list[float]) -> float:
    """Standard error of the difference of two means (Welch); infinite when either has
    fewer than two scores."""
    if len(a) < 2 or len(b) < 2:
        return math.inf
    return math.sqrt(variance(a) / len(a) + variance(b) / len(b))


def contenders(scores: dict[int, list[float]]) -> list[int]:
    """The losses that need more trainings: the leader (highest mean) and every loss whose
    mean is within one standard error of the difference of the leader's; empty when the
    leader is separated from all (or there is only one loss). Ties break by id, as the
    leaderboard's do."""
    ranked = sorted((k for k, v in scores.items() if v), key=lambda k: (-fmean(scores[k]), k))
    if len(ranked) < 2:
        return []
    lead = ranked[0]
    close = [k for k in ranked[1:]
             if fmean(scores[lead]) - fmean(scores[k])
             <= standard_error(scores[lead], scores[k])]
    return [lead, *close] if close else []
