"""Issue 16, before and after the search-correctness fixes: one table from the studies.

For each study (made by ``benchmarks/issue16_before_after.sh`` and
``benchmarks/issue16_followup.sh``): the offspring kinds of the members that joined the
population, candidates rejected by screening, duplicates settled, the rank-1 loss and
its re-training against the baseline (from the ``.json`` beside the study), and the
fingerprint collisions measured by ``benchmarks/fingerprint_collisions.py``.

    python benchmarks/issue16_report.py results/issue16/classification-before.db \
        results/issue16/classification-after.db ... --collisions results/issue16/collisions.json \
        --out results/issue16/summary
"""

from __future__ import annotations

import argparse
import json
from collections import Counter
from pathlib import Path

from autoloss_zero.search.study import StudyReader

KINDS = ("copy", "reinit", "mutate", "recombine")


def kind_of(label: str | None) -> str:
    """The offspring kind of a mutation label (``init``, ``copy``, ``reinit``, ``a+b``...)."""
    label = (label or "").split(" with #")[0]
    if label in ("init", "copy", "reinit"):
        return label
    if label in ("crossover", "sum"):
        return "recombine"
    return "mutate"


def study_row(path: Path) -> dict:
    with StudyReader(path) as r:
        rows = r.candidates()
        counts = r.counts()
        meta = r.meta()
    joined = Counter(kind_of(c.mutation) for c in rows if c.joined is not None)
    offspring = sum(joined[k] for k in KINDS)
    out = {
        "study": str(path), "task": meta["task"], "metric": meta["metric"],
        "copy_mode": (meta["config"].get("mutation") or {}).get("copy_mode", "reuse (paper)"),
        "proxy_trainings": counts.get("evaluated", 0) + counts.get("invalid", 0)
        + counts.get("failed", 0),
        "rejected": counts.get("rejected", 0), "duplicates": counts.get("duplicate", 0),
        "joined": dict(joined),
        "joined_offspring_share": {k: round(joined[k] / offspring, 3) if offspring else None
                                   for k in KINDS},
    }
    side = path.with_suffix(".json")
    if side.exists():
        res = json.loads(side.read_text())
        out["rank1"] = res["leaderboard"][0]["formula"] if res.get("leaderboard") else None
        losses = ((res.get("compare") or {}).get("default") or {}).get("losses", [])
        metric = meta["metric"]
        out["retrained"] = {
            ("searched #1" if r["loss"].startswith("study:") else r["loss"]):
                (r["metrics"][metric]["mean"], r["metrics"][metric]["std"])
            for r in losses if r["metrics"].get(metric, {}).get("mean") is not None
        }
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--collisions", type=Path)
    ap.add_argument("--out", type=Path, required=True)
    args = ap.parse_args()
    rows = [study_row(p) for p in args.studies]
    collisions = json.loads(args.collisions.read_text()) if args.collisions and \
        args.collisions.exists() else None
    by_name = {Path(k).name: v for k, v in (collisions or {}).get("studies", {}).items()}
    for r in rows:
        c = by_name.get(Path(r["study"]).name)
        if c is not None:
            r["fingerprint_duplicates"] = (c.get("duplicates_by") or {}).get(
                "gradient fingerprint", 0)
            r["fingerprint_duplicates_trained"] = c.get("fingerprint_duplicates_trained")
            r["collisions"] = c.get("collisions")
            r["seed_noise"] = c.get("seed_noise")
    args.out.with_suffix(".json").write_text(
        json.dumps({"studies": rows, "collisions": collisions}, indent=2) + "\n")
    lines = ["# Issue 16: the search before and after its correctness fixes", "",
             "Made by `python benchmarks/issue16_report.py "
             + " ".join(str(p) for p in args.studies)
             + (f" --collisions {args.collisions}" if args.collisions else "")
             + f" --out {args.out}`.", "",
             "| study | copy | proxy trainings | rejected | duplicates (by fingerprint) | "
             "fingerprint collisions / duplicates trained | joined offspring: "
             "copy / reinit / mutate / recombine | rank-1 re-trained (full, 3 seeds, test) |",
             "|---|---|---|---|---|---|---|---|"]
    for r in rows:
        share = r["joined_offspring_share"]
        mix = " / ".join("-" if share[k] is None else f"{share[k]:.0%}" for k in KINDS)
        retrained = "; ".join(f"`{k[:60]}` {m:.4f} ± {s:.4f}"
                              for k, (m, s) in (r.get("retrained") or {}).items())
        coll = "-" if r.get("collisions") is None else \
            f"{r['collisions']} / {r['fingerprint_duplicates_trained']}"
        lines.append(f"| {Path(r['study']).stem} | {r['copy_mode']} | {r['proxy_trainings']} | "
                     f"{r['rejected']} | {r['duplicates']} ({r.get('fingerprint_duplicates', '-')})"
                     f" | {coll} | {mix} | {retrained} |")
    if collisions:
        lines += ["", "A collision: a candidate settled as a duplicate by its gradient "
                  "fingerprint and the loss whose score it took, both proxy-trained "
                  "(2 seeds), differ by more than the seed noise "
                  f"(`{collisions.get('command', '')}`)."]
    args.out.with_suffix(".md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
