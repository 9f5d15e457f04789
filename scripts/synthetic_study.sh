#!/usr/bin/env bash
# The synthetic study of docs/results/synthetic.md on a CPU: BoT and DAAF-BoT (configs/study/),
# SEEDS seeds each, two trainings at a time with one thread each, then the table, the paired CI,
# the loss curves and one picture per row.
#
#   scripts/synthetic_study.sh OUT            # everything (about 70 min on 2 idle cores)
#   STAGE=collect scripts/synthetic_study.sh OUT   # only the table, CI and figures
#
# SEEDS (default 3) is the number of seeds trained; COLLECT_SEEDS (default SEEDS) the number
# collected into the table (seeds 0..COLLECT_SEEDS-1 of every row must be trained).
set -euo pipefail
OUT=${1:?usage: scripts/synthetic_study.sh OUT}
SEEDS=${SEEDS:-3}
COLLECT_SEEDS=${COLLECT_SEEDS:-$SEEDS}
STAGE=${STAGE:-all}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$(dirname "$0")/.."
common=(--table study --dataset synthetic --root "$OUT/data" --annotations "$OUT/data/annotations"
        --out "$OUT/runs" --device cpu train.device=cpu)

if [ "$STAGE" = all ]; then
  [ -f "$OUT/data/annotations/manifest.csv" ] || $PY -m daaf.cli synth --out "$OUT/data" --workers 1
  mkdir -p "$OUT/logs"
  for row in study_bot study_daaf_bot; do  # one process per row, in parallel
    $PY scripts/run_table.py "${common[@]}" --seeds "$SEEDS" --only "$row" > "$OUT/logs/$row.log" 2>&1 &
  done
  wait
fi

# Every run is reused: evaluation, attention against the true masks and keypoints, mean +- std
# and the paired CI of each row against study_bot.
$PY scripts/run_table.py "${common[@]}" --seeds "$COLLECT_SEEDS"
seeds=$(seq 0 $((COLLECT_SEEDS - 1)))
$PY -m daaf.cli compare --json --out "$OUT/compare_daaf_bot.png" \
  --baseline $(for s in $seeds; do echo "$OUT/runs/seed$s/study_bot/eval_synthetic"; done) \
  --candidate $(for s in $seeds; do echo "$OUT/runs/seed$s/study_daaf_bot/eval_synthetic"; done) \
  | tee "$OUT/compare_daaf_bot.txt"
$PY scripts/plot_losses.py --runs "$OUT/runs" --png "$OUT/losses.png" --title "synthetic study"
$PY -m daaf.cli visualize --model "$OUT/runs/seed0/study_daaf_bot/checkpoints/last.pt" \
  --base-model "$OUT/runs/seed0/study_bot/checkpoints/last.pt" --dataset synthetic \
  --root "$OUT/data" --annotations "$OUT/data/annotations" --n 4 --components 32 \
  --device cpu --out "$OUT/pictures"
