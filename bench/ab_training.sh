#!/bin/sh
# Training A/B arms at equal compute from the same start (bench/results/ab_training.md).
# Every arm fine-tunes START on CORPUS for the same number of characters (steps x batch x 256),
# one thread each, with the same seed; only the option under test differs:
#   control   batch 16, peak lr 3e-4, 1600 steps, uniform t (the default objective)
#   tfocus    as control, with --t-focus 0.5: half of each batch's t drawn from the infilling steps
#   batch32   batch 32, peak lr 4.2e-4 (x sqrt 2), 800 steps, warm-up halved: the same characters
# Then bench/ab_report.py scores every arm on the same characters of both valid splits and the
# same infilling spans.
# Usage: bench/ab_training.sh START_MODEL CORPUS WORK_DIR "ARM ..."   (arms run side by side)
#        bench/ab_training.sh START_MODEL CORPUS WORK_DIR report
set -e
START=$1; CORPUS=$2; WORK=$3; ARMS=${4:-"control tfocus batch32"}
PY="${PY:-.venv/bin/python}"
mkdir -p "$WORK"
common="--data $CORPUS --init $START --min-lr-ratio 0.1 --eval-every 400 --eval-batches 8 --save-every 100 --seed 7 --threads 1 --json"
if [ "$ARMS" = report ]; then
  args=""
  for arm in control tfocus batch32; do
    [ -f "$WORK/$arm/model/model.safetensors" ] && args="$args --arm $arm=$WORK/$arm/model"
  done
  exec $PY bench/ab_report.py --arm start=$START $args --valid "$CORPUS/valid.txt" \
      --modern-valid "$CORPUS/modern_valid.txt" --title "Training A/B at equal compute" \
      --notes bench/results/ab_training_notes.md --out bench/results/ab_training.md
fi
for arm in $ARMS; do
  case $arm in
    control) opts="--batch-size 16 --steps 1600 --lr 3e-4 --warmup 50" ;;
    tfocus)  opts="--batch-size 16 --steps 1600 --lr 3e-4 --warmup 50 --t-focus 0.5" ;;
    batch32) opts="--batch-size 32 --steps 800 --lr 4.2e-4 --warmup 25" ;;
    *) echo "unknown arm $arm" >&2; exit 2 ;;
  esac
  nice -n 3 $PY -m ardm_core train $common $opts --out "$WORK/$arm" > "$WORK/$arm.log" 2>&1 &
done
wait
