#!/usr/bin/env bash
# Proxy calibration for pose (issue 12): MSE and eight other heatmap losses (robust,
# weighted, bounded, pooled, and the loss an earlier search found) with each candidate
# proxy (2 seeds) against the full schedule (2 seeds). Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PANEL=(--loss mse
  --loss 'Abs(Add(yhat, Neg(y)))'
  --loss 'Log(Add(1, Square(Add(yhat, Neg(y)))))'
  --loss 'Square(Add(Tanh(yhat), Neg(y)))'
  --loss 'Mul(Add(y, 1), Square(Add(yhat, Neg(y))))'
  --loss 'Mul(Exp(y), Square(Add(yhat, Neg(y))))'
  --loss 'Square(Add(MaxPool3x3(yhat), Neg(MaxPool3x3(y))))'
  --loss 'Add(Square(Add(yhat, Neg(y))), Neg(Mul(y, yhat)))'
  --loss 'Mean_nhw(Tanh(Mul(Log(y), Exp(yhat))))')
$PY -m autoloss_zero calibrate --task pose --metric ap "${PANEL[@]}" \
  --config benchmarks/configs/calibration-pose.toml --seeds 2 --full-seeds 2 --workers 2 \
  --results results/pose.runs.jsonl --report results/pose-calibration.md --json > results/pose-calibration.json.tmp
mv results/pose-calibration.json.tmp results/pose-calibration.json
