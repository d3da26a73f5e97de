"""Does screening's fit test tell detection losses that train from those that do not?

Searched from scratch over all four branches, every detection loss that passed screening
so far trained to about 0 proxy mAP (benchmarks/results/branch-screening-detection-map.json,
screening-validity-detection-map.json), while the handcrafted ones reach 0.06-0.08. The
fit test trains a fresh detector on the B screening images alone and scores it at the
screening batch's own anchors and RoIs (:meth:`DetectionTask.fit_outputs`).

The panel: the random losses proxy-trained in those two committed files (their scores),
and losses proxy-trained here (seed 0, the default proxy): the handcrafted losses written
as formulas, and mixes of cross-entropy classification with each random loss's box
branches (losses that may train a little). For each, the search's screener (default
config: its screening samples) gives the fit gain at each ``--steps`` count and
``--lr``. A loss "trains" above ``--trains`` proxy mAP. Resumable (rows kept).

    python benchmarks/fit_test_detection.py --steps 50 100 200
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import torch
from provenance import provenance

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener
from autoloss_zero.tasks.base import RawLoss

ROOT = Path(__file__).resolve().parent.parent
OUT = ROOT / "benchmarks/results/fit-test-detection-map.json"
CE = "Neg(Mul(y, Log(yhat)))"
HANDCRAFTED = {
    "ce+giou": "Add(Add(1, Neg(Mul(i, Inv(u)))), Mul(Add(e, Neg(u)), Inv(e)))",
    "ce+(1-iou)": "Add(1, Neg(Mul(i, Inv(u))))",
    "ce+(u-i)^2": "Square(Add(u, Neg(i)))",
    "ce+(-log iou)": "Neg(Log(Mul(i, Inv(u))))",
}


def _branches(formula: str) -> dict[str, str]:
    return dict(part.split(": ", 1) for part in formula.split("; "))


def _join(branches: dict[str, str]) -> str:
    return "; ".join(f"{k}: {v}" for k, v in branches.items())


def committed() -> list[dict]:
    """The random losses with a proxy score in the committed screening measurements."""
    rows = []
    branch = json.loads((ROOT / "benchmarks/results/branch-screening-detection-map.json")
                        .read_text())
    for setting in branch["settings"]:
        for m in setting["members"]:
            if m.get("score") is not None:
                rows.append({"formula": m["formula"], "proxy_map": float(m["score"]),
                             "source": "branch-screening"})
    validity = json.loads((ROOT / "benchmarks/results/screening-validity-detection-map.json")
                          .read_text())
    for row in validity["rows"]:
        for c in row["candidates"]:
            if c["score"] is not None:
                rows.append({"formula": c["formula"], "proxy_map": float(c["score"]),
                             "source": "screening-validity"})
    first: dict[str, dict] = {}
    for r in rows:
        first.setdefault(r["formula"], r)
    return list(first.values())


def made_here(randoms: list[dict], mixes: int) -> list[dict]:
    """Handcrafted formulas and CE-classification mixes, to proxy-train here."""
    out = [{"formula": _join({"cls_rpn": CE, "reg_rpn": reg, "cls_rcnn": CE, "reg_rcnn": reg}),
            "source": f"handcrafted {name}"} for name, reg in HANDCRAFTED.items()]
    for r in randoms[:mixes]:
        b = _branches(r["formula"])
        out.append({"formula": _join({"cls_rpn": CE, "reg_rpn": b["reg_rpn"], "cls_rcnn": CE,
                                      "reg_rcnn": b["reg_rcnn"]}),
                    "source": "ce classification + a random loss's boxes"})
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--steps", type=int, nargs="+", default=[50, 100, 200])
    ap.add_argument("--lr", type=float, default=SearchConfig().screening.fit_lr)
    ap.add_argument("--mixes", type=int, default=6)
    ap.add_argument("--trains", type=float, default=0.01)
    ap.add_argument("--out", type=Path, default=OUT)
    args = ap.parse_args()
    torch.set_num_threads(1)
    task = az.get_task("detection")
    old = json.loads(args.out.read_text()) if args.out.exists() else {}
    rows = {r["formula"]: r for r in old.get("rows", [])}
    randoms = committed()
    for r in randoms + made_here(randoms, args.mixes):
        rows.setdefault(r["formula"], dict(r))
    screener = Screener.from_config(
        task, "map", SearchConfig.from_dict({"screening": {"fit_lr": args.lr}}))

    def save() -> None:
        args.out.write_text(json.dumps({**provenance(), "task": "detection", "metric": "map",
                                        "fit_lr": args.lr, "steps": args.steps,
                                        "trains_above": args.trains,
                                        "summary": summary(list(rows.values()), args),
                                        "rows": list(rows.values())}, indent=2) + "\n")

    for r in rows.values():
        loss = task.as_task_loss(az.parse(r["formula"], leaves=task.leaf_spec()))
        if r.get("proxy_map") is None:
            t = time.perf_counter()
            metrics = task.train(RawLoss(task, loss), seed=0)
            r["proxy_map"], r["proxy_s"] = metrics["map"], time.perf_counter() - t
        gains = r.setdefault("fit_gain", {})
        for steps in args.steps:
            if str(steps) in gains:
                continue
            screener.fit_steps = steps
            t = time.perf_counter()
            g = screener.fit_gain(loss)
            gains[str(steps)] = None if g != g else g
            r.setdefault("fit_s", {})[str(steps)] = time.perf_counter() - t
        print(f"{r['proxy_map']:.4f}  " + "  ".join(
            f"{k}: {'nan' if v is None else f'{v:.3f}'}" for k, v in gains.items())
              + f"  {r['source']}", flush=True)
        save()
    print(json.dumps(summary(list(rows.values()), args), indent=1))


def summary(rows: list[dict], args) -> dict:
    """Per steps count: the fit gains of the losses that train and of those that do not,
    and how many of each a threshold between them keeps."""
    out = {}
    for steps in args.steps:
        done = [r for r in rows if r.get("proxy_map") is not None
                and str(steps) in r.get("fit_gain", {})]
        trains = [r["fit_gain"][str(steps)] for r in done if r["proxy_map"] > args.trains]
        dead = [r["fit_gain"][str(steps)] for r in done if r["proxy_map"] <= args.trains]
        finite = any(g is not None for g in trains + dead)
        out[str(steps)] = {
            "trains": len(trains), "dead": len(dead),
            "trains_gain_min": min((g for g in trains if g is not None), default=None),
            "dead_gain_max": max((g for g in dead if g is not None), default=None),
            "kept_at": {str(t): {"trains": sum(g is not None and g >= t for g in trains),
                                 "dead": sum(g is not None and g >= t for g in dead)}
                        for t in (0.05, 0.1, 0.2, 0.3, 0.5)} if finite else {},
        }
    return out


if __name__ == "__main__":
    main()
