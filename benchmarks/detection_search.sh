#!/usr/bin/env bash
# Issue 13.3: detection, all four branches searched from scratch (no handcrafted loss in the
# population), 200 proxy-training equivalents with the calibrated 300-step proxy
# (benchmarks/configs/detection-search.toml); then the top 3 confirmed with 2 full-schedule
# trainings each on validation, and rank 1 re-trained (full schedule, 2 seeds, test split)
# beside CE+L1, CE+IoU and CE+GIoU. About 2 hours of the 2 cores for the search. Resumes
# (study file, shared runs file): run it again after a stop. A second search seed:
# `SEED=1 bash benchmarks/detection_search.sh` (files ...-s1; the baselines' trainings are
# shared through the runs file). A labelled variant with 40 random initial members instead of
# 20 (benchmarks/configs/detection-search-init40.toml): `SEED=2 VARIANT=init40 bash
# benchmarks/detection_search.sh` (files ...-s2-init40).
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEED=${SEED:-0}
OUT=results/detection-search/detection-map
CONFIG=benchmarks/configs/detection-search.toml
[ "$SEED" = 0 ] || OUT=$OUT-s$SEED
if [ -n "${VARIANT:-}" ]; then
  CONFIG=benchmarks/configs/detection-search-$VARIANT.toml
  OUT=$OUT-$VARIANT
fi
$PY benchmarks/search_and_compare.py --task detection --metric map --budget 200 \
  --config "$CONFIG" --confirm-top 3 --confirm-seeds 2 \
  --seeds 2 --top 1 --baseline ce+l1 --baseline ce+iou --baseline ce+giou --workers 2 \
  --seed "$SEED" --runs results/detection-map.runs.jsonl --out "$OUT"
