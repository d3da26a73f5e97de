"""Does the proxy training rank losses the way the full schedule does?

Trains every given loss with the task's proxy schedule (optionally with other
``proxy_steps``) and its full schedule over seeds, and reports, per metric, the mean of
each and the rank agreement between them (Kendall's tau and Spearman's rho over the
losses' means). A search can only be as good as this agreement: it picks the loss that
wins the proxy.

    python benchmarks/proxy_fidelity.py --task segmentation --seeds 3 \
        --loss ce --loss lovasz --loss study:results/segmentation-miou.db#1 \
        --runs results/segmentation.runs.jsonl --out results/segmentation-proxy-fidelity

Runs are shared through the JSON-lines ``--runs`` file (full-schedule runs made by
``search_and_compare.py`` are reused, nothing is trained twice); re-running resumes.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from provenance import provenance
from scipy.stats import kendalltau, spearmanr

from autoloss_zero.compare import compare


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--task", required=True)
    ap.add_argument("--loss", action="append", required=True)
    ap.add_argument("--seeds", type=int, default=3)
    ap.add_argument("--proxy-steps", type=int, action="append", default=[],
                    help="also proxies with this many steps (default: the task's)")
    ap.add_argument("--workers", type=int, default=None)
    ap.add_argument("--runs", required=True)
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    schedules = [("proxy (task default)", "proxy", None)]
    schedules += [(f"proxy, {n} steps", "proxy", {"proxy_steps": n}) for n in args.proxy_steps]
    schedules += [("full", "full", None)]
    tables = {}
    for label, schedule, options in schedules:
        res = compare(args.task, args.loss, args.seeds, None, schedule, args.workers,
                      results=args.runs, task_options=options)
        tables[label] = res.to_dict()
    metrics = tables["full"]["metrics"]
    full = {row["loss"]: row["metrics"] for row in tables["full"]["losses"]}
    agreement = {}
    for label, table in tables.items():
        if label == "full":
            continue
        agreement[label] = {}
        for m in metrics:
            pairs = [(row["metrics"][m]["mean"], full[row["loss"]][m]["mean"])
                     for row in table["losses"]
                     if row["metrics"][m]["mean"] is not None
                     and full[row["loss"]][m]["mean"] is not None]
            if len(pairs) < 3:
                continue
            xs, ys = zip(*pairs)
            agreement[label][m] = {"kendall_tau": float(kendalltau(xs, ys).statistic),
                                   "spearman_rho": float(spearmanr(xs, ys).statistic),
                                   "losses": len(pairs)}
    report = {**provenance(), "task": args.task, "tables": tables, "agreement": agreement}
    out = Path(args.out)
    text = markdown(report, metrics)
    out.with_suffix(".json").write_text(json.dumps(report, indent=1))
    out.with_suffix(".md").write_text(text)
    print(text)


def markdown(report: dict, metrics: list[str]) -> str:
    lines = [f"# {report['task']}: proxy vs full schedule", "",
             f"Command: `{report['command']}`  ",
             f"Machine: {report['machine']}; date {report['date']}.", "",
             "Mean over seeds (proxy: validation split; full: test split).", ""]
    labels = list(report["tables"])
    for m in metrics:
        lines += [f"## {m}", "", "| loss | " + " | ".join(labels) + " |",
                  "|---|" + "---|" * len(labels)]
        rows = {}
        for label in labels:
            for row in report["tables"][label]["losses"]:
                mean = row["metrics"][m]["mean"]
                rows.setdefault(row["loss"], []).append("-" if mean is None else f"{mean:.4f}")
        for loss, cells in rows.items():
            lines.append(f"| `{loss}` | " + " | ".join(cells) + " |")
        lines.append("")
        for label, agr in report["agreement"].items():
            if m in agr:
                a = agr[m]
                lines.append(f"Rank agreement of {label} with full ({a['losses']} losses): "
                             f"Kendall tau {a['kendall_tau']:.2f}, "
                             f"Spearman rho {a['spearman_rho']:.2f}.  ")
        lines.append("")
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
