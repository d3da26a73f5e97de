"""Is a searched loss's lead robust to tuning the baseline? Re-train the baseline and the
searched loss over a grid of learning rates and schedules (full schedule, seeds, test
split) and report the best setting of each side by side.

    python benchmarks/baseline_tuning.py --task classification --loss ce \
        --loss 'study:results/classification-accuracy.db#1' --lr 0.001 --lr 0.002 \
        --lr 0.004 --lr 0.008 --lr 0.016 --schedule constant --schedule cosine \
        --runs results/classification-tuning.runs.jsonl --out results/classification-tuning

``--metric`` picks the metric reported (default: the task's first), e.g. ``--metric bf1``
for segmentation.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance

from autoloss_zero.compare import compare
from autoloss_zero.errors import TaskError
from autoloss_zero.tasks import get_task


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", required=True)
    ap.add_argument("--loss", action="append", required=True)
    ap.add_argument("--lr", type=float, action="append", required=True)
    ap.add_argument("--schedule", action="append", default=[])
    ap.add_argument("--metric", default=None,
                    help="the metric to report (default: the task's first, e.g. miou)")
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--runs", required=True, help="JSON-lines file of finished runs (resume)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    try:  # an unknown task or metric: one line before any training
        task = get_task(args.task)
        if args.metric:
            task.check_metric(args.metric)
    except TaskError as exc:
        ap.error(str(exc))
    metric = args.metric or task.metrics[0]
    schedules = args.schedule or [None]
    cells = []
    for schedule in schedules:
        for lr in args.lr:
            options = {"lr": lr} | ({"lr_schedule": schedule} if schedule else {})
            res = compare(args.task, args.loss, args.seeds, None, "full", args.workers,
                          results=args.runs, task_options=options)
            for row in res.summary():
                st = row["metrics"][metric]
                cells.append({"loss": row["loss"], "formula": row["formula"], "lr": lr,
                              "schedule": schedule, "metric": metric, "mean": st["mean"],
                              "std": st["std"]})
    report = {**provenance(), "task": args.task, "seeds": args.seeds, "cells": cells}
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    settings = [(s, lr) for s in schedules for lr in args.lr]
    lines = [f"# {args.task}: baselines and searched losses over a learning-rate grid", "",
             f"Command: `{report['command']}`  ",
             f"Machine: {report['machine']}; date {report['date']}.", "",
             f"Full schedule, {args.seeds} seeds, test split, {metric} mean ± std; the best "
             "setting of each loss in bold.", "",
             "| loss | " + " | ".join(f"{s or 'default'}, lr {lr:g}" for s, lr in settings)
             + " |", "|---|" + "---|" * len(settings)]
    for loss in args.loss:
        mine = {(c["schedule"], c["lr"]): c for c in cells if c["loss"] == loss}
        best = max((c["mean"] for c in mine.values() if c["mean"] is not None), default=None)
        row = []
        for key in settings:
            c = mine[key]
            text = "-" if c["mean"] is None else f"{c['mean']:.4f} ± {c['std']:.4f}"
            row.append(f"**{text}**" if c["mean"] is not None and c["mean"] == best else text)
        name = loss
        if loss.startswith("study:"):
            name = f"searched: {mine[settings[0]]['formula']}"
        lines.append(f"| `{name}` | " + " | ".join(row) + " |")
    out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
