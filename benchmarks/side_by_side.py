"""Several search settings side by side at equal compute, each rank-1 loss re-trained.

Each ``--search NAME=CONFIG.toml:BUDGET`` runs one search (resumable from its study) with
that config and budget (proxy-training equivalents of that config's proxy); the compute
of each (image-steps: training steps x batch size, proxy trainings, promotions and
confirmations together) is reported so that "equal compute" can be checked. The rank-1
loss of each (by the study's ranking: confirmed first) is then re-trained with the full
schedule over ``--seeds`` seeds on the test split beside the baselines.

    python benchmarks/side_by_side.py --task segmentation --metric miou \
        --search "today=benchmarks/configs/today.toml:107" \
        --search "calibrated=benchmarks/configs/seg-proxy.toml:64" \
        --baseline ce --seeds 3 --workers 2 --out results/segmentation-miou-side-by-side
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.progress import SearchProgress
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.study import StudyReader


def image_steps(reader: StudyReader, task) -> float:
    """The training compute a study spent: steps x batch size of every training."""
    proxy = task.schedule_cost("proxy")
    total = sum(proxy for c in reader.candidates()
                if c.status in ("evaluated", "invalid", "failed", "running"))
    for e in reader.evaluations():
        total += task.schedule_cost(e.schedule)
    return total


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", required=True)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--search", action="append", required=True,
                    help="NAME=CONFIG.toml:BUDGET (CONFIG may be empty: the defaults)")
    ap.add_argument("--baseline", action="append", default=[])
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=2)
    ap.add_argument("--runs", default=None)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    rows = []
    for item in args.search:
        name, _, rest = item.partition("=")
        config_path, _, budget = rest.rpartition(":")
        cfg = SearchConfig.from_toml(config_path) if config_path else SearchConfig()
        cfg.seed = args.seed
        study = out / f"{name}.db"
        with SearchProgress() as progress:
            reader = az.search(args.task, args.metric, int(budget), study, cfg,
                               workers=args.workers, progress=progress)
        task = az.get_task(args.task, **cfg.task_options)
        with reader:
            best = reader.leaderboard(1)[0]
            rows.append({
                "name": name, "config": config_path, "budget": int(budget),
                "study": str(study), "formula": best.formula, "proxy_score": best.score,
                "proxy_trainings": best.evaluations, "confirmed": best.confirmed,
                "confirmed_seeds": best.confirmed_seeds, "ranking": reader.ranking(),
                "trainings": reader.started() + len(reader.evaluations()),
                "image_steps": image_steps(reader, task),
                "wall_s": (reader.meta().get("stats") or {}).get("wall_s"),
            })
    losses = [*args.baseline, *[f"study:{r['study']}#1" for r in rows]]
    runs = args.runs or str(out / "runs.jsonl")
    res = compare(args.task, losses, args.seeds, None, "full", args.workers, results=runs)
    table = {r["loss"]: r["metrics"][args.metric] for r in res.summary()}
    for r in rows:
        st = table[f"study:{r['study']}#1"]
        r["retrained"] = {"mean": st["mean"], "std": st["std"], "values": st["values"]}
    report = {**provenance(), "task": args.task, "metric": args.metric, "searches": rows,
              "baselines": {b: {"mean": table[b]["mean"], "std": table[b]["std"],
                                "values": table[b]["values"]} for b in args.baseline}}
    Path(f"{out}.json").write_text(json.dumps(report, indent=1) + "\n")
    Path(f"{out}.md").write_text(render(report))
    print(render(report))


def render(rep: dict) -> str:
    m = rep["metric"]
    lines = [f"# {rep['task']} / {m}: search settings side by side", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}; date {rep['date']}.",
             "", "Rank-1 loss of each search (its study's ranking: confirmed losses first), "
             "re-trained with the full schedule on the test split.", "",
             f"| search | budget | trainings | compute (M image-steps) | rank-1 loss | proxy {m} "
             f"| confirmed (val) | re-trained {m} (test) |", "|---|---|---|---|---|---|---|---|"]
    for r in rep["searches"]:
        conf = "-" if r["confirmed"] is None else f"{r['confirmed']:.4f}"
        rt = r["retrained"]
        lines.append(f"| {r['name']} | {r['budget']} | {r['trainings']} | "
                     f"{r['image_steps'] / 1e6:.2f} | `{r['formula']}` | "
                     f"{r['proxy_score']:.4f} | {conf} | {rt['mean']:.4f} ± {rt['std']:.4f} |")
    for b, st in rep["baselines"].items():
        lines.append(f"| {b} (handcrafted) | | | | `{b}` | | | "
                     f"{st['mean']:.4f} ± {st['std']:.4f} |")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
