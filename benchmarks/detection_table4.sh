#!/usr/bin/env bash
# Issue 13.3: the paper's Table 4 rows in miniature from the R-CNN-head search (the RPN kept
# on CE + L1, `benchmarks/configs/detection-fixed-rpn.toml`, results/detection-map-fixed-rpn.md,
# a labelled experiment, not a search from scratch): each searched branch beside the
# handcrafted one it replaces, as per-branch mixes (`compare --loss "cls_rpn=ce; ..."`), full
# schedule, 2 seeds, test split. The baselines and the searched pair are already in the
# runs file (trained once). About 15 minutes of the 2 cores (2026-12-02). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
CLS='Sqrt(Inv(Mul(Inv(Mul(y, 1)), Tanh(yhat))))'
REG='Add(Abs(Mean_nhw(u)), Neg(Mul(i, i)))'
$PY -m autoloss_zero compare --task detection --seeds 2 --workers 2 \
  --loss ce+l1 --loss ce+giou \
  --loss "cls_rpn=ce; reg_rpn=l1; cls_rcnn=$CLS; reg_rcnn=l1" \
  --loss "cls_rpn=ce; reg_rpn=l1; cls_rcnn=$CLS; reg_rcnn=giou" \
  --loss "cls_rpn=ce; reg_rpn=l1; cls_rcnn=ce; reg_rcnn=$REG" \
  --loss "cls_rpn=ce; reg_rpn=l1; cls_rcnn=$CLS; reg_rcnn=$REG" \
  --results results/detection-map.runs.jsonl --json > results/detection-table4.json.tmp
mv results/detection-table4.json.tmp results/detection-table4.json
$PY benchmarks/table4.py results/detection-table4.json > results/detection-table4.md
