#!/usr/bin/env bash
# Issue 16: the same searches before and after the search-correctness fixes.
# "before" runs the code at dbce6d6 (checked out in $OLD), "after" this checkout; each
# search is serial (--workers 1) with the seed and budget of the results it re-makes.
# Resumable: each search resumes from its study, each comparison from its runs file.
set -euo pipefail
HERE=$(cd "$(dirname "$0")/.." && pwd)
OLD=${OLD:-/work/old}
PY=${PY:-$HERE/.venv/bin/python}
R=$HERE/results/issue16
mkdir -p "$R"
# classification / accuracy, 100 proxy trainings (results/classification-accuracy.md)
(cd "$OLD" && PYTHONPATH=$OLD/src $PY benchmarks/search_and_compare.py --task classification --metric accuracy --budget 100 --seeds 3 --top 1 --baseline ce --workers 1 --out "$R/classification-before" --runs "$HERE/results/classification-accuracy.runs.jsonl")
(cd "$HERE" && PYTHONPATH=$HERE/src $PY benchmarks/search_and_compare.py --task classification --metric accuracy --budget 100 --seeds 3 --top 1 --baseline ce --workers 1 --out "$R/classification-after" --runs "$HERE/results/classification-accuracy.runs.jsonl")
# segmentation / mIoU, the Table 7 AutoLoss-Zero row: 40 proxy trainings, 300-step proxy
(cd "$HERE" && PYTHONPATH=$HERE/src $PY benchmarks/search_and_compare.py --task segmentation --metric miou --budget 40 --seeds 3 --top 1 --baseline ce --workers 2 --out "$R/segmentation-miou-after" --runs "$HERE/results/segmentation.runs.jsonl")
