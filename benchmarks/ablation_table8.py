"""The paper's Table 8 in miniature: losses explored per hour by degenerate variants.

Four searches with the same seed, task, workers and wall-time budget:

1. naive evolution: every candidate is proxy-trained (no screening, no duplicate
   detection, training runs its full schedule even on NaN/Inf losses);
2. + loss-rejection protocol;
3. + gradient-equivalence check (and the normal form);
4. + stop training at the first NaN/Inf loss value (= the full method).

"Explored" counts every candidate whose verdict was reached in the time: rejected by
screening, settled as a duplicate, or trained (evaluated / invalid / failed).

    python benchmarks/ablation_table8.py --task segmentation --metric miou --minutes 10

Each variant's study is kept under benchmarks/results/ablation-<task>/; a finished
variant is not re-run (delete its study to redo it). Writes ablation-<task>.json / .md.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import time
from pathlib import Path

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import StudyReader

PAPER = {"naive": (1, 300), "rejection": (700, 2.1e5), "equivalence": (1000, 3.2e5),
         "stop_invalid": (5000, 1.5e6)}
VARIANTS = [
    ("naive", "Naive evolution", dict(screening=False, equivalence=False, stop=False)),
    ("rejection", "+ loss-rejection protocol", dict(screening=True, equivalence=False,
                                                    stop=False)),
    ("equivalence", "+ gradient-equivalence check", dict(screening=True, equivalence=True,
                                                         stop=False)),
    ("stop_invalid", "+ stop training on invalid loss values",
     dict(screening=True, equivalence=True, stop=True)),
]


def explored(reader: StudyReader) -> dict:
    c = reader.counts()
    done = sum(v for k, v in c.items() if k not in ("running", "waiting"))
    return {"explored": done, **c}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", default="segmentation")
    ap.add_argument("--metric", default="miou")
    ap.add_argument("--minutes", type=float, default=10.0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--seed", type=int, default=0)
    args = ap.parse_args()
    root = Path(__file__).parent / "results"
    folder = root / f"ablation-{args.task}"
    folder.mkdir(parents=True, exist_ok=True)
    rows = []
    for key, label, flags in VARIANTS:
        study = folder / f"{key}.db"
        done_flag = folder / f"{key}.done.json"
        if not done_flag.exists():
            if study.exists():
                study.unlink()  # an interrupted timed run is not comparable: redo it
            cfg = SearchConfig(seed=args.seed)
            cfg.screening.enabled = flags["screening"]
            cfg.equivalence.enabled = flags["equivalence"]
            cfg.evaluation.stop_on_invalid = flags["stop"]
            t0 = time.perf_counter()
            az.search(args.task, args.metric, 10**9, study, cfg, workers=args.workers,
                      time_limit=60 * args.minutes).close()
            wall = time.perf_counter() - t0
            with StudyReader(study) as r:
                board = r.leaderboard(1)
                res = explored(r) | {"wall_s": wall,
                                     "best": board[0].score if board else None}
            done_flag.write_text(json.dumps(res))
        res = json.loads(done_flag.read_text())
        res["per_hour"] = res["explored"] / args.minutes * 60
        rows.append((key, label, res))
    base = rows[0][2]["per_hour"]
    table = []
    for key, label, res in rows:
        table.append({"variant": key, "label": label, "explored": res["explored"],
                      "explored_per_hour": res["per_hour"], "speedup": res["per_hour"] / base,
                      "paper_speedup": PAPER[key][0], "paper_explored_48h": PAPER[key][1],
                      "trainings": res["evaluated"] + res["invalid"] + res["failed"],
                      "rejected": res["rejected"], "duplicates": res["duplicate"],
                      "invalid": res["invalid"], "best_proxy_score": res["best"]})
    out = {"task": args.task, "metric": args.metric, "minutes_per_variant": args.minutes,
           "workers": args.workers or os.cpu_count(), "seed": args.seed, "rows": table,
           "command": f"python benchmarks/ablation_table8.py --task {args.task} --metric "
                      f"{args.metric} --minutes {args.minutes:g}",
           "machine": f"{platform.machine()}, {os.cpu_count()} cores",
           "date": time.strftime("%Y-%m-%d %H:%M")}
    (root / f"ablation-{args.task}.json").write_text(json.dumps(out, indent=2) + "\n")
    lines = [f"Table 8 in miniature: {args.task}/{args.metric}, {args.minutes:g} min per "
             f"variant, {out['workers']} workers, seed {args.seed} ({out['date']}, "
             f"{out['machine']}).", "",
             "| variant | explored | explored / hour | speed-up | paper speed-up | trainings "
             "| rejected | duplicates | invalid |", "|---|---|---|---|---|---|---|---|---|"]
    for r in table:
        lines.append(f"| {r['label']} | {r['explored']} | {r['explored_per_hour']:.0f} | "
                     f"{r['speedup']:.0f}x | ~{r['paper_speedup']}x | {r['trainings']} | "
                     f"{r['rejected']} | {r['duplicates']} | {r['invalid']} |")
    (root / f"ablation-{args.task}.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
