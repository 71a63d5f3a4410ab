#!/bin/sh
# Mix-weight measurement for the default corpus (bench/results/corpus_mix.md).
# Each arm fine-tunes the same start for the same steps on a corpus built with other
# modern-source weights, then is scored on the classic and the modern test splits.
# The three arms train side by side, one thread each.
# Usage: bench/corpus_mix.sh START_MODEL WORK_DIR [STEPS] [BATCH]
set -e
START=$1; WORK=$2; STEPS=${3:-120}; BATCH=${4:-16}
ARDM="${ARDM:-.venv/bin/ardm}"; PY="${PY:-.venv/bin/python}"
mkdir -p "$WORK"
for arm in "classic fortunes=0,jargon=0,debref=0,wordnet=0" \
           "natural fortunes=1,jargon=1,debref=1,wordnet=1" \
           "prose2x fortunes=2,jargon=2,debref=2,wordnet=1"; do
  set -- $arm
  [ -f "$WORK/corpus-$1/train.txt" ] || $PY -c "
import sys
from ardm_core.corpus import build
w = {k: float(v) for k, v in (x.split('=') for x in sys.argv[2].split(','))}
for line in build(sys.argv[1], weights=w): pass
" "$WORK/corpus-$1" "$2"
  [ -f "$WORK/run-$1/model/model.safetensors" ] || $ARDM train --data "$WORK/corpus-$1" --init "$START" \
      --out "$WORK/run-$1" --batch-size "$BATCH" --steps "$STEPS" --lr 3e-4 --warmup 10 --min-lr-ratio 1.0 \
      --ema 0.9 --eval-every 100000 --eval-batches 1 --save-every 100000 --seed 7 --threads 1 > "$WORK/train-$1.log" 2>&1 &
done
wait
for m in "$START" "$WORK/run-classic/model" "$WORK/run-natural/model" "$WORK/run-prose2x/model"; do
  for split in test modern_test; do
    printf '%s %s ' "$m" "$split"
    $ARDM eval "$WORK/corpus-natural/$split.txt" --model "$m" --passes 1 --max-chars 100000 --seed 0 --json
  done
done
