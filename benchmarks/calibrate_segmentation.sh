#!/usr/bin/env bash
# Proxy calibration for segmentation (issue 12): 17 losses (the 7 baselines and 10 losses
# found by earlier searches, the fast-start Sqrt(Inv(y * yhat)) family among them), every
# candidate proxy of the config (2 seeds) against the full schedule (3 seeds, reused from
# results/segmentation.runs.jsonl). Resumable: re-run the same command.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
PANEL=(--loss ce --loss wce --loss dice --loss lovasz --loss dpce --loss ssim --loss focal
  --loss 'Sqrt(Mul(Inv(Mul(y, yhat)), Mean_c(y)))'
  --loss 'Sqrt(Mul(Inv(yhat), Add(y, yhat)))'
  --loss 'Sqrt(Inv(MaxPool3x3(Mul(Tanh(y), Abs(Tanh(yhat))))))'
  --loss 'Sqrt(Inv(Tanh(MaxPool3x3(Mul(Abs(y), yhat)))))'
  --loss 'Mul(Sqrt(Inv(Mul(y, Add(yhat, yhat)))), 1)'
  --loss 'Sqrt(Inv(Mul(y, yhat)))'
  --loss 'Mul(Mul(Add(y, y), Add(1, 1)), Inv(Add(yhat, yhat)))'
  --loss 'Square(Mul(Log(yhat), Sqrt(y)))'
  --loss 'Sqrt(Inv(Mul(MaxPool3x3(Inv(y)), yhat)))'
  --loss 'Sqrt(Inv(MaxPool3x3(Mul(y, Abs(yhat)))))')
CONFIG=${CONFIG:-benchmarks/configs/calibration-segmentation.toml}
OUT=${OUT:-results/segmentation-calibration}
$PY -m autoloss_zero calibrate --task segmentation --metric miou "${PANEL[@]}" \
  --config "$CONFIG" --seeds 2 --full-seeds 3 --workers 2 \
  --results results/segmentation.runs.jsonl --report "$OUT.md" --json > "$OUT.json.tmp"
mv "$OUT.json.tmp" "$OUT.json"
