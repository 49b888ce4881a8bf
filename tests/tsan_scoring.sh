#!/usr/bin/env bash
# ThreadSanitizer check of concurrent scoring (run by `make tsan`, part of
# `make check`): DIR/examples/score scores one loaded model from 8 threads,
# then DIR/semctr serve answers concurrent curl requests while its model file
# is replaced. Any data race makes TSan exit non-zero. Usage: tsan_scoring.sh DIR
set -euo pipefail
DIR=${1:-build-tsan}
BIN=${SEMCTR_BIN:-build/semctr}   # the plain build makes the model (faster)
[ -x "$BIN" ] || BIN=$DIR/semctr
export SEMCTR_DATA=${SEMCTR_DATA:-$(cd "$(dirname "$0")/../../shared/data" && pwd)}
export TSAN_OPTIONS="halt_on_error=1 exitcode=66 ${TSAN_OPTIONS:-}"
T=$(mktemp -d)
PID=
cleanup() { [ -n "$PID" ] && kill -9 "$PID" 2>/dev/null; rm -rf "$T"; }
trap cleanup EXIT
"$BIN" prepare --config configs/ml-100k.yaml --out "$T/data" >/dev/null 2>&1
"$BIN" train --data "$T/data" --model deepfm --out "$T/a.model" --epochs 1 --max-steps 20 --threads 1 >/dev/null 2>&1
"$BIN" train --data "$T/data" --model deepfm --out "$T/b.model" --epochs 1 --max-steps 20 --threads 1 --seed 7 >/dev/null 2>&1
"$DIR/examples/score" "$T/a.model" --stress 8 200 user_id=196 item_id=242 2>/dev/null
cp "$T/a.model" "$T/serve.model"
"$DIR/semctr" serve --model m="$T/serve.model" --port 0 --port-file "$T/port" --threads 4 --watch 0.2 2>"$T/log" &
PID=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
PORT=$(cat "$T/port")
body='{"instances":[{"user_id":"196","item_id":"242"},{"user_id":"186","item_id":"302"}]}'
loop() { for _ in $(seq 40); do curl -sf -o /dev/null -XPOST "http://127.0.0.1:$PORT/v1/models/m:predict" -d "$body" || echo FAIL; done; }
loop > "$T/f1" & loop > "$T/f2" & loop > "$T/f3" &
sleep 0.3; cp "$T/b.model" "$T/new.model"; mv "$T/new.model" "$T/serve.model"
wait %2 %3 %4 2>/dev/null || true
wait "${!}" 2>/dev/null || true
sleep 0.5
metrics=$(curl -sf "http://127.0.0.1:$PORT/metrics" || true)
grep -q 'semctr_model_version{model="m"} 2' <<<"$metrics" || { echo "tsan: reload not seen"; cat "$T/log"; exit 1; }
kill -TERM "$PID"
rc=0; wait "$PID" || rc=$?
PID=
fails=$(cat "$T/f1" "$T/f2" "$T/f3" | grep -c FAIL || true)
if [ "$rc" -ne 0 ] || [ "$fails" -ne 0 ]; then echo "tsan: server exit $rc, $fails failed requests"; cat "$T/log"; exit 1; fi
echo "tsan: concurrent scoring and serving with reload: no data race"
