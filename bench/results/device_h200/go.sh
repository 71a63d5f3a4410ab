#!/bin/bash
# one device call: three arms side by side on one GPU, each packed into $OUT as soon as it is trained
set -u
export PYTHONUNBUFFERED=1
M=${M:-7}; LIMIT=${LIMIT:-560}; DEV=${DEV:-cuda}; OUT=${OUT:-/tmp/out}; mkdir -p $OUT
PRESET_B=${PRESET_B:-medium}
(nvidia-smi; python3 -c "import torch,sys;print(torch.__version__, torch.cuda.is_available(), sys.version)") > $OUT/env.txt 2>&1
arm() { name=$1; shift
  timeout $LIMIT python3 scripts/train_on_device.py --device $DEV --out runs/dev/$name --minutes $M --eval-chars 100000 --fp16-copy "$@" > runs/dev/$name.log 2>&1
  echo "exit $?" >> runs/dev/$name.log
  if [ -d runs/dev/$name/model-fp16 ]; then tar -C runs/dev/$name -cf $OUT/$name.tar model-fp16; fi
}
mkdir -p runs/dev
arm a --batch-size 256 --lr 5e-4 --threads 4 ${EXTRA_A:-} &
arm b --batch-size 1024 --lr 1e-3 --threads 4 ${EXTRA_B:-} &
arm c --init none --preset $PRESET_B --batch-size 256 --lr 1e-3 --threads 4 ${EXTRA_C:-} &
wait
for n in a b c; do cp runs/dev/$n/device_result.json runs/dev/$n.json 2>/dev/null; done
cp $OUT/env.txt runs/dev/; rm $OUT/env.txt
tar -C runs/dev -cf $OUT/logs.tar $(cd runs/dev && ls *.log *.json env.txt)
for f in $OUT/*.tar; do  # a file comes back only under 16 MiB
  if [ $(stat -c %s $f) -gt 15000000 ]; then split -b 15000000 $f $f.; rm $f; fi
done
ls -la $OUT; cat runs/dev/*.log | grep -v "^step .* bpc" 
