#!/usr/bin/env bash
# Scale check: a 10M-row Criteo-shaped dataset (semctr gen-criteo), prepared
# with configs/criteo.yaml (streaming, split sequentially 80/10/10), trained
# for one epoch of DeepFM (batch 4096, 2 threads). Reports the wall time and
# peak RSS of each stage; training streams the mmap'ed split, so its peak RSS
# must stay far below the data size (target: < 2 GB).
# Usage: bench/scale_10m.sh [ROWS]   Writes bench/results/scale-10m.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
W=runs/scale-$ROWS
mkdir -p "$W" bench/results
S=build/semctr
stage() {  # name, command...: runs it under GNU time, prints "seconds max_rss_kb"
  local name=$1; shift
  /usr/bin/time -f "%e %M" -o "$W/$name.time" "$@" > "$W/$name.out" 2> "$W/$name.err"
  cat "$W/$name.time"
}
[ -s "$W/criteo.txt" ] || stage gen $S gen-criteo --rows "$ROWS" --out "$W/criteo.txt" --seed 11 > /dev/null
# stages already done (their .time files) are not rerun
[ -s "$W/data/train.scd" ] ||
  SEMCTR_CRITEO="$PWD/$W/criteo.txt" stage prepare $S prepare --config configs/criteo.yaml --out "$W/data" > /dev/null
read -r tp rp < "$W/prepare.time"
read -r tt rt < <(stage train $S train --data "$W/data" --model deepfm --out "$W/deepfm.model" --epochs 1 \
                  --batch-size 4096 --threads 2 --json)
bytes=$(du -sb "$W/data" | cut -f1)
sps=$(python3 -c "import json;print(json.load(open('$W/train.out'))['samples_per_s'])")
auc=$(python3 -c "import json;print(json.load(open('$W/train.out'))['valid_auc'])")
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
cat > bench/results/scale-10m.json <<JSON
{"name": "scale-10m", "date": "$(date +%F)", "command": "bench/scale_10m.sh $ROWS",
 "machine": {"cpu": "$cpu", "cores": $(nproc), "gpu": null},
 "rows": [
  {"case": "prepare $ROWS Criteo-shaped rows", "metric": "peak_rss_mb", "semctr": $((rp / 1024)), "seconds": $tp, "peer": null, "peer_value": null},
  {"case": "train deepfm 1 epoch on the $ROWS-row dataset ($((bytes / 1048576)) MB on disk), batch 4096, 2 threads", "metric": "peak_rss_mb", "semctr": $((rt / 1024)), "seconds": $tt, "samples_per_s": $sps, "valid_auc": $auc, "peer": null, "peer_value": null}
 ]}
JSON
cat > bench/results/scale-10m.md <<MD
# Scale: $ROWS Criteo-shaped rows

$(date +%F), $cpu, $(nproc) cores. \`bench/scale_10m.sh $ROWS\`.

| stage | wall time (s) | peak RSS (MB) |
|---|---|---|
| prepare (streaming, vocabularies min_count 2) | $tp | $((rp / 1024)) |
| train DeepFM, 1 epoch, batch 4096 ($sps samples/s, valid AUC $auc) | $tt | $((rt / 1024)) |

The prepared dataset is $((bytes / 1048576)) MB on disk; training mmaps it and
gathers batches block by block (1M rows), releasing each finished block's
pages, so its resident memory is the model, the Adam moments, the best-epoch
copy, one block of the training split and the validation pass — not the data.
MD
cat bench/results/scale-10m.md
