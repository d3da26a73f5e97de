#!/usr/bin/env bash
# Issue 13.6: the searched classification losses against label-smoothing cross-entropy
# (eps 0.1), the common strong baseline; full schedule, 3 seeds, test split. Resumable.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
OUT=results/classification-label-smoothing
$PY -m autoloss_zero compare --task classification --loss ce --loss focal --loss ls-ce \
  --loss 'Mul(Inv(Abs(yhat)), Square(Abs(Exp(MinPool3x3(Tanh(y))))))' \
  --loss 'Add(Mul(Inv(Abs(Sqrt(Neg(yhat)))), MaxPool3x3(Exp(Tanh(Tanh(Abs(y)))))), yhat)' \
  --loss 'Add(Mul(Inv(yhat), Add(y, Mean_c(Abs(yhat)))), MinPool3x3(Add(y, y)))' \
  --seeds 3 --workers 2 --results results/classification-accuracy.runs.jsonl --json > "$OUT.json.tmp"
mv "$OUT.json.tmp" "$OUT.json"
$PY - "$OUT" <<'PY'
import json, sys
out = sys.argv[1]
d = json.load(open(out + ".json"))
rows = ["# classification / accuracy: searched losses vs label-smoothing CE", "",
        "Command: `bash benchmarks/classification_label_smoothing.sh` (full schedule, "
        f"{d['seeds']} seeds, test split, mean ± std).", "",
        "| loss | accuracy |", "|---|---|"]
for r in d["losses"]:
    m = r["metrics"]["accuracy"]
    rows.append(f"| `{r['loss']}` | {m['mean']:.4f} ± {m['std']:.4f} |")
open(out + ".md", "w").write("\n".join(rows) + "\n")
print("\n".join(rows))
PY
