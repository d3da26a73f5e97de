"""Search a loss for a task/metric, then re-train the best ones against baselines.

Both stages resume: the search from its study file, the comparison from its JSON-lines
results file. Writes ``<out>.md`` (tables, formulas, commands) and ``<out>.json``.

    python benchmarks/search_and_compare.py --task classification --metric accuracy \
        --budget 100 --seeds 3 --top 2 --baseline ce --baseline focal \
        --out results/classification-accuracy
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from provenance import provenance

import autoloss_zero as az
from autoloss_zero.compare import compare
from autoloss_zero.progress import SearchProgress
from autoloss_zero.search.config import SearchConfig


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", required=True)
    ap.add_argument("--metric", required=True)
    ap.add_argument("--budget", type=int, required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--top", type=int, default=2, help="searched losses to re-train")
    ap.add_argument("--baseline", action="append", default=[])
    ap.add_argument("--variant", action="append", default=[],
                    help="also compare on these transfer variants")
    ap.add_argument("--variant-baseline", action="append", default=None,
                    help="baselines re-trained on the transfer variants (default: every "
                    "--baseline)")
    ap.add_argument("--config", default=None, help="TOML search config")
    ap.add_argument("--confirm-top", type=int, default=0,
                    help="after the search, confirm this many losses of the ranking "
                    "(full schedule, validation split; `autoloss-zero confirm`), 0: none")
    ap.add_argument("--confirm-seeds", type=int, default=3,
                    help="full-schedule trainings per confirmed loss (rung ones count)")
    ap.add_argument("--confirm-max-seeds", type=int, default=0,
                    help="racing: more trainings, up to this many, for the losses within a "
                    "standard error of the leader (0: off)")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--out", required=True)
    ap.add_argument("--runs", default=None, help="JSON-lines file of finished re-trainings, "
                    "shared between scripts (baselines are trained once); default: per --out")
    args = ap.parse_args()
    out = Path(args.out)
    out.parent.mkdir(parents=True, exist_ok=True)
    study = out.with_suffix(".db")
    cfg = SearchConfig.from_toml(args.config) if args.config else SearchConfig()
    cfg.seed = args.seed
    t0 = time.time()
    with SearchProgress() as progress:
        reader = az.search(args.task, args.metric, args.budget, study, cfg,
                           workers=args.workers, progress=progress)
    if args.confirm_top:
        reader.close()
        reader = az.confirm(study, args.confirm_top, args.confirm_seeds,
                            max_seeds=args.confirm_max_seeds, workers=args.workers,
                            progress=lambda done, total: print(
                                f"[{done}/{total}] confirmation trainings", flush=True))
    with reader:
        board = reader.leaderboard(max(args.top, 10))
        counts = reader.counts()
        stats = reader.meta().get("stats", {})
        started = reader.started()
        spent, ranking = reader.spent(), reader.ranking()
    search_s = time.time() - t0
    searched = [f"study:{study}#{k}" for k in range(1, min(args.top, len(board)) + 1)]
    on_variants = args.baseline if args.variant_baseline is None else args.variant_baseline
    tables = {}
    for variant in [None, *args.variant]:
        name = variant or "default"
        losses = [*(on_variants if variant else args.baseline), *searched]
        runs = Path(args.runs) if args.runs else out.with_name(out.name + ".runs.jsonl")
        res = compare(args.task, losses, args.seeds, variant, "full", args.workers,
                      results=runs)
        tables[name] = res.to_dict()
    task = az.get_task(args.task)
    report = {
        **provenance(),
        "task": args.task, "metric": args.metric, "budget": args.budget,
        "evaluations": started, "counts": counts, "search_stats": stats,
        "confirm": {"top": args.confirm_top, "seeds": args.confirm_seeds,
                    "max_seeds": args.confirm_max_seeds}
        if args.confirm_top else None,
        "search_wall_s_this_call": search_s,
        "spent": spent, "ranking": ranking,
        "leaderboard": [{"rank": i, "id": c.id, "formula": c.formula, "proxy_score": c.score,
                         "proxy_trainings": c.evaluations or 1, "confirmed": c.confirmed,
                         "confirmed_seeds": c.confirmed_seeds}
                        for i, c in enumerate(board, 1)],
        "compare": tables,
    }
    out.with_suffix(".json").write_text(json.dumps(report, indent=2) + "\n")
    out.with_suffix(".md").write_text(render(report, task))
    print(out.with_suffix(".md").read_text())


def _cell(stats, bold=False):
    if stats["mean"] is None:
        return "-"
    text = f"{stats['mean']:.4f} ± {stats['std']:.4f}"
    return f"**{text}**" if bold else text


def render(rep: dict, task) -> str:
    lines = [f"# {rep['task']} / {rep['metric']}: searched losses vs baselines", "",
             f"Command: `{rep['command']}`  ", f"Machine: {rep['machine']}; date {rep['date']}.",
             "", f"Search: {rep['evaluations']} proxy trainings, {rep.get('spent', '?')} "
             f"proxy-training equivalents spent (budget {rep['budget']}); "
             f"{rep['counts']['rejected']} candidates rejected by screening, "
             f"{rep['counts']['duplicate']} duplicates, {rep['counts']['invalid']} invalid, "
             f"{rep['counts']['failed']} failed.", "",
             *([f"Confirmed after the search: the top {rep['confirm']['top']} of the "
                f"ranking, each with {rep['confirm']['seeds']} full-schedule trainings "
                "(validation split), repeated until the ranking's top had them all"
                + (f"; racing up to {rep['confirm']['max_seeds']} trainings for the losses "
                   "within a standard error of the leader"
                   if rep["confirm"].get("max_seeds") else "") + ".", ""]
               if rep.get("confirm") else []),
             f"Top of the leaderboard (ranking: {rep.get('ranking', 'proxy')}; proxy score "
             "with its number of proxy trainings):",
             "", "| rank | proxy " + rep["metric"] + " | confirmed (full, val) | formula |",
             "|---|---|---|---|"]
    for row in rep["leaderboard"][:5]:
        conf = row.get("confirmed")
        conf = "-" if conf is None else f"{conf:.4f} ({row['confirmed_seeds']} seeds)"
        lines.append(f"| {row['rank']} | {row['proxy_score']:.4f} "
                     f"({row.get('proxy_trainings', 1)}) | {conf} | `{row['formula']}` |")
    for variant, table in rep["compare"].items():
        metrics = table["metrics"]
        lines += ["", f"## Re-training ({variant}, full schedule, {table['seeds']} seeds, "
                  "test split, mean ± std; target metric in bold)", "",
                  "| loss | " + " | ".join(metrics) + " |",
                  "|---|" + "---|" * len(metrics)]
        for row in table["losses"]:
            cells = [_cell(row["metrics"][m], m == rep["metric"]) for m in metrics]
            name = row["loss"]
            if name.startswith("study:"):
                name = f"searched #{name.rsplit('#', 1)[1]}: {row['formula']}"
            lines.append(f"| `{name}` | " + " | ".join(cells) + " |")
            for f in row["failed"]:
                lines.append(f"|  ↳ {f} |" + " |" * len(metrics))
    lines.append("")
    return "\n".join(lines)


if __name__ == "__main__":
    main()
