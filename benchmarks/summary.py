"""Collect the re-trained results of every search into ``results/summary.json`` and print
the README's results table from the same data.

Reads each ``results/*.json`` written by ``search_and_compare.py`` (a search, then the
rank-1 loss and the baselines re-trained with the full schedule on the test split), and
the files comparing search settings (``side_by_side.py``, ``exploration.py``: one entry
per re-trained search, with its ``setting``), and the ``autoloss-zero compare --json`` files
of labelled confirmations (a searched ``study:FILE#K`` loss re-trained beside baselines: the
metric is the one its study searched, read from the study file), and
keeps, per file: the task, the metric, the searched formula, the search's evaluations,
and mean / std / seeds of the target metric for the searched loss and each baseline.
Files made before the search-correctness fixes (2026-12-01, issue 16) are marked.

    python benchmarks/summary.py            # writes results/summary.json, prints Markdown
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from autoloss_zero.errors import StudyError
from autoloss_zero.search.study import StudyReader

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


def setting_entries(path: Path) -> list[dict]:
    """Entries of a results file that compares search settings (``side_by_side.py``,
    ``exploration.py``): one per search whose rank-1 loss was re-trained."""
    data = json.loads(path.read_text())
    if "searches" not in data or "baselines" not in data:
        return []
    out = []
    for r in data["searches"]:
        rt = r.get("retrained")
        if not rt:
            continue
        name = r.get("name") or f"{r.get('variant')} seed {r.get('seed')}"
        out.append({
            "file": str(path), "task": data["task"], "metric": data["metric"],
            "setting": name, "formula": r.get("formula") or r.get("rank1"),
            "evaluations": r.get("trainings") or r.get("evaluations"), "date": data.get("date"),
            "before_search_fixes": (data.get("date") or "") < FIXED,
            "searched": {"mean": rt["mean"], "std": rt["std"], "seeds": len(rt["values"])},
            "baselines": {b: {"mean": v["mean"], "std": v["std"], "seeds": len(v["values"])}
                          for b, v in data["baselines"].items()},
        })
    return out


def compare_entries(path: Path) -> list[dict]:
    """Entries of an ``autoloss-zero compare --json`` file: one per searched ``study:`` loss,
    reported on the metric its study searched, with the study's spent equivalents."""
    data = json.loads(path.read_text())
    if "losses" not in data or "metrics" not in data or "leaderboard" in data:
        return []
    out = []
    for row in data["losses"]:
        if not row["loss"].startswith("study:"):
            continue
        study = Path(row["loss"][len("study:"):].rsplit("#", 1)[0])
        if not study.exists():
            continue
        with StudyReader(study) as reader:
            metric, spent = reader.meta()["metric"], reader.spent()
        if row["metrics"].get(metric, {}).get("mean") is None:
            continue
        out.append({
            "file": str(path), "task": data["task"], "metric": metric,
            "setting": f"labelled: {row['loss']} confirmed, re-trained",
            "formula": row.get("formula"), "evaluations": round(spent),
            "date": data.get("date"), "before_search_fixes": False,
            "link": str(path.parent / "README.md"), "searched": _stats(row, metric),
            "baselines": {r["loss"]: _stats(r, metric) for r in data["losses"]
                          if not r["loss"].startswith("study:")
                          and r["metrics"].get(metric, {}).get("mean") is not None},
        })
    return out


def markdown(entries: list[dict]) -> str:
    lines = ["| task / metric | search | searched loss (rank 1) | re-trained, full schedule "
             "(test) | baselines |", "|---|---|---|---|---|"]
    for e in entries:
        s = e["searched"]
        base = ", ".join(f"{k} {v['mean']:.3f} ± {v['std']:.3f}"
                         for k, v in e["baselines"].items())
        note = " (made before the search fixes)" if e["before_search_fixes"] else ""
        if e.get("setting"):
            note += f", {e['setting']}"
        link = e.get("link") or e["file"].replace(".json", ".md")
        lines.append(f"| {e['task']} / {e['metric']} | {e['evaluations']} evaluations{note} | "
                     f"`{e['formula']}` | {s['mean']:.3f} ± {s['std']:.3f} ({s['seeds']} "
                     f"seeds) | {base} ([file]({link})) |")
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
            entries += [e] if e is not None else (setting_entries(path)
                                                  or compare_entries(path))
        except (json.JSONDecodeError, KeyError, TypeError, StopIteration, StudyError):
            continue
    Path(args.out).write_text(json.dumps({"entries": entries}, indent=1) + "\n")
    print(markdown(entries))


if __name__ == "__main__":
    main()
