"""How often does the gradient fingerprint merge losses that train differently?

For a study, every candidate settled as a duplicate by its gradient fingerprint (not by
its normal form, which is exact) inherited another loss's score without training. This
trains each such candidate and the loss whose score it inherited with the proxy over
``--seeds`` seeds and counts a **collision** when their mean proxy scores differ by more
than ``--sigmas`` times the seed noise (the pooled standard deviation of a loss's proxy
scores over seeds, measured on the same runs) — i.e. when the two losses were not
equivalent after all. Reports the study's offspring mix and duplicate counts too.

    python benchmarks/fingerprint_collisions.py results/issue16/classification-after.db \
        --seeds 2 --limit 40 --runs results/issue16/collisions.runs.jsonl

Runs are shared through the JSON-lines ``--runs`` file (resumable).
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import numpy as np
from provenance import provenance

from autoloss_zero.compare import compare
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import StudyReader
from autoloss_zero.tasks import get_task


def study_stats(path: Path) -> dict:
    with StudyReader(path) as r:
        rows = r.candidates()
        meta = r.meta()
    joined = [c for c in rows if c.joined is not None and c.parent is not None]
    mix: dict[str, int] = {}
    for c in joined:
        m = c.mutation or "?"
        kind = "copy" if m == "copy" else "reinit" if m == "reinit" else \
            "recombine" if m.startswith(("crossover", "sum")) else "mutate"
        mix[kind] = mix.get(kind, 0) + 1
    dup = [c for c in rows if c.status == "duplicate"]
    by = {"normal form": 0, "gradient fingerprint": 0, "copy": 0}
    for c in dup:
        reason = c.reason or ""
        key = ("gradient fingerprint" if "gradient fingerprint" in reason else
               "copy" if "a copy" in reason or c.mutation == "copy" else "normal form")
        by[key] += 1
    return {"task": meta["task"], "metric": meta["metric"], "config": meta["config"],
            "trainings": sum(c.status in ("evaluated", "invalid", "failed") for c in rows),
            "joined_offspring": len(joined), "offspring_mix": mix,
            "offspring_share": {k: v / max(1, len(joined)) for k, v in mix.items()},
            "duplicates": len(dup), "duplicates_by": by,
            "rejected": sum(c.status == "rejected" for c in rows)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("study", nargs="+")
    ap.add_argument("--seeds", type=int, default=2)
    ap.add_argument("--limit", type=int, default=40, help="fingerprint duplicates to train "
                    "per study (drawn with a fixed seed when there are more)")
    ap.add_argument("--sigmas", type=float, default=3.0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    report = {**provenance(), "studies": {}}
    for path in map(Path, args.study):
        stats = study_stats(path)
        with StudyReader(path) as r:
            rows = {c.id: c for c in r.candidates()}
        fp = [c for c in rows.values()
              if c.status == "duplicate" and "gradient fingerprint" in (c.reason or "")]
        if len(fp) > args.limit:
            pick = np.random.default_rng(0).choice(len(fp), args.limit, replace=False)
            fp = [fp[i] for i in sorted(pick)]
        pairs = [(c.formula, rows[c.duplicate_of].formula) for c in fp]
        cfg = SearchConfig.from_dict(stats["config"])
        task = get_task(stats["task"], **cfg.task_options)
        losses = sorted({f for pair in pairs for f in pair})
        means, stds = {}, []
        if losses:
            res = compare(task, losses, args.seeds, None, "proxy", args.workers,
                          results=args.runs)
            for row in res.summary():
                st = row["metrics"][stats["metric"]]
                means[row["loss"]] = st["mean"]
                if len(st["values"]) > 1:
                    stds.append(statistics.pstdev(st["values"]))
        noise = statistics.fmean(stds) if stds else None
        collisions = []
        for dup, root in pairs:
            a, b = means.get(dup), means.get(root)
            if a is None or b is None or noise is None:
                continue
            if abs(a - b) > args.sigmas * max(noise, 1e-9):
                collisions.append({"duplicate": dup, "of": root, "scores": [a, b]})
        stats.update(fingerprint_duplicates_trained=len(pairs), seed_noise=noise,
                     collisions=len(collisions), collision_rate=(
                         len(collisions) / len(pairs) if pairs else None),
                     collision_examples=collisions[:10])
        report["studies"][str(path)] = stats
        print(json.dumps({k: v for k, v in stats.items() if k != "config"}, indent=1))
    Path(args.out).write_text(json.dumps(report, indent=1))


if __name__ == "__main__":
    main()
