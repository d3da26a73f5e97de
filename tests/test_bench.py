"""``bench rejection`` measures the search's own screening: its operator set (user
operators included, imported in every screening process) and equivalence digits."""

from __future__ import annotations

import pytest

import autoloss_zero as az
from autoloss_zero.bench import bench_rejection, candidate_stream
from conftest import tiny_config

OPERATORS = ["Add", "Mul", "Neg", "Log", "Cube"]


def user_config():
    cfg = tiny_config()
    cfg.operators = list(OPERATORS)
    cfg.operator_modules = ["user_ops"]
    cfg.equivalence.digits = 3
    return cfg


def test_the_candidate_stream_draws_from_the_configs_operators(tests_on_path):
    cfg = user_config()
    task = az.get_task("classification", **cfg.task_options)
    stream = candidate_stream(task, cfg, seed=0)
    used = set()
    loss = next(stream)
    for i in range(200):
        for _, expr in loss.branches:
            used |= expr.operators
        loss = stream.send(i % 3 == 0)
    assert used <= set(OPERATORS) and "Cube" in used


@pytest.mark.timeout(240)
def test_bench_rejection_with_user_operators_and_digits(tests_on_path):
    cfg = user_config()
    res = bench_rejection("classification", "accuracy", seconds=1, processes=1, config=cfg)
    assert res["operators"] == OPERATORS and res["digits"] == 3
    assert res["candidates"] > 0 and res["naive_candidates"] > 0
