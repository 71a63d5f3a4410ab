#!/bin/bash
# One call on a lent GPU machine: go on training both shipped models side by side.
#
#   bash scripts/device_session.sh [MINUTES]        (on the device, in the repository root)
#
# Arms, each a process of its own on the one GPU (a 3M-parameter model alone leaves
# most of an H200 idle): `small` from assets/models/default, batch 1024, and `medium`
# from assets/models/medium (fresh weights of that preset if it is missing), batch 256.
# Both at a peak learning rate of LR (5e-4), bf16, a cosine over MINUTES (7.5).
# Needs the corpus in data/corpus (carry it: `ardm corpus build --out data/corpus`
# here first). For each arm it leaves in $OUT (default /tmp/device-out) a tar of
# the fp16 model folder, split into parts under 15 MB (`cat NAME.tar.* > NAME.tar`),
# and logs.tar with the logs and device_result.json files. Bring the results home,
# then compare with bench/ab_report.py and ship with scripts/ship_model.py.
# The session of 2026-11-30 ran the first version of this (bench/results/device_h200.md).
set -u
export PYTHONUNBUFFERED=1
M=${1:-7.5}; LR=${LR:-5e-4}; DEV=${DEV:-cuda}; OUT=${OUT:-/tmp/device-out}; EVAL=${EVAL_CHARS:-100000}
case "$M" in ''|*[!0-9.]*) echo "device_session: MINUTES must be a number (got '$M')" >&2; exit 2;; esac
LIMIT=${LIMIT:-$(python3 -c "print(int($M * 60 + 100))")}  # training, then loading and evaluating
# a fresh run folder each call (an old one would resume with its budget already spent)
RUNS=${RUNS:-runs/device-$(date +%Y%m%d-%H%M%S)}
mkdir -p "$OUT" "$RUNS"
rm -f "$OUT"/*.tar "$OUT"/*.tar.?? 2>/dev/null  # parts of an earlier call must not join this one's
(nvidia-smi; python3 -c "import torch, sys; print(torch.__version__, torch.cuda.is_available(), sys.version)") > "$RUNS/env.txt" 2>&1
arm() {  # NAME ARGS...
  local name=$1; shift
  timeout "$LIMIT" python3 scripts/train_on_device.py --device "$DEV" --out "$RUNS/$name" --minutes "$M" \
    --eval-chars "$EVAL" --fp16-copy --threads 4 "$@" > "$RUNS/$name.log" 2>&1
  echo "exit $?" >> "$RUNS/$name.log"
  if [ -d "$RUNS/$name/model-fp16" ]; then tar -C "$RUNS/$name" -cf "$OUT/$name.tar" model-fp16
  elif [ -d "$RUNS/$name/model" ]; then tar -C "$RUNS/$name" -cf "$OUT/$name.tar" model  # cut short: the last checkpoint
  fi
  cp "$RUNS/$name/device_result.json" "$RUNS/$name.json" 2>/dev/null
}
if [ -f assets/models/medium/config.json ]; then MEDIUM="--init assets/models/medium"; else MEDIUM="--init none --preset medium"; fi
arm small --init assets/models/default --batch-size 1024 --lr "$LR" ${EXTRA_SMALL:-} &
arm medium $MEDIUM --batch-size 256 --lr "$LR" ${EXTRA_MEDIUM:-} &
wait
tar -C "$RUNS" -cf "$OUT/logs.tar" $(cd "$RUNS" && ls ./*.log ./*.json env.txt 2>/dev/null)
for f in "$OUT"/*.tar; do  # a file comes back from the device only under 16 MiB
  if [ "$(stat -c %s "$f")" -gt 15000000 ]; then split -b 15000000 "$f" "$f."; rm "$f"; fi
done
ls -la "$OUT"
grep -hv "^step .* bpc" "$RUNS"/small.log "$RUNS"/medium.log
