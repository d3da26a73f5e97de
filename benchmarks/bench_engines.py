"""Engine scaling and overhead: evaluations per minute with 1 and 2 local workers.

Two measurements, side by side in one run:

1. **engine**: the same N proxy trainings (cross-entropy, seeds 0..N-1) through
   ``LocalEngine(1)`` and ``LocalEngine(2)``; evaluations/min, and the engine's overhead
   per evaluation = wall x workers / N - mean training time (idle worker time + IPC).
2. **search**: a whole search (budget N, same seed) with ``--workers 1`` and ``2``:
   evaluations/min and the driver's share of wall time (making and screening candidates,
   storing results), i.e. the search overhead.

Goal (issue 6): >= 1.8x with 2 workers on 2 cores. Writes benchmarks/results/engines.json.

    python benchmarks/bench_engines.py --evaluations 16
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from pathlib import Path

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.engines import LocalEngine
from autoloss_zero.search.status import Status
from autoloss_zero.search.worker import make_job

CE = "Neg(Mul(y, Log(yhat)))"


def engine_rate(workers: int, n: int, options: dict) -> dict:
    engine = LocalEngine(workers)
    try:
        task = az.get_task("classification", **options)
        jobs = [make_job(i, "classification", task.config, CE, "accuracy", i,
                         operators=list(az.get_operators().names)) for i in range(n)]
        # warm-up: one job per worker (process start, imports, data loading)
        for j in jobs[:workers]:
            engine.submit(dict(j, id=-1 - j["id"]))
        while engine.pending:
            engine.wait(1.0)
        t0 = time.perf_counter()
        for j in jobs:
            engine.submit(j)
        train_s, done = 0.0, 0
        while engine.pending:
            for r in engine.wait(1.0):
                assert r["status"] == Status.EVALUATED, r
                train_s += r["train_s"]
                done += 1
        wall = time.perf_counter() - t0
    finally:
        engine.close()
    return {"workers": workers, "evaluations": done, "wall_s": wall,
            "evaluations_per_min": 60 * done / wall, "mean_train_s": train_s / done,
            "overhead_per_evaluation_s": wall * workers / done - train_s / done}


def search_rate(workers: int, n: int, options: dict) -> dict:
    cfg = SearchConfig(seed=0)
    cfg.task_options = dict(options)
    with tempfile.TemporaryDirectory() as d:
        t0 = time.perf_counter()
        with az.search("classification", "accuracy", n, Path(d) / "s.db", cfg,
                       workers=workers) as r:
            wall = time.perf_counter() - t0
            stats = r.meta()["stats"]
            rows = r.candidates()
    train = [c.train_s for c in rows if c.train_s]
    return {"workers": workers, "evaluations": len(train), "wall_s": wall,
            "evaluations_per_min": 60 * len(train) / wall,
            "mean_train_s": sum(train) / len(train),
            "driver_share_of_wall": stats["driver_s"] / stats["wall_s"],
            "screening_s": stats["screen_s"], "search_wall_s": stats["wall_s"]}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--evaluations", type=int, default=16)
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "engines.json"))
    args = ap.parse_args()
    options = {}  # the classification task's own proxy schedule
    res = {"engine": [engine_rate(w, args.evaluations, options) for w in (1, 2)]}
    res["search"] = [search_rate(w, args.evaluations, options) for w in (1, 2)]
    for key in ("engine", "search"):
        one, two = res[key]
        res[f"{key}_speedup_2_workers"] = two["evaluations_per_min"] / one["evaluations_per_min"]
    res.update(command=f"python benchmarks/bench_engines.py --evaluations {args.evaluations}",
               machine=f"{platform.machine()}, {os.cpu_count()} cores",
               date=time.strftime("%Y-%m-%d %H:%M"))
    Path(args.out).parent.mkdir(parents=True, exist_ok=True)
    Path(args.out).write_text(json.dumps(res, indent=2) + "\n")
    print(json.dumps(res, indent=2))


if __name__ == "__main__":
    main()
