#!/usr/bin/env bash
# Issue 16, after benchmarks/issue16_before_after.sh: the copy semantics measured (the same
# classification search with the paper's copy that reuses the parent's score), and the
# fingerprint collisions of the searches before and after the fixes. Resumable.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
PY=${PY:-$HERE/.venv/bin/python}
R=$HERE/results/issue16
cd "$HERE"
cat > "$R/copy-reuse.toml" <<'TOML'
[mutation]
copy_mode = "reuse"
TOML
PYTHONPATH=$HERE/src $PY benchmarks/search_and_compare.py --task classification --metric accuracy --budget 100 --seeds 3 --top 1 --baseline ce --workers 1 --config "$R/copy-reuse.toml" --out "$R/classification-after-copy-reuse" --runs "$HERE/results/classification-accuracy.runs.jsonl"
PYTHONPATH=$HERE/src $PY benchmarks/fingerprint_collisions.py "$R/classification-before.db" "$R/classification-after.db" "$R/classification-after-copy-reuse.db" "$R/segmentation-miou-after.db" --seeds 2 --limit 30 --workers 2 --runs "$R/collisions.runs.jsonl" --out "$R/collisions.json"
