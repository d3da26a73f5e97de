#!/usr/bin/env bash
# Proxy calibration for detection (issue 12 / 13.3): the three baselines, mixes of their
# branches, and four-branch losses that a search from scratch draws (initial members that
# pass the per-branch screening, benchmarks/results/branch-screening-detection-map.json),
# with each candidate proxy (2 seeds) against the full schedule (2 seeds). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PANEL=(--loss ce+l1 --loss ce+iou --loss ce+giou
  --loss 'cls_rpn=ce; reg_rpn=giou; cls_rcnn=ce; reg_rcnn=l1'
  --loss 'cls_rpn=ce; reg_rpn=l1; cls_rcnn=ce; reg_rcnn=giou'
  --loss 'cls_rpn: Mean_nhw(Inv(Mul(y, yhat))); reg_rpn: Neg(Mul(Neg(u), Inv(i))); cls_rcnn: Neg(Exp(Add(yhat, y))); reg_rcnn: Inv(Mul(Inv(u), Add(1, i)))'
  --loss 'cls_rpn: Inv(Sqrt(Mul(yhat, y))); reg_rpn: Add(MaxPool3x3(Neg(i)), MaxPool3x3(Mean_nhw(e))); cls_rcnn: Inv(Log(Add(y, yhat))); reg_rcnn: Mul(Tanh(Mul(i, u)), Log(Tanh(e)))'
  --loss 'cls_rpn: Mul(Neg(Mean_c(y)), Mul(Log(yhat), Mul(1, 1))); reg_rpn: Add(Neg(Mean_nhw(i)), Add(Neg(i), Mean_nhw(e))); cls_rcnn: Neg(Mean_c(Mul(y, yhat))); reg_rcnn: Mul(Add(Mean_nhw(e), Inv(i)), MinPool3x3(Mean_c(1)))'
  --loss 'cls_rpn: Neg(Mul(y, Log(yhat))); reg_rpn: Neg(Log(Mul(i, Inv(u)))); cls_rcnn: Neg(Mul(y, Log(yhat))); reg_rcnn: Add(Neg(Mul(i, Inv(u))), Neg(Mul(u, Inv(e))))')
$PY -m autoloss_zero calibrate --task detection --metric map "${PANEL[@]}" \
  --config benchmarks/configs/calibration-detection.toml --seeds 2 --full-seeds 2 --workers 2 \
  --results results/detection-map.runs.jsonl --report results/detection-calibration.md --json > results/detection-calibration.json.tmp
mv results/detection-calibration.json.tmp results/detection-calibration.json
