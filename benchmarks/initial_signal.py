"""How often does a random initial member train at all, and how large must K be?

Regularized evolution starts from K random losses (the paper's K = 20). On the
multi-branch tasks most random losses that pass screening score ~0 at the proxy, and a
search whose initial members all score ~0 has no signal to select on: the detection
search with seed 1 found its first loss with a signal only at evaluation 88 and lost to
CE+L1, seed 0 had 4 of 20 initial members with a signal and beat it. This reads finished
studies and reports, per study, the initial members' proxy scores (how many reach
``--signal``), the evaluation at which the first candidate reached it, and the best
score; per task, the pooled fraction p of initial members with a signal (Wilson 95%
interval) and the chance that K = 20 random members hold none, (1 - p)^20, with the K
that makes at least one likely (90%, 95%). Nothing is trained. Example:

    python benchmarks/initial_signal.py results/detection-search/*.db \\
        results/instance-search/*.db --signal 0.01 --out results/initial-signal
"""

from __future__ import annotations

import argparse
import json
import math
from pathlib import Path

from provenance import provenance

from autoloss_zero.search.study import StudyReader


def study_row(path: Path, signal: float) -> dict:
    with StudyReader(path) as reader:
        cfg = reader.meta()["config"]
        rows = [c for c in reader.candidates("WHERE status = 'evaluated'")
                if c.score is not None]
        task = reader.meta().get("task")
    initial = [c for c in rows if c.parent is None]
    first = next((n for n, c in enumerate(rows, 1) if c.score >= signal), None)
    return {
        "study": str(path), "task": task, "seed": cfg.get("seed"),
        "K": (cfg.get("population") or {}).get("initial"),
        "task_options": cfg.get("task_options") or {},
        "initial_trained": len(initial),
        "initial_with_signal": sum(c.score >= signal for c in initial),
        "initial_best": max((c.score for c in initial), default=None),
        "first_signal_at": first, "trainings": len(rows),
        "with_signal": sum(c.score >= signal for c in rows),
        "best": max((c.score for c in rows), default=None),
    }


def wilson(k: int, n: int, z: float = 1.96) -> tuple[float, float]:
    if n == 0:
        return 0.0, 1.0
    p = k / n
    mid = (p + z * z / (2 * n)) / (1 + z * z / n)
    half = z * math.sqrt(p * (1 - p) / n + z * z / (4 * n * n)) / (1 + z * z / n)
    return max(0.0, mid - half), min(1.0, mid + half)


def k_needed(p: float, chance: float) -> int | None:
    """Smallest K with P(at least one of K members has a signal) >= chance."""
    if p <= 0:
        return None
    if p >= 1:
        return 1
    return math.ceil(math.log(1 - chance) / math.log(1 - p))


def pooled(rows: list[dict]) -> dict:
    k = sum(r["initial_with_signal"] for r in rows)
    n = sum(r["initial_trained"] for r in rows)
    p = k / n if n else 0.0
    lo, hi = wilson(k, n)
    return {"with_signal": k, "trained": n, "p": p, "p_95": [lo, hi],
            "none_in_20": (1 - p) ** 20, "K_for_90": k_needed(p, 0.9),
            "K_for_95": k_needed(p, 0.95)}


def fmt(x: float | None, digits: int = 4) -> str:
    return "-" if x is None else f"{x:.{digits}f}"


def markdown(data: dict) -> str:
    out = [f"# Initial members with a signal (proxy score >= {data['signal']})", "",
           f"Command: `{data['command']}`  ", f"Machine: {data['machine']}; date "
           f"{data['date']}.", "",
           "| study | task | seed | K | initial trained | with signal | best initial | "
           "first signal: evaluated candidate no. | trainings with signal | best |",
           "|---|---|---|---|---|---|---|---|---|---|"]
    for r in data["studies"]:
        out.append(f"| `{r['study']}` | {r['task']} | {r['seed']} | {r['K']} | "
                   f"{r['initial_trained']} | {r['initial_with_signal']} | "
                   f"{fmt(r['initial_best'])} | {r['first_signal_at'] or '-'} | "
                   f"{r['with_signal']} of {r['trainings']} | {fmt(r['best'])} |")
    out += ["", "Pooled per task (initial members are independent random losses that "
            "passed screening):", "",
            "| task, proxy | with signal / trained | p (Wilson 95%) | P(none of K = 20) | "
            "K for a 90% chance of one | K for 95% |", "|---|---|---|---|---|---|"]
    for task, s in data["pooled"].items():
        out.append(f"| {task} | {s['with_signal']} / {s['trained']} | {s['p']:.3f} "
                   f"({s['p_95'][0]:.3f}-{s['p_95'][1]:.3f}) | {s['none_in_20']:.2f} | "
                   f"{s['K_for_90'] or '-'} | {s['K_for_95'] or '-'} |")
    return "\n".join(out) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--signal", type=float, default=0.01,
                    help="a proxy score at or above this counts as a signal")
    ap.add_argument("--out", type=Path, required=True, help="writes OUT.json and OUT.md")
    args = ap.parse_args()
    rows = [study_row(p, args.signal) for p in args.studies]
    tasks: dict[str, list[dict]] = {}  # pooled per task and proxy
    for r in rows:
        steps = r["task_options"].get("proxy_steps")
        key = r["task"] + ("" if steps is None else f", {steps}-step proxy")
        tasks.setdefault(key, []).append(r)
    data = {**provenance(), "signal": args.signal, "studies": rows,
            "pooled": {t: pooled(rs) for t, rs in tasks.items()}}
    args.out.with_suffix(".json").write_text(json.dumps(data, indent=1) + "\n")
    args.out.with_suffix(".md").write_text(markdown(data))
    print(markdown(data))


if __name__ == "__main__":
    main()
