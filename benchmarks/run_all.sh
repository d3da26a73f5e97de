#!/usr/bin/env bash
# Every experiment behind README.md and benchmarks/README.md, in the order they were run.
# Each step resumes where it stopped (study files, JSON-lines files of finished runs), so
# this script can be interrupted and started again. Total: several hours on 2 CPU cores.
set -euo pipefail
cd "$(dirname "$0")/.."
PY=${PY:-.venv/bin/python}
SEG_BASELINES="--baseline ce --baseline wce --baseline dice --baseline lovasz --baseline dpce --baseline ssim --baseline focal"

# Micro-benchmarks
$PY benchmarks/bench_generation.py --seconds 5
$PY -m autoloss_zero bench rejection --task segmentation --seconds 60 --json > benchmarks/results/rejection-segmentation.json
$PY -m autoloss_zero bench rejection --task classification --seconds 30 --json > benchmarks/results/rejection-classification.json
$PY -m autoloss_zero bench rejection --task detection --seconds 30 --json > benchmarks/results/rejection-detection.json
$PY benchmarks/bench_engines.py --evaluations 16

# Choosing eta
$PY benchmarks/screening_validity.py --task classification --metric accuracy --per-bucket 10
$PY benchmarks/screening_validity.py --task segmentation --metric miou --per-bucket 8

# Searches, then re-training against the baselines (issue 3, 4, 5; Table 2 in miniature)
$PY benchmarks/search_and_compare.py --task classification --metric accuracy --budget 100 --seeds 3 --top 2 --baseline ce --baseline focal --workers 1 --out results/classification-accuracy
# Is the classification lead robust to tuning CE? (lr x schedule grid, both losses)
$PY benchmarks/baseline_tuning.py --task classification --loss ce --loss 'study:results/classification-accuracy.db#1' --lr 0.001 --lr 0.002 --lr 0.004 --lr 0.008 --lr 0.016 --schedule constant --schedule cosine --workers 2 --runs results/classification-accuracy.runs.jsonl --out results/classification-tuning
$PY benchmarks/search_and_compare.py --task segmentation --metric miou --budget 100 --seeds 3 --top 2 $SEG_BASELINES --workers 2 --out results/segmentation-miou --runs results/segmentation.runs.jsonl
$PY benchmarks/search_and_compare.py --task segmentation --metric bf1 --budget 100 --seeds 3 --top 2 $SEG_BASELINES --workers 2 --out results/segmentation-bf1 --runs results/segmentation.runs.jsonl
# Proxy fidelity: does the proxy rank losses like the full schedule?
$PY benchmarks/proxy_fidelity.py --task segmentation --seeds 3 --loss ce --loss wce --loss dice --loss lovasz --loss dpce --loss ssim --loss focal --loss 'study:results/segmentation-miou.db#1' --loss 'study:results/segmentation-miou.db#2' --loss 'study:results/segmentation-bf1.db#1' --loss 'study:results/segmentation-bf1.db#2' --workers 2 --runs results/segmentation.runs.jsonl --out results/segmentation-proxy-fidelity
$PY benchmarks/proxy_fidelity.py --task segmentation --seeds 2 --loss ce --loss dice --loss lovasz --loss dpce --loss focal --loss 'study:results/segmentation-miou.db#1' --loss 'study:results/segmentation-bf1.db#1' --proxy-steps 1000 --workers 2 --runs results/segmentation.runs.jsonl --out results/segmentation-proxy-fidelity-1000
$PY benchmarks/search_and_compare.py --task segmentation --metric miou --budget 40 --config benchmarks/configs/segmentation-proxy1000.toml --seeds 3 --top 2 $SEG_BASELINES --workers 2 --out results/segmentation-miou-proxy1000 --runs results/segmentation.runs.jsonl
$PY benchmarks/search_overhead.py results/segmentation-bf1.db results/segmentation-miou.db --slots 2 --out benchmarks/results/overhead-segmentation.json

$PY benchmarks/search_and_compare.py --task pose --metric ap --budget 40 --seeds 3 --top 1 --baseline mse --workers 2 --out results/pose-ap
$PY benchmarks/search_and_compare.py --task detection --metric map --budget 30 --seeds 2 --top 1 --baseline ce+l1 --baseline ce+iou --baseline ce+giou --workers 2 --out results/detection-map
$PY benchmarks/search_and_compare.py --task instance-segmentation --metric map --budget 12 --seeds 2 --top 1 --baseline ce+l1 --baseline ce+iou --baseline ce+giou --workers 2 --out results/instance-segmentation-map
for metric in fwiou macc gacc biou; do
  $PY benchmarks/search_and_compare.py --task segmentation --metric $metric --budget 30 --seeds 3 --top 1 $SEG_BASELINES --workers 2 --out results/segmentation-$metric --runs results/segmentation.runs.jsonl
done
# evaluation.common_seed against the default, same seed and budget as Table 7's AutoLoss-Zero row
$PY benchmarks/search_and_compare.py --task segmentation --metric miou --budget 40 --config benchmarks/configs/common-seed.toml --seeds 3 --top 1 --baseline ce --workers 2 --out results/segmentation-miou-common-seed --runs results/segmentation.runs.jsonl
# Detection with the RPN's losses fixed (the paper's Table 4 rows that search the R-CNN head)
$PY benchmarks/search_and_compare.py --task detection --metric map --budget 60 --config benchmarks/configs/detection-fixed-rpn.toml --seeds 2 --top 1 --baseline ce+l1 --workers 2 --out results/detection-map-fixed-rpn --runs results/detection-map.runs.jsonl
# Issue 13.3: Table 4 rows, the detection proxy's calibration, the four-branch search from scratch
PY=$PY bash benchmarks/detection_table4.sh
PY=$PY bash benchmarks/calibrate_detection.sh
PY=$PY bash benchmarks/detection_search.sh
SEED=1 PY=$PY bash benchmarks/detection_search.sh
SEED=2 VARIANT=init40 PY=$PY bash benchmarks/detection_search.sh
# Issue 13.4: instance segmentation, five branches from scratch, then its branches swapped
PY=$PY bash benchmarks/instance_search.sh
PY=$PY bash benchmarks/instance_branches.sh
PY=$PY bash benchmarks/calibrate_instance.sh
# How often the K = 20 random initial members of the multi-branch searches train at all
$PY benchmarks/initial_signal.py results/detection-search/*.db results/instance-search/*.db --out results/initial-signal

# Ablations (Tables 7 and 8 in miniature)
$PY benchmarks/ablation_table8.py --task segmentation --metric miou --minutes 2.5
for metric in miou bf1; do
  $PY benchmarks/table7_random_search.py --task segmentation --metric $metric --budget 40 --seeds 3 --workers 2 --runs results/segmentation.runs.jsonl
done
$PY benchmarks/table2.py > results/segmentation-table2.md
