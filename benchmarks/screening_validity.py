"""Does the screening score g predict the proxy-training score? (choosing eta)

Random candidates (as the search draws them) are screened with no threshold; those that
reach the optimization are bucketed by their g, and up to ``--per-bucket`` of each
bucket are proxy-trained. If the candidates just below eta train no better than chance
while those above it do, eta is not throwing good losses away.

    python benchmarks/screening_validity.py --task classification --metric accuracy
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import time
from pathlib import Path

import numpy as np

import autoloss_zero as az
from autoloss_zero.bench import candidate_stream
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.engines import LocalEngine
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.worker import make_job

BUCKETS = [(-1e9, 0.0), (0.0, 0.02), (0.02, 0.05), (0.05, 0.1), (0.1, 0.3), (0.3, 1e9)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="classification")
    ap.add_argument("--metric", default="accuracy")
    ap.add_argument("--per-bucket", type=int, default=10)
    ap.add_argument("--max-candidates", type=int, default=20000)
    ap.add_argument("--workers", type=int, default=None)
    args = ap.parse_args()
    cfg = SearchConfig()
    task = az.get_task(args.task)
    cfg_free = SearchConfig.from_dict({"screening": {"eta": -1e6}})  # no threshold
    screener = Screener.from_config(task, args.metric, cfg_free)  # the search's samples
    stream = candidate_stream(task, cfg, seed=7)
    loss = next(stream)
    chosen: dict[int, list] = {i: [] for i in range(len(BUCKETS))}
    seen = set()
    for _ in range(args.max_candidates):
        res = screener.screen(loss)
        ok = res.g is not None and res.g >= cfg.screening.eta  # what the search would keep
        if res.g is not None and loss.key not in seen:
            seen.add(loss.key)
            for i, (lo, hi) in enumerate(BUCKETS):
                if lo <= res.g < hi and len(chosen[i]) < args.per_bucket:
                    chosen[i].append((str(loss), res.g))
        if all(len(v) >= args.per_bucket for v in chosen.values()):
            break
        loss = stream.send(ok)
    engine = LocalEngine(args.workers)
    jobs = {}
    try:
        for i, items in chosen.items():
            for formula, g in items:
                job = make_job(len(jobs), args.task, task.config, formula, args.metric, 0,
                               operators=cfg.operators)
                jobs[job["id"]] = (i, formula, g)
                engine.submit(job)
        results = {i: [] for i in chosen}
        while engine.pending:
            for r in engine.wait(1.0):
                i, formula, g = jobs[r["id"]]
                results[i].append({"formula": formula, "g": g, "status": r["status"],
                                   "score": r.get("score")})
    finally:
        engine.close()
    rows = []
    for i, (lo, hi) in enumerate(BUCKETS):
        scores = [r["score"] if r["score"] is not None else float("nan") for r in results[i]]
        finite = [s for s in scores if s == s]
        rows.append({"g_from": lo, "g_to": hi, "trained": len(scores),
                     "invalid_or_failed": len(scores) - len(finite),
                     "mean_score": statistics.fmean(finite) if finite else None,
                     "max_score": max(finite) if finite else None,
                     "median_score": float(np.median(finite)) if finite else None,
                     "candidates": results[i]})
    out = {"task": args.task, "metric": args.metric, "eta": cfg.screening.eta,
           "steps": cfg.screening.steps, "lr": cfg.screening.lr, "rows": rows,
           "command": f"python benchmarks/screening_validity.py --task {args.task} --metric "
                      f"{args.metric} --per-bucket {args.per_bucket}",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M")}
    root = Path(__file__).parent / "results"
    root.mkdir(exist_ok=True)
    (root / f"screening-validity-{args.task}-{args.metric}.json").write_text(
        json.dumps(out, indent=2) + "\n")
    print(f"{args.task}/{args.metric}: proxy {args.metric} of candidates by screening score g "
          f"(eta = {cfg.screening.eta})")
    print("| g range | trained | invalid/failed | mean | median | max |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        rng = f"[{r['g_from']:g}, {r['g_to']:g})".replace("-1e+09", "-inf").replace(
            "1e+09", "inf")
        fmt = (lambda v: "-" if v is None else f"{v:.3f}")  # noqa: E731
        print(f"| {rng} | {r['trained']} | {r['invalid_or_failed']} | {fmt(r['mean_score'])} | "
              f"{fmt(r['median_score'])} | {fmt(r['max_score'])} |")


if __name__ == "__main__":
    main()
