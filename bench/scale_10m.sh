#!/usr/bin/env bash
# Scale check: a 10M-row Criteo-shaped dataset (semctr gen-criteo), prepared
# with configs/criteo.yaml (streaming, split sequentially 80/10/10), trained
# for one epoch of DeepFM (batch 4096, 2 threads). Reports the wall time and
# peak RSS of each stage; training streams the mmap'ed split, so its peak RSS
# must stay far below the data size (target: < 2 GB).
# Training runs under bench/rss_sample.py, which splits the peak into
# anonymous memory (heap) and file pages (the mmap'ed dataset); the heap is
# broken down from the model's sizes. SEMCTR_BIN picks the binary (default
# build/semctr); BIN_BEFORE, an earlier build trained the same way beside it.
# Usage: bench/scale_10m.sh [ROWS]   Writes bench/results/scale-10m.{json,md}.
set -euo pipefail
cd "$(dirname "$0")/.."
ROWS="${1:-10000000}"
W=runs/scale-$ROWS
mkdir -p "$W" bench/results
S=${SEMCTR_BIN:-build/semctr}
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
train() {  # binary, tag: one epoch under the RSS sampler -> $W/train-TAG.{out,rss}
  SEMCTR_QUIET=1 python3 bench/rss_sample.py --out "$W/train-$2.out" -- "$1" train --data "$W/data" --model deepfm \
    --out "$W/deepfm-$2.model" --epochs 1 --batch-size 4096 --threads 2 --json > "$W/train-$2.rss"
}
train "$S" after
[ -n "${BIN_BEFORE:-}" ] && train "$BIN_BEFORE" before
j() { python3 -c "import json,sys;d=json.load(open(sys.argv[1]));print(eval(sys.argv[2]))" "$@"; }
tt=$(j "$W/train-after.rss" "d['seconds']"); rt=$(( $(j "$W/train-after.rss" "d['peak_rss_mb']") * 1024 ))
bytes=$(du -sb "$W/data" | cut -f1)
sps=$(j "$W/train-after.out" "d['samples_per_s']")
auc=$(j "$W/train-after.out" "d['valid_auc']")
cpu=$(lscpu | sed -n 's/^Model name: *//p' | head -1)
# where the bytes go: the heap from the model's sizes (ids x (D + 1) floats per copy), the rest measured
read -r ids trows < <(python3 -c "import json;m=json.load(open('$W/data/meta.json'));print(sum(f.get('vocab_size',0) for f in m['fields']), m['rows']['train'])")
wmb=$(( $(stat -c %s "$W/deepfm-after.model") / 1048576 ))
emb=$(( ids * 17 * 4 / 1048576 )); order=$(( trows * 8 / 1048576 ))
blk=$(python3 -c "import json;m=json.load(open('$W/data/meta.json'));print((1<<20)*4*(len(m['fields'])+1)//1048576)")
anon=$(j "$W/train-after.rss" "d['peak_anon_mb']"); file=$(j "$W/train-after.rss" "d['peak_file_mb']")
rest=$(( $(j "$W/train-after.rss" "d['at_peak']['anon_mb']") - 4 * emb - order ))
before_row=""; before_md=""
if [ -n "${BIN_BEFORE:-}" ]; then
  rb=$(j "$W/train-before.rss" "d['peak_rss_mb']"); ab=$(j "$W/train-before.rss" "d['at_peak']")
  aucb=$(j "$W/train-before.out" "d['valid_auc']")
  before_row=",
  {\"case\": \"the same training, build before (BIN_BEFORE), beside it\", \"metric\": \"peak_rss_mb\", \"semctr\": $((rt / 1024)), \"peer\": \"semctr before\", \"peer_value\": $rb, \"ratio\": $(python3 -c "print(round($rb / ($rt / 1024), 3))"), \"better\": \"lower\", \"before_at_peak\": $(j "$W/train-before.rss" "json.dumps(d['at_peak'])" | sed 's/^/ /'), \"before_valid_auc\": $aucb}"
  before_md="
Beside it, the build before (\`BIN_BEFORE\`): peak $rb MB (at the peak: $(j "$W/train-before.rss" "'%d MB heap + %d MB file pages' % (d['at_peak']['anon_mb'], d['at_peak']['file_mb'])")), valid AUC $aucb."
fi
cat > bench/results/scale-10m.json <<JSON
{"name": "scale-10m", "date": "$(date +%F)", "command": "bench/scale_10m.sh $ROWS",
 "machine": {"cpu": "$cpu", "cores": $(nproc), "gpu": null},
 "rows": [
  {"case": "prepare $ROWS Criteo-shaped rows", "metric": "peak_rss_mb", "semctr": $((rp / 1024)), "seconds": $tp, "peer": null, "peer_value": null},
  {"case": "train deepfm 1 epoch on the $ROWS-row dataset ($((bytes / 1048576)) MB on disk), batch 4096, 2 threads", "metric": "peak_rss_mb", "semctr": $((rt / 1024)), "seconds": $tt, "samples_per_s": $sps, "valid_auc": $auc, "peer": null, "peer_value": null,
   "at_peak": $(j "$W/train-after.rss" "json.dumps(d['at_peak'])"), "peak_anon_mb": $anon, "peak_file_mb": $file,
   "breakdown_mb": {"weights": $emb, "adam_m_and_v": $((2 * emb)), "best_epoch_copy": $emb, "shuffle_order_int64": $order, "rest_of_heap_at_peak": $rest, "one_shuffle_block_of_the_split": $blk, "model_file": $wmb, "ids": $ids}}$before_row
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
pages before reading the next, so its resident memory is the model, the Adam
moments, the best-epoch copy, one block of the training split and the
validation pass — not the data.

MB here are MiB (2^20 bytes), as GNU time and /proc report them. Stages
whose outputs already existed were not rerun: their figures come from the
run that made them.

Where the bytes go (peak $((rt / 1024)) MB; sampled: heap at most $anon MB, mapped file pages at most $file MB):

| part | MB |
|---|---|
| embedding tables + first-order weights ($ids ids x (16 + 1) floats) | $emb |
| Adam m and v (the same shape, twice) | $((2 * emb)) |
| best-epoch copy of the weights | $emb |
| shuffle order (8 bytes a training row) | $order |
| one shuffle block of the training split (2^20 rows, mapped) | $blk |
| the rest of the heap at the peak: schema and vocabularies, batch, activations, validation scores | $rest |
$before_md
MD
cat bench/results/scale-10m.md
