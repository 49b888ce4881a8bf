#!/usr/bin/env bash
# The thread pool and multi-threaded training under ThreadSanitizer.
# Usage: tests/tsan/run.sh BUILD_DIR   (a TSan build of libsemctr.a and semctr:
#   make BUILD=DIR OPT="-O1 -fno-omit-frame-pointer" CFLAGS_BASE="... -fsanitize=thread" LDSAN=-fsanitize=thread DIR/semctr,
#   or make TSAN=1 for build-tsan/)
set -euo pipefail
cd "$(dirname "$0")/../.."
B=${1:-build-tsan}
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
cc -std=c11 -D_GNU_SOURCE -O1 -g -fsanitize=thread -Isrc -Iinclude -o "$B/tsan_pool" tests/tsan/pool.c "$B/libsemctr.a" \
   -lopenblas -lyaml -lcjson -lxxhash -lutf8proc -lpcre2-8 -lmicrohttpd -lpthread -lm
"$B/tsan_pool"
D=${SEMCTR_DATA:-../shared/data}
W=$(mktemp -d)
trap 'rm -rf "$W"' EXIT
SEMCTR_QUIET=1 "$B/semctr" prepare --config configs/ml-100k.yaml --out "$W/ml" > /dev/null
for m in deepfm dcnv2 autoint; do
  for bs in 256 2048; do
    SEMCTR_QUIET=1 "$B/semctr" train --data "$W/ml" --model $m --out "$W/$m.model" --threads 2 --epochs 1 \
      --max-steps 12 --batch-size $bs > /dev/null
    echo "train $m batch $bs, 2 threads: ok"
  done
done
