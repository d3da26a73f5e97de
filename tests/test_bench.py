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


def test_the_candidate_stream_makes_region_sums_by_term():
    from autoloss_zero.expr.mutate import region_terms
    from autoloss_zero.expr.tree import normal_key

    cfg = tiny_config()
    cfg.population.initial = 4
    cfg.mutation.region_sum, cfg.mutation.region_pick = 1.0, "term"
    task = az.get_task("classification", **cfg.task_options)
    ops = cfg.operator_set()
    stream = candidate_stream(task, cfg, seed=0)
    pool = [next(stream)]
    sums = 0
    for _ in range(300):
        loss = stream.send(True)
        node = loss["loss"].node
        known = {normal_key(x) for p in pool[:-1] if p is not None
                 for t in region_terms(p["loss"].node, ops, ("yhat",), ("y",))
                 for x in (t, ("Neg", t))}
        if len(pool) > 4 and node[0] == "Add" and normal_key(node[2]) in known:
            sums += 1
        pool.append(loss)
    assert sums > 10


@pytest.mark.timeout(240)
def test_bench_rejection_with_user_operators_and_digits(tests_on_path):
    cfg = user_config()
    res = bench_rejection("classification", "accuracy", seconds=1, processes=1, config=cfg)
    assert res["operators"] == OPERATORS and res["digits"] == 3
    assert res["candidates"] > 0 and res["naive_candidates"] > 0
