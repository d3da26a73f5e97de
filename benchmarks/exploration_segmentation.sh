#!/usr/bin/env bash
# Issue 18: the paper's offspring operators vs recombination, grafts, both, and the paper's
# operators with screening's fit test (added 2026-12-01, after stage 1 had begun), and
# (issue 13.1, added 2026-12-02 after the five were done) the paper's operators plus the
# region operator Ratio_nhw (benchmarks/region_ops.py), and (issue 13.1, added 2026-12-04
# after the six were done) region sums (mutation.region_sum) with the paper's operators and
# with Ratio_nhw, and (issue 13.1, added 2026-12-04 later) region sums by term
# (mutation.region_pick = "term") with Ratio_nhw, and (issue 13.1, added 2026-12-04 after
# ratio-regionterm was measured) the same with seg-rungs.toml's fidelity rungs, on
# segmentation/mIoU, and (issue 13.1, added 2026-12-05) the paper's operators plus the
# mutation `weight` (a node times a target-only region weight), and (issue 13.1, added
# 2026-12-05 after `weight` was measured) the same with half the weights inverted
# (`weight_inverse = 0.5`), and (issue 13.1, added 2026-12-05 after weight-inv was
# measured and benchmarks/weight_reach.py) the same with half the weights put on the whole
# loss (`weight_root = 0.5`), and (issue 13.1, added 2026-12-06) the same with the weight's
# unary operators drawn from Sqrt alone (`weight_unary = ["Sqrt"]`), with the calibrated
# 1,000 x 8 proxy: 2 search seeds each, budgets raised together in stages of 50
# proxy-training equivalents up to 150, then each rank-1 re-trained (full schedule,
# 3 seeds, test split) beside CE. Resumable: run it again;
# "--only NAME" (repeatable) searches only that variant and reports all.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
# the ratio variant's operator module (benchmarks/region_ops.py), here and on the workers
export PYTHONPATH="$PWD/benchmarks${PYTHONPATH:+:$PYTHONPATH}"
$PY benchmarks/exploration.py --task segmentation --metric miou \
  --variant paper=benchmarks/configs/explore-paper.toml \
  --variant recombine=benchmarks/configs/explore-recombine.toml \
  --variant graft=benchmarks/configs/explore-graft.toml \
  --variant both=benchmarks/configs/explore-both.toml \
  --variant fit=benchmarks/configs/explore-fit.toml \
  --variant ratio=benchmarks/configs/explore-ratio.toml \
  --variant regionsum=benchmarks/configs/explore-regionsum.toml \
  --variant ratio-regionsum=benchmarks/configs/explore-ratio-regionsum.toml \
  --variant ratio-regionterm=benchmarks/configs/explore-ratio-regionterm.toml \
  --variant ratio-regionterm-rungs=benchmarks/configs/explore-ratio-regionterm-rungs.toml \
  --variant weight=benchmarks/configs/explore-weight.toml \
  --variant weight-inv=benchmarks/configs/explore-weight-inv.toml \
  --variant weight-inv-root=benchmarks/configs/explore-weight-inv-root.toml \
  --variant weight-pow=benchmarks/configs/explore-weight-pow.toml \
  --seeds 0 1 --stages 50 100 150 --baseline ce --retrain-seeds 3 --workers 2 \
  --runs results/segmentation.runs.jsonl --out results/exploration-segmentation "$@"
