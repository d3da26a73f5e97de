"""Screening optimizer settings: verdict agreement and cost against 20 Adam steps at lr 0.1.

Candidates come from the search's own stream; every candidate is screened with each
setting; over the candidates that reach the optimization, the share of verdicts that
agree with the reference and the mean cost per candidate are reported.

    python benchmarks/screening_settings.py --task segmentation --metric miou --seconds 240
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from autoloss_zero.bench import candidate_stream
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.torch_settings import configure_torch
from autoloss_zero.tasks import get_task

SETTINGS = [(20, 0.1), (10, 0.2), (10, 0.1), (5, 0.4)]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", required=True)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--seconds", type=float, default=120)
    args = ap.parse_args()
    configure_torch(1)
    task = get_task(args.task)
    screeners = {s: Screener.from_config(task, args.metric, SearchConfig.from_dict(
                     {"screening": {"steps": s[0], "lr": s[1]}})) for s in SETTINGS}
    stream = candidate_stream(task, SearchConfig(), seed=3)
    loss = next(stream)
    n = 0
    agree = dict.fromkeys(SETTINGS, 0)
    accepted = dict.fromkeys(SETTINGS, 0)
    cost = dict.fromkeys(SETTINGS, 0.0)
    end = time.time() + args.seconds
    while time.time() < end:
        res = {}
        for s, scr in screeners.items():
            t0 = time.perf_counter()
            res[s] = scr.screen(loss)
            cost[s] += time.perf_counter() - t0
        ref = res[SETTINGS[0]]
        if ref.g is not None:
            n += 1
            for s in SETTINGS:
                ok = res[s].accepted
                agree[s] += ok == ref.accepted
                accepted[s] += ok
        loss = stream.send(ref.accepted)
    rows = [{"steps": s[0], "lr": s[1], "agreement": agree[s] / n, "accepted": accepted[s],
             "ms_per_candidate": 1000 * cost[s] / n} for s in SETTINGS]
    out = {"task": args.task, "metric": args.metric, "optimized_candidates": n, "rows": rows,
           "date": time.strftime("%Y-%m-%d %H:%M"),
           "command": f"python benchmarks/screening_settings.py --task {args.task} "
                      f"--metric {args.metric} --seconds {args.seconds:g}"}
    root = Path(__file__).parent / "results"
    root.mkdir(exist_ok=True)
    (root / f"screening-settings-{args.task}-{args.metric}.json").write_text(
        json.dumps(out, indent=2) + "\n")
    print(json.dumps(out, indent=2))


if __name__ == "__main__":
    main()
