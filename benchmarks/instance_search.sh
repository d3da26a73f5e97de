#!/usr/bin/env bash
# Issue 13.4: instance segmentation, all five branches searched from scratch (no handcrafted
# loss in the population), 150 proxy-training equivalents with a 250-step proxy
# (benchmarks/configs/instance-search.toml); then the top 3 confirmed with 2 full-schedule
# trainings each on validation, and rank 1 re-trained (full schedule, 2 seeds, test split)
# beside CE+L1+CE, CE+IoU+CE and CE+GIoU+CE. About 2 hours of the 2 cores for the search,
# 1 hour for confirmation and re-training. Resumes (study file, shared runs file).
# A labelled variant with the proxy calibrated on mask mAP (500 x 16) and 40 random initial
# members (benchmarks/configs/instance-search-p500-init40.toml): `SEED=1
# VARIANT=p500-init40 bash benchmarks/instance_search.sh` (files ...-s1-p500-init40; about
# 3.5 hours of the 2 cores for the search).
# A labelled Table 4-style experiment, the four box branches fixed to CE+L1 and only the
# mask searched (benchmarks/configs/instance-search-p500-init40-maskonly.toml; not yet run):
# `VARIANT=p500-init40-maskonly bash benchmarks/instance_search.sh`.
# A labelled exploration with branch recombination (a child takes one whole branch from a
# second tournament winner; benchmarks/configs/instance-search-p500-init40-branchx.toml):
# `SEED=2 VARIANT=p500-init40-branchx bash benchmarks/instance_search.sh` (against seed 2
# of p500-init40, the same search without it).
# A labelled experiment with the Table 2 config's fidelity rungs (full-schedule trainings in
# the ranking; benchmarks/configs/instance-search-p500-init40-rungs.toml; run 2026-12-06,
# missed: 0.275 mask mAP, the rungs leave 66 of 150 equivalents to exploration):
# `SEED=2 VARIANT=p500-init40-rungs bash benchmarks/instance_search.sh`.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEED=${SEED:-0}
OUT=results/instance-search/instance-segmentation-map
CONFIG=benchmarks/configs/instance-search.toml
[ "$SEED" = 0 ] || OUT=$OUT-s$SEED
if [ -n "${VARIANT:-}" ]; then
  CONFIG=benchmarks/configs/instance-search-$VARIANT.toml
  OUT=$OUT-$VARIANT
fi
$PY benchmarks/search_and_compare.py --task instance-segmentation --metric map --budget 150 \
  --config "$CONFIG" --confirm-top 3 --confirm-seeds 2 \
  --seeds 2 --top 1 --baseline ce+l1 --baseline ce+iou --baseline ce+giou --workers 2 \
  --seed "$SEED" --runs results/instance-segmentation-map.runs.jsonl --out "$OUT"
