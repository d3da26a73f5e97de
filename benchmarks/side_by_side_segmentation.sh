#!/usr/bin/env bash
# Issue 12, item 5: segmentation/mIoU at equal compute (512k training image-steps = 64
# trainings of the calibrated 1,000 x 8 proxy): (a) the search as it was (300 x 16 proxy,
# 107 trainings), (b) the calibrated proxy, (c) plus fidelity rungs, (d) plus confirmation
# of the top 3 (2 full trainings each, 24 proxy equivalents: the search gets 40). Each
# rank-1 loss re-trained with the full schedule (3 seeds, test split) beside CE. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
$PY benchmarks/side_by_side.py --task segmentation --metric miou \
  --search "a-today=benchmarks/configs/seg-today.toml:107" \
  --search "b-calibrated=benchmarks/configs/seg-calibrated.toml:64" \
  --search "c-rungs=benchmarks/configs/seg-rungs.toml:64" \
  --search "d-confirm=benchmarks/configs/seg-confirm.toml:40" \
  --baseline ce --seeds 3 --workers 2 --runs results/segmentation.runs.jsonl \
  --out results/segmentation-miou-side-by-side
