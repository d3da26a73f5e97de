#!/usr/bin/env bash
# Issue 13.4, where the searched instance-segmentation loss loses (results/instance-search/):
# its mask branch with the handcrafted CE+GIoU box branches, and its four box branches with
# the handcrafted CE mask branch, re-trained (full schedule, 2 seeds, test split) beside the
# runs of the search's own comparison (shared runs file). About 15 min of the 2 cores.
# Another search's branches: MASK, BOX, CONFIG and OUT in the environment, e.g. the 500-step
# re-search's (results/instance-search/branches-s1-p500-init40.json):
#   MASK='Sqrt(Mul(Abs(y), Inv(yhat)))' BOX='cls_rpn=Inv(Add(Tanh(y), Mul(y, yhat))); reg_rpn=Tanh(Add(Inv(i), Add(u, i))); cls_rcnn=Log(Mul(MinPool3x3(y), Neg(yhat))); reg_rcnn=Add(Log(Mul(e, u)), Inv(Tanh(i)))' CONFIG=benchmarks/configs/instance-search-p500-init40.toml OUT=results/instance-search/branches-s1-p500-init40.json bash benchmarks/instance_branches.sh
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
MASK=${MASK:-'Mul(Sqrt(Exp(y)), Inv(Mul(yhat, yhat)))'}
BOX=${BOX:-'cls_rpn=Mul(Inv(Add(1, y)), MaxPool3x3(Add(1, yhat))); reg_rpn=Add(Exp(Mul(1, u)), Inv(Mul(u, i))); cls_rcnn=Exp(Add(MinPool3x3(y), Inv(yhat))); reg_rcnn=Abs(Mul(Mean_c(e), Inv(i)))'}
CONFIG=${CONFIG:-benchmarks/configs/instance-search.toml}
OUT=${OUT:-results/instance-search/branches.json}
$PY -m autoloss_zero compare --task instance-segmentation --seeds 2 --workers 2 \
  --config "$CONFIG" \
  --results results/instance-segmentation-map.runs.jsonl \
  --loss ce+giou --loss "cls_rpn=ce; reg_rpn=giou; cls_rcnn=ce; reg_rcnn=giou; mask=$MASK" \
  --loss "$BOX; mask=ce" --json > "$OUT.tmp"
mv "$OUT.tmp" "$OUT"
