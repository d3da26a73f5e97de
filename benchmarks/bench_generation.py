"""Throughput of candidate generation: random init + offspring + normal-form hash.

Goal (issue 2): >= 20,000 candidates/s on one core, so that generating candidates never
matters next to screening them. Run: ``python benchmarks/bench_generation.py [--seconds S]``.
Writes ``benchmarks/results/generation.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import numpy as np

from autoloss_zero.expr import MutationConfig, get_operators
from autoloss_zero.expr.mutate import offspring_with_label
from autoloss_zero.expr.random import grow
from autoloss_zero.expr.tree import DEFAULT_LEAVES, Expr


def measure(seconds: float, seed: int = 0) -> dict:
    rng = np.random.default_rng(seed)
    ops = get_operators()
    cfg = MutationConfig()
    parents = [Expr(grow(rng, 3, DEFAULT_LEAVES, ops)) for _ in range(64)]
    stages = {"init": 0.0, "offspring": 0.0, "hash": 0.0}
    n = 0
    keys = set()
    end = time.perf_counter() + seconds
    while time.perf_counter() < end:
        for _ in range(500):
            t0 = time.perf_counter()
            fresh = Expr(grow(rng, 3, DEFAULT_LEAVES, ops))
            t1 = time.perf_counter()
            child, _ = offspring_with_label(parents[n % 64], rng, DEFAULT_LEAVES, ops, cfg)
            t2 = time.perf_counter()
            keys.add(fresh.key)
            keys.add(child.key)
            t3 = time.perf_counter()
            parents[n % 64] = child if child.size < 40 else fresh
            stages["init"] += t1 - t0
            stages["offspring"] += t2 - t1
            stages["hash"] += t3 - t2
            n += 1
    total = sum(stages.values())
    return {
        "candidates_per_s": n / total,
        "per_stage_us": {k: 1e6 * v / n for k, v in stages.items()},
        "candidates": n,
        "distinct_normal_forms": len(keys),
    }


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--seconds", type=float, default=5.0)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "generation.json"))
    args = ap.parse_args()
    res = measure(args.seconds)
    res.update(
        command=f"python benchmarks/bench_generation.py --seconds {args.seconds:g}",
        machine=f"{platform.processor() or platform.machine()}, {os.cpu_count()} cores",
        date=time.strftime("%Y-%m-%d"),
        goal_candidates_per_s=20000,
    )
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
