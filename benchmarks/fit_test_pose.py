"""Does screening's fit test tell pose losses that train from those that do not?

The panel is every pose loss already proxy-trained in a committed results file: the 30
random candidates of the screening-validity measurement (benchmarks/results/
screening-validity-pose-ap.json) and the 9 losses of the pose calibration
(results/pose-calibration.json, 600 x 32 proxy, mean of 2 seeds). For each, the
search's screener (default config, so the search's screening samples) gives the paper's
g and the fit test's gain (``screening.fit_steps`` steps, ``fit_lr``). A loss "trains"
when its proxy AP is above 0.05. Writes benchmarks/results/fit-test-pose-ap.json.

    python benchmarks/fit_test_pose.py
"""

from __future__ import annotations

import json
from pathlib import Path

import torch
from provenance import provenance

import autoloss_zero as az
from autoloss_zero.search.config import SearchConfig
from autoloss_zero.search.rejection import Screener

ROOT = Path(__file__).resolve().parent.parent
TRAINS = 0.05


def panel() -> list[tuple[str, float, str]]:
    out = []
    validity = json.loads((ROOT / "benchmarks/results/screening-validity-pose-ap.json")
                          .read_text())
    for row in validity["rows"]:
        for c in row["candidates"]:
            if c["score"] is not None:
                out.append((c["formula"], float(c["score"]), "screening-validity"))
    calib = json.loads((ROOT / "results/pose-calibration.json").read_text())
    proxy = next(p for p in calib["proxies"] if p["name"].startswith("600"))
    for loss, means in proxy["means"].items():
        formula = "Square(Add(yhat, Neg(y)))" if loss == "mse" else loss
        out.append((formula, float(means["ap"]), "calibration 600x32"))
    return out


def main() -> None:
    torch.set_num_threads(1)
    task = az.get_task("pose")
    free = SearchConfig.from_dict({"screening": {"eta": -1e6, "fit_steps": 0}})
    screener = Screener.from_config(task, "ap", free)  # g of every loss, no threshold
    fit = Screener.from_config(task, "ap", SearchConfig())  # the fit test as searched
    rows = []
    for formula, score, source in panel():
        loss = task.as_task_loss(az.parse(formula))
        res = screener.screen(loss)
        gain = fit.fit_gain(loss)
        rows.append({"formula": formula, "proxy_ap": score, "source": source, "g": res.g,
                     "fit_gain": None if gain != gain else gain})
        print(f"{score:.3f}  g {res.g if res.g is None else round(res.g, 3)}  "
              f"fit {gain:.3f}  {formula}", flush=True)
    cfg = SearchConfig().screening
    eta, fit_eta = cfg.eta, cfg.fit_eta
    trains = [r for r in rows if r["proxy_ap"] > TRAINS]
    dead = [r for r in rows if r["proxy_ap"] <= TRAINS]

    def passes(r, fit_too):
        ok = r["g"] is not None and r["g"] >= eta
        return ok and (not fit_too or (r["fit_gain"] or 0.0) >= fit_eta)

    summary = {name: {"trains_kept": sum(passes(r, f) for r in trains),
                      "dead_kept": sum(passes(r, f) for r in dead)}
               for name, f in (("g only (the paper)", False), ("g and the fit test", True))}
    out = {**provenance(), "task": "pose", "metric": "ap", "eta": eta,
           "fit_steps": fit.fit_steps, "fit_lr": cfg.fit_lr, "fit_eta": fit_eta,
           "trains_above": TRAINS, "trains": len(trains), "dead": len(dead),
           "summary": summary, "rows": rows}
    path = ROOT / "benchmarks/results/fit-test-pose-ap.json"
    path.write_text(json.dumps(out, indent=2) + "\n")
    print(json.dumps(summary))


if __name__ == "__main__":
    main()
