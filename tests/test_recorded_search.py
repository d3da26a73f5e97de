"""A serial search with a fixed seed, against rows recorded before a refactor.

The expected data below was produced by the code at the start of issue 14 (one home for
each fact: operators, configuration, errors, statuses), on the project's CPU build
(torch 2.13.0, one thread per process). A refactor that is meant to change nothing must
leave every row of the study as it was: the losses drawn, their normal forms, verdicts,
screening scores, fingerprints, parents, mutations, training seeds, proxy scores and the
order they joined the population, hence the leaderboard too.

A change that moves these rows on purpose (a new default, a different random stream)
records them again: run this search and paste its rows (see ``record()``).
"""

from __future__ import annotations

import hashlib
import json
from collections import Counter

import autoloss_zero as az
from conftest import rows_key, tiny_config

BUDGET = 10


def config():
    cfg = tiny_config(0)
    cfg.task_options["proxy_steps"] = 20  # enough training for scores to differ
    cfg.mutation.copy = 0.3  # copies re-evaluated with fresh seeds: groups of scores
    cfg.mutation.copy_mode = "reevaluate"  # as recorded (the default until 2026-12-01)
    return cfg


FP_32 = ("1.3e-02,1.3e-02,1.3e-02,1.3e-02,1.3e-02|-1.4e-02,-1.6e-02,3.5e-03,-2.0e-02,-1.2e-02"
         "|1.2e-02,1.2e-02,1.2e-02,1.1e-02,1.2e-02")
FP_63 = ("1.7e-02,1.7e-02,1.7e-02,1.7e-02,1.7e-02|-1.8e-02,-2.1e-02,4.7e-03,-2.7e-02,-1.6e-02"
         "|2.2e-02,2.3e-02,2.2e-02,2.2e-02,2.2e-02")
FP_154 = ("1.9e-02,1.9e-02,1.9e-02,2.0e-02,1.9e-02|-1.3e-02,-1.9e-02,1.3e-03,-2.4e-02,-1.6e-02"
          "|1.0e-01,9.5e-02,9.5e-02,1.1e-01,9.5e-02")
FP_166 = ("3.3e+04,3.7e+04,3.5e+04,3.2e+04,3.3e+04|-4.2e+04,-2.0e+04,4.4e+04,-3.6e+04,-1.2e+04"
          "|2.8e+00,2.9e+00,2.8e+00,2.7e+00,2.8e+00")
FP_173 = ("1.3e-02,1.3e-02,1.3e-02,1.3e-02,1.3e-02|-1.4e-02,-1.6e-02,3.5e-03,-2.1e-02,-1.2e-02"
          "|1.7e-02,1.7e-02,1.7e-02,1.7e-02,1.7e-02")
L32 = ("Tanh(Mul(Tanh(y), Neg(yhat)))", "loss: Neg(Tanh(Mul(Tanh(y), yhat)))")
L63 = ("Neg(MaxPool3x3(Mul(y, yhat)))", "loss: Neg(MaxPool3x3(Mul(y, yhat)))")
L154 = ("Add(MinPool3x3(Sqrt(yhat)), Sqrt(Add(yhat, y)))",
        "loss: Add(MinPool3x3(Sqrt(yhat)), Sqrt(Add(y, yhat)))")
L166 = ("Mul(Log(Add(y, y)), Exp(Inv(yhat)))", "loss: Mul(Exp(Inv(yhat)), Log(Add(y, y)))")
L173 = ("Mul(Mul(Tanh(y), Neg(yhat)), 1)", "loss: Neg(Mul(Tanh(y), yhat))")
G = 0.893750011920929

# rows_key of every candidate that passed screening:
# (id, step, formula, normal, status, score, fingerprint, g, parent, mutation, seed,
#  duplicate_of, joined)
PASSED = [
    (32, 0, *L32, "evaluated", 0.155, FP_32, G, None, "init", 3979752699, None, 1),
    (63, 1, *L63, "evaluated", 0.1, FP_63, G, None, "init", 4095183140, None, 2),
    (154, 2, *L154, "evaluated", 0.1, FP_154, 0.637499988079071, None, "init", 4125702601,
     None, 3),
    (155, 3, *L32, "evaluated", 0.1, None, None, 32, "copy", 2844628874, 32, 4),
    (156, 4, *L63, "evaluated", 0.1, None, None, 63, "copy", 2150138699, 63, 5),
    (157, 5, *L32, "evaluated", 0.122, None, None, 32, "copy", 225970740, 32, 6),
    (158, 6, *L154, "evaluated", 0.1, None, None, 154, "copy", 3808022859, 154, 7),
    (166, 7, *L166, "evaluated", 0.229, FP_166, G, 63, "reinit", 4246274155, None, 8),
    (173, 8, *L173, "evaluated", 0.1, FP_173, G, 32, "insert+delete", 2938567196, None, 9),
    (174, 9, *L63, "evaluated", 0.177, None, None, 63, "copy", 923081566, 63, 10),
]
LEADERBOARD = [
    (166, L166[0], 0.229),
    (32, L32[0], 0.12566666666666668),
    (63, L63[0], 0.12566666666666668),
    (154, L154[0], 0.1),
    (173, L173[0], 0.1),
]
COUNTS = {"rejected": 164, "evaluated": 10}
ALL_ROWS_SHA256 = "d46d2a908c8d58c0b3b3c26cc18ca4eda2e3518c8c5b504c58dd65a9b3066029"
"""sha256 of ``json.dumps(rows_key(study))``: the rejected candidates too."""


def record(path):
    """The search of this test and what it compares: (rows_key, leaderboard)."""
    with az.search("classification", "accuracy", BUDGET, path, config(), workers=1) as r:
        return rows_key(r), [(c.id, c.formula, c.score) for c in r.leaderboard()]


def test_serial_search_gives_the_recorded_rows_and_leaderboard(tmp_path):
    rows, board = record(tmp_path / "s.db")
    assert [r for r in rows if r[4] != "rejected"] == PASSED
    assert board == LEADERBOARD
    assert dict(Counter(r[4] for r in rows)) == COUNTS
    digest = hashlib.sha256(json.dumps(rows).encode()).hexdigest()
    assert digest == ALL_ROWS_SHA256
