"""Screening multi-branch losses branch by branch: do the initial members it accepts train?

Initial members are drawn exactly as a search from scratch draws them (``Evolution.produce``
on a throwaway study, master seed ``--seed``), once with the paper's whole-loss test only
(``screening.per_branch = false``) and once with the per-branch test added (the default);
``--members`` of each are proxy-trained (one seed each), beside the task's baselines. The
report gives, for each setting, the candidates screened per accepted member, the seconds
it took, each member's screening g, per-branch verdicts and proxy score.

    python benchmarks/branch_screening.py --task detection --metric map --members 6
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import statistics
import tempfile
import time
from pathlib import Path

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.engines import LocalEngine
from autoloss_zero.search.evolution import Evolution
from autoloss_zero.search.study import Study
from autoloss_zero.search.torch_settings import driver_torch
from autoloss_zero.search.worker import make_job


def draw_members(task, metric: str, per_branch: bool, n: int, seed: int) -> dict:
    """``n`` initial members of a search from scratch with or without the per-branch test."""
    cfg = SearchConfig.from_dict({"seed": seed, "population": {"initial": n},
                                  "screening": {"per_branch": per_branch}})
    members = []
    with tempfile.TemporaryDirectory() as tmp, driver_torch():
        meta = {"task": task.name, "metric": metric, "config": cfg.to_dict()}
        with Study(Path(tmp) / "probe.db", meta) as db:
            evo = Evolution(task, metric, db, cfg)
            t0 = time.perf_counter()
            while len(members) < n:
                row = evo.produce()
                if row is not None:
                    members.append({"formula": row.formula, "g": row.g})
            seconds = time.perf_counter() - t0
            drawn, screened = evo.stats.rejected + n, evo.stats.screened
    return {"per_branch": per_branch, "members": members, "seconds": seconds,
            "candidates_drawn": drawn, "screening_calls": screened}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="detection")
    ap.add_argument("--metric", default="map")
    ap.add_argument("--members", type=int, default=6)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    args = ap.parse_args()
    task = az.get_task(args.task)
    settings = [draw_members(task, args.metric, pb, args.members, args.seed)
                for pb in (False, True)]
    engine = LocalEngine(args.workers)
    jobs = {}
    try:
        for setting in settings:
            for member in setting["members"]:
                job = make_job(len(jobs), args.task, task.config, member["formula"],
                               args.metric, args.seed, operators=SearchConfig().operators)
                jobs[job["id"]] = member
                engine.submit(job)
        for name in task.baselines:
            job = make_job(len(jobs), args.task, task.config, "", args.metric, args.seed,
                           operators=SearchConfig().operators, baseline=name)
            jobs[job["id"]] = {"baseline": name}
            engine.submit(job)
        while engine.pending:
            for r in engine.wait(1.0):
                jobs[r["id"]].update(status=r["status"], score=r.get("score"))
    finally:
        engine.close()
    for setting in settings:
        scores = [m["score"] for m in setting["members"] if m.get("score") is not None]
        setting["trained_above_zero"] = sum(s > 0.001 for s in scores)
        setting["mean_score"] = statistics.fmean(scores) if scores else None
    baselines = {j["baseline"]: j.get("score") for j in jobs.values() if "baseline" in j}
    out = {"task": args.task, "metric": args.metric, "settings": settings,
           "baselines": baselines, "members": args.members, "seed": args.seed,
           "command": f"python benchmarks/branch_screening.py --task {args.task} --metric "
                      f"{args.metric} --members {args.members} --seed {args.seed}",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M")}
    root = Path(__file__).parent / "results"
    root.mkdir(exist_ok=True)
    path = root / f"branch-screening-{args.task}-{args.metric}.json"
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(out, indent=2) + "\n")
    tmp.replace(path)
    print(f"{args.task}/{args.metric}: initial members of a search from scratch, proxy-trained")
    print("| screening | candidates drawn per member | s per member | mean g | "
          "members > 0.001 | mean proxy score |")
    print("|---|---|---|---|---|---|")
    for s in settings:
        n = len(s["members"])
        g = statistics.fmean(m["g"] for m in s["members"] if m["g"] is not None)
        mean = "-" if s["mean_score"] is None else f"{s['mean_score']:.3f}"
        print(f"| {'whole loss + per branch' if s['per_branch'] else 'whole loss (paper)'} | "
              f"{s['candidates_drawn'] / n:.0f} | {s['seconds'] / n:.1f} | {g:.3f} | "
              f"{s['trained_above_zero']} of {n} | {mean} |")
    print("baselines: " + ", ".join(f"{k} {v:.3f}" for k, v in baselines.items()
                                    if v is not None))


if __name__ == "__main__":
    main()
