"""Collect the re-trained results of every search into ``results/summary.json`` and print
the README's results table from the same data.

Reads each ``results/*.json`` written by ``search_and_compare.py`` (a search, then the
rank-1 loss and the baselines re-trained with the full schedule on the test split) and
keeps, per file: the task, the metric, the searched formula, the search's evaluations,
and mean / std / seeds of the target metric for the searched loss and each baseline.
Files made before the search-correctness fixes (2026-12-01, issue 16) are marked.

    python benchmarks/summary.py            # writes results/summary.json, prints Markdown
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

FIXED = "2026-12-01"
"""Results dated before this were made before the search-correctness fixes."""


def _stats(row: dict, metric: str) -> dict:
    st = row["metrics"][metric]
    return {"mean": st["mean"], "std": st["std"], "seeds": len(st["values"])}


def entry(path: Path) -> dict | None:
    data = json.loads(path.read_text())
    if "compare" not in data or "leaderboard" not in data:
        return None
    metric = data["metric"]
    table = data["compare"].get("default") or next(iter(data["compare"].values()))
    searched, baselines = None, {}
    for row in table["losses"]:
        label = row["loss"]
        if label.startswith(("study:", "searched")):  # searched losses; rank 1 is reported
            if label.endswith("#1") or searched is None:
                searched = row
        elif row["metrics"][metric]["mean"] is not None:
            baselines[label] = _stats(row, metric)
    if searched is None:
        return None
    return {
        "file": str(path), "task": data["task"], "metric": metric,
        "formula": searched.get("formula") or data["leaderboard"][0]["formula"],
        "evaluations": data.get("evaluations"), "date": data.get("date"),
        # issue 16's "before" re-runs were made on 2026-12-01 with the code of dbce6d6
        "before_search_fixes": (data.get("date") or "") < FIXED or path.stem.endswith("-before"),
        "searched": _stats(searched, metric), "baselines": baselines,
    }


def markdown(entries: list[dict]) -> str:
    lines = ["| task / metric | search | searched loss (rank 1) | re-trained, full schedule "
             "(test) | baselines |", "|---|---|---|---|---|"]
    for e in entries:
        s = e["searched"]
        base = ", ".join(f"{k} {v['mean']:.3f} ± {v['std']:.3f}"
                         for k, v in e["baselines"].items())
        note = " (made before the search fixes)" if e["before_search_fixes"] else ""
        lines.append(f"| {e['task']} / {e['metric']} | {e['evaluations']} evaluations{note} | "
                     f"`{e['formula']}` | {s['mean']:.3f} ± {s['std']:.3f} ({s['seeds']} "
                     f"seeds) | {base} ([file]({e['file'].replace('.json', '.md')})) |")
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default="results")
    ap.add_argument("--out", default="results/summary.json")
    args = ap.parse_args()
    entries = []
    for path in sorted(Path(args.results).rglob("*.json")):
        if path.name == Path(args.out).name:
            continue
        try:
            e = entry(path)
        except (json.JSONDecodeError, KeyError, TypeError, StopIteration):
            continue
        if e is not None:
            entries.append(e)
    Path(args.out).write_text(json.dumps({"entries": entries}, indent=1) + "\n")
    print(markdown(entries))


if __name__ == "__main__":
    main()
