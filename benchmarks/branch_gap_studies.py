"""Per-branch screening's blind spot: the trained members of finished multi-branch searches
screened again, branch by branch, with the rule their search ran with and with today's.

For each study, every proxy-trained member is screened per branch by a screener with the
study's own master seed (so the same screening samples as its search) twice: with the
study's stored settings (before 2026-12-04: a branch is tested from the network's outputs
only, and a gap below 1e-6 to the perfect metric gives no verdict) and with today's
defaults (``screening.branch_min_gap``: a start moved by noise where the network's gap is
small; ``screening.branch_hold``: minimized from perfect outputs, a branch may lose at most
that much of the metric). The report counts, per study, the branches left untested, the
members each rule accepts, and how many of them trained (proxy score >= ``--signal``).
Screening only: nothing is trained.

    python benchmarks/branch_gap_studies.py results/detection-search/*.db \\
        --out results/branch-gap-studies
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import torch
from provenance import provenance

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.search.study import StudyReader


def verdicts(screener: Screener, task, formula: str) -> dict:
    loss = task.as_task_loss(formula)
    out = {}
    for name in loss.names:
        res = screener.screen_branch(loss, name)
        out[name] = {"accepted": res.accepted, "g": res.g, "reason": res.reason}
    return out


def study_rows(path: Path, signal: float) -> dict:
    with StudyReader(path) as reader:
        meta = reader.meta()
        members = [(c.id, c.formula, c.score)
                   for c in reader.candidates("WHERE status = 'evaluated'")
                   if c.score is not None]
    stored = SearchConfig.from_stored(meta["config"])
    today = SearchConfig.from_dict({"seed": stored.seed})
    task = az.get_task(meta["task"], **(meta.get("task_config") or {}))
    metric = meta["metric"]
    old = Screener.from_config(task, metric, stored)
    new = Screener.from_config(task, metric, today)
    rows = []
    for cid, formula, score in members:
        rows.append({"id": cid, "formula": formula, "score": score,
                     "stored": verdicts(old, task, formula),
                     "today": verdicts(new, task, formula)})
    return {"study": str(path), "task": meta["task"], "metric": metric, "seed": stored.seed,
            "stored_rule": {k: getattr(stored.screening, k)
                            for k in ("branch_eta", "branch_min_gap", "branch_hold")},
            "summary": summarize(rows, signal), "rows": rows}


def summarize(rows: list[dict], signal: float) -> dict:
    def accepted(r, rule):
        return all(v["accepted"] for v in r[rule].values())

    out = {"members": len(rows), "trained": sum(r["score"] >= signal for r in rows)}
    names = list(rows[0]["stored"]) if rows else []
    out["untested_branches"] = {n: sum(r["stored"][n]["g"] is None for r in rows) for n in names}
    for rule in ("stored", "today"):
        acc = [r for r in rows if accepted(r, rule)]
        rej = [r for r in rows if not accepted(r, rule)]
        out[rule] = {"accepted": len(acc), "accepted_trained": sum(r["score"] >= signal
                                                                   for r in acc),
                     "rejected": len(rej), "rejected_trained": sum(r["score"] >= signal
                                                                   for r in rej),
                     "best_rejected": max((r["score"] for r in rej), default=None)}
    return out


def markdown(report: dict) -> str:
    lines = [
        "# Per-branch screening's blind spot: trained members screened again",
        "",
        f"Command: `{report['command']}`  ",
        f"Machine: {report['machine']}; date {report['date']}.",
        "",
        "Every proxy-trained member of each study, screened per branch with the study's own "
        "seed (its search's screening samples), by the rule the search ran with (`stored`) "
        "and by today's defaults (`today`: branch_min_gap "
        f"{report['today']['branch_min_gap']}, branch_hold {report['today']['branch_hold']}). "
        f"Trained: proxy score >= {report['signal']}. Untested: branches the stored rule gave "
        "no verdict (gap to the perfect metric below 1e-6).",
        "",
        "| study | seed | members | trained | untested branches (stored) | stored: accepted "
        "(trained) | today: accepted (trained) | today: rejected (trained; best score) |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for s in report["studies"]:
        m = s["summary"]
        untested = ", ".join(f"{k} {v}" for k, v in m["untested_branches"].items() if v) or "none"
        best = m["today"]["best_rejected"]
        lines.append(
            f"| `{s['study']}` | {s['seed']} | {m['members']} | {m['trained']} | {untested} | "
            f"{m['stored']['accepted']} ({m['stored']['accepted_trained']}) | "
            f"{m['today']['accepted']} ({m['today']['accepted_trained']}) | "
            f"{m['today']['rejected']} ({m['today']['rejected_trained']}; "
            f"{'-' if best is None else f'{best:.3f}'}) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--signal", type=float, default=0.01,
                    help="a proxy score at or above this counts as a member that trained")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    torch.set_num_threads(1)
    defaults = SearchConfig().screening
    report = {**provenance(), "signal": args.signal,
              "today": {"branch_eta": defaults.branch_eta,
                        "branch_min_gap": defaults.branch_min_gap,
                        "branch_hold": defaults.branch_hold},
              "studies": []}
    for path in args.studies:
        report["studies"].append(study_rows(path, args.signal))
        print(path, json.dumps(report["studies"][-1]["summary"]), flush=True)
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.with_suffix(".json").write_text(json.dumps(report, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(report))


if __name__ == "__main__":
    main()
