"""Search overhead: the share of worker time not spent in proxy training (goal < 5%).

For each study: wall time of the search, worker slots, the summed proxy-training time,
and overhead = 1 - training / (slots x wall), i.e. worker time lost to start-up, waiting
for the driver (making and screening candidates, storing results) and scheduling; also
the driver's own busy share of the wall time.

    python benchmarks/search_overhead.py results/segmentation-miou.db ...
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

from autoloss_zero.search.study import StudyReader


def overhead(path: Path, default_slots: int | None = None) -> dict:
    with StudyReader(path) as r:
        meta, rows = r.meta(), r.candidates()
    stats = meta.get("stats", {})
    slots = stats.get("extra", {}).get("slots") or default_slots
    train = sum(c.train_s or 0 for c in rows)
    wall = stats.get("wall_s") or 0
    out = {"study": str(path), "task": meta["task"], "metric": meta["metric"],
           "evaluations": sum(1 for c in rows if c.train_s), "wall_s": wall, "slots": slots,
           "training_s": train, "screening_s": stats.get("screen_s"),
           "driver_s": stats.get("driver_s"),
           "driver_share": (stats.get("driver_s") or 0) / wall if wall else None}
    if slots and wall:
        out["overhead_share"] = 1 - train / (slots * wall)
        # screening is the method's own work (Eq. 3); on a machine with no core to spare
        # for the driver it takes worker time. What is left is the engine's overhead.
        out["overhead_share_excluding_screening"] = (
            1 - (train + (stats.get("screen_s") or 0)) / (slots * wall))
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("studies", nargs="+", type=Path)
    ap.add_argument("--slots", type=int, default=None,
                    help="worker slots for studies that did not record them")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results" / "overhead.json"))
    args = ap.parse_args()
    rows = [overhead(p, args.slots) for p in args.studies]
    Path(args.out).write_text(json.dumps({"date": time.strftime("%Y-%m-%d %H:%M"),
                                          "rows": rows}, indent=2) + "\n")
    print("| study | evaluations | slots | wall | training (sum) | screening (sum) | "
          "driver share | overhead | overhead excl. screening |")
    print("|---|---|---|---|---|---|---|---|---|")
    for r in rows:
        oh = r.get("overhead_share")
        ox = r.get("overhead_share_excluding_screening")
        print(f"| {Path(r['study']).name} | {r['evaluations']} | {r['slots'] or '?'} | "
              f"{r['wall_s']:.0f} s | {r['training_s']:.0f} s | "
              f"{r['screening_s'] or 0:.0f} s | "
              f"{100 * (r['driver_share'] or 0):.1f}% | "
              f"{'-' if oh is None else f'{100 * oh:.1f}%'} | "
              f"{'-' if ox is None else f'{100 * ox:.1f}%'} |")


if __name__ == "__main__":
    main()
