#!/usr/bin/env bash
# The synthetic studies on a CPU, SEEDS seeds per row, two trainings at a time with one thread
# each, then the table, the paired CIs against BoT, the loss curves and the pictures.
# - STUDY=v1 (docs/results/synthetic.md): `daaf synth` defaults; BoT, DAAF-BoT, DAAF-BoT with
#   lambda_p = 30, HAB only and PAB only (configs/study/).
# - STUDY=v2 (the default; issue 19): `daaf synth --preset misaligned`; BoT, DAAF-BoT as the
#   paper, and DAAF-BoT with quarter-resolution decoders and grad_ratio balancing
#   (study_daaf_bot_fix); the CIs also on the occluded, the misaligned and the other queries
#   apart (conditions.csv). Two diagnostic rows, NO_REID_SEEDS seeds each (default 1): the fix
#   row's network trained on the PAB's loss alone, with the paper's L2 norm (study_pab_no_reid)
#   and with the mean squared error (study_pab_no_reid_mse); their PCK, not their mAP, is the point.
#
# - STUDY=v3 (docs/results/synthetic_v3.md): `daaf synth --preset misaligned`; BoT, DAAF-BoT as
#   the paper with decoders that can learn (study_v3_daaf_bot: small 1x1 heads, no decay on the
#   branches) and its HAB-only and PAB-only rows, the candidate with every lever for the PAB
#   (study_v3_daaf_bot_balanced, the presets' objective), its HAB-only and PAB-only rows, and
#   the candidate without balancing (study_v3_daaf_bot_recipe). Each (row, seed) is a job of its
#   own, JOBS (default 2) at a time, row by row, each resumed from its last checkpoint if it has
#   one.
#
#   scripts/synthetic_study.sh OUT                  # everything (OUT: an absolute path)
#   STAGE=collect scripts/synthetic_study.sh OUT   # only the table, CIs and figures
#   STAGE=collect ROWS="study_bot study_daaf_bot" ...   # of some rows (BoT's runs must be evaluated)
#
# SEEDS (default 3) is the number of seeds trained per row; BOT_SEEDS, DAAF_SEEDS, PAB30_SEEDS,
# HAB_SEEDS, PAB_SEEDS and FIX_SEEDS (default SEEDS) the numbers collected (seeds 0..N-1 of the
# row must be trained); ROW_SEEDS="row=N ..." that of any row.
set -euo pipefail
OUT=${1:?usage: scripts/synthetic_study.sh OUT}
STUDY=${STUDY:-v2}
SEEDS=${SEEDS:-3}
FIX_SEEDS=${FIX_SEEDS:-$SEEDS}
BOT_SEEDS=${BOT_SEEDS:-$SEEDS}
DAAF_SEEDS=${DAAF_SEEDS:-$SEEDS}
PAB30_SEEDS=${PAB30_SEEDS:-$SEEDS}
HAB_SEEDS=${HAB_SEEDS:-$SEEDS}
PAB_SEEDS=${PAB_SEEDS:-$SEEDS}
NO_REID_SEEDS=${NO_REID_SEEDS:-1}
STAGE=${STAGE:-all}
PY=${PYTHON:-python}
export OMP_NUM_THREADS=1 MKL_NUM_THREADS=1
cd "$(dirname "$0")/.."
common=(--table study --dataset synthetic --root "$OUT/data" --annotations "$OUT/data/annotations"
        --out "$OUT/runs" --device cpu train.device=cpu)

if [ "$STUDY" = v1 ]; then
  PRESET=default
  ALL_ROWS="study_bot study_daaf_bot study_daaf_bot_pab30 study_hab_only study_pab_only"
  LANES=("study_bot study_daaf_bot_pab30 study_hab_only" "study_daaf_bot study_pab_only")
elif [ "$STUDY" = v2 ]; then
  PRESET=misaligned
  ALL_ROWS="study_bot study_daaf_bot study_daaf_bot_fix study_pab_no_reid study_pab_no_reid_mse"
  LANES=("study_bot study_daaf_bot_fix study_pab_no_reid_mse" "study_daaf_bot study_pab_no_reid")
else
  PRESET=misaligned
  ALL_ROWS="study_bot study_v3_daaf_bot_balanced study_v3_balanced_hab_only study_v3_balanced_pab_only
            study_v3_daaf_bot_recipe study_v3_daaf_bot study_v3_hab_only study_v3_pab_only"
fi

if [ "$STAGE" = all ]; then
  [ -f "$OUT/data/annotations/manifest.csv" ] ||
    $PY -m daaf.cli synth --out "$OUT/data" --preset "$PRESET" --workers 1
  mkdir -p "$OUT/logs"
fi
if [ "$STAGE" = all ] && [ "$STUDY" = v3 ]; then
  job() {  # one (row, seed): trained, or resumed from its last checkpoint
    local row=$1 seed=$2 run="$OUT/runs/seed$2/$1" resume=()
    [ -f "$run/checkpoints/last.pt" ] && resume=(--resume)
    $PY -m daaf.cli train --config "configs/study/$row.yaml" --out "$run" "${resume[@]}" \
      data.dataset=synthetic "data.root=$OUT/data" "data.annotations=$OUT/data/annotations" \
      train.device=cpu "train.seed=$seed" > "$OUT/logs/${row}_seed$seed.log" 2>&1
  }
  export -f job; export OUT PY
  for row in $ALL_ROWS; do for seed in $(seq 0 $((SEEDS - 1))); do echo "$row $seed"; done; done |
    xargs -P "${JOBS:-2}" -L 1 bash -c 'job "$0" "$1"'
elif [ "$STAGE" = all ]; then
  train() {  # SEEDS seeds per row; the diagnostic rows NO_REID_SEEDS
    local seeds=$SEEDS; [[ "$1" = study_pab_no_reid* ]] && seeds=$NO_REID_SEEDS
    $PY scripts/run_table.py "${common[@]}" --seeds "$seeds" --only "$1" > "$OUT/logs/$1.log" 2>&1
  }
  lane() { for row in $1; do train "$row"; done; }
  lane "${LANES[0]}" &  # two lanes
  lane "${LANES[1]}" &
  wait
fi

# Every run is reused. Per row of ROWS (default: all of the study's rows): evaluation, attention against the
# true masks and keypoints, mean +- std over its seeds (OUT/<row>_seeds.csv); for the DAAF rows,
# the paired CI against BoT (each side's seeds averaged per query) and the pictures beside BoT.
ROWS=${ROWS:-$ALL_ROWS}
declare -A N=([study_bot]=$BOT_SEEDS [study_daaf_bot]=$DAAF_SEEDS [study_daaf_bot_pab30]=$PAB30_SEEDS
              [study_hab_only]=$HAB_SEEDS [study_pab_only]=$PAB_SEEDS [study_daaf_bot_fix]=$FIX_SEEDS
              [study_pab_no_reid]=$NO_REID_SEEDS [study_pab_no_reid_mse]=$NO_REID_SEEDS
              [study_v3_daaf_bot]=$SEEDS [study_v3_daaf_bot_balanced]=$SEEDS [study_v3_hab_only]=$SEEDS
              [study_v3_pab_only]=$SEEDS [study_v3_balanced_hab_only]=$SEEDS
              [study_v3_balanced_pab_only]=$SEEDS [study_v3_daaf_bot_recipe]=$SEEDS)
for pair in ${ROW_SEEDS:-}; do N[${pair%=*}]=${pair#*=}; done
# The comparisons run in OUT and name the runs relative to it, in their text and figures.
evals() { for s in $(seq 0 $((N[$1] - 1))); do echo "runs/seed$s/$1/eval_synthetic"; done; }
compare() { (cd "$OUT" && $PY -m daaf.cli compare --json "$@"); }
for row in $ROWS; do
  $PY scripts/run_table.py "${common[@]}" --seeds "${N[$row]}" --only "$row"
  cp "$OUT/runs/tablestudy.csv" "$OUT/$row.csv"
  cp "$OUT/runs/tablestudy_seeds.csv" "$OUT/${row}_seeds.csv"
  [ "$row" = study_bot ] && continue
  if [[ "$row" != study_pab_no_reid* ]]; then  # a diagnostic is no ReID model: no mAP comparison
    compare --out "compare_$row" --baseline $(evals study_bot) --candidate $(evals "$row") |
      tee "$OUT/compare_$row.txt"
    cp "$OUT/compare_$row/bootstrap.png" "$OUT/compare_$row.png"  # the figure docs/results shows
    if [ "$STUDY" != v1 ]; then  # the same comparison on the occluded, misaligned and other queries
      for subset in occluded misaligned other; do
        case $subset in
          other) where=(--queries data/conditions.csv:occluded=0 --queries data/conditions.csv:misaligned=0) ;;
          *) where=(--queries "data/conditions.csv:$subset") ;;
        esac
        compare "${where[@]}" --baseline $(evals study_bot) --candidate $(evals "$row") \
          > "$OUT/compare_${row}_$subset.txt"
      done
    fi
  fi
  $PY -m daaf.cli visualize --model "$OUT/runs/seed0/$row/checkpoints/last.pt" \
    --base-model "$OUT/runs/seed0/study_bot/checkpoints/last.pt" --dataset synthetic \
    --root "$OUT/data" --annotations "$OUT/data/annotations" --n 4 --components 32 \
    --device cpu --out "$OUT/pictures/$row"
done
$PY scripts/plot_losses.py --runs "$OUT/runs" --png "$OUT/losses.png" --title "synthetic study"
# The constant-map PCK (each keypoint at the training set's median place) beside the PAB's, and
# chance mAP.
$PY scripts/synth_stats.py "$OUT/data" > "$OUT/synth_stats.txt"
# Each run's last branch-health measurement: each branch's loss against the trivial maps'.
$PY scripts/health_table.py "$OUT/runs" --csv "$OUT/health.csv" > "$OUT/health.txt"
