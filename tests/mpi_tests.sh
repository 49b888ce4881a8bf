#!/usr/bin/env bash
# semctr over MPI ranks (make MPI=1) on this machine. Training: 1, 2 and 3
# ranks with the same global batch train the same model; resume works; a
# failing input and a killed rank end the job with a clear error and
# leave a loadable model; sharded embedding tables train the model of 1 rank and write an ordinary
# model file. embed: 1, 2 and 3 ranks write the same vector store; extract and
# ELEC's / MSD's text encoding: 2 (and 3) ranks write the files of 1 process.
# Usage: tests/mpi_tests.sh BUILD_DIR (an MPI=1 build; `make MPI=1 test-mpi`).
#
# Tolerances (docs/distributed.md): the ranks' sums add the same numbers in
# another order, so weights differ by float rounding only: FM (no ReLU)
# after 2 epochs by ~2e-6, DeepFM after 100 steps by ~4e-7; checked at 2e-5.
# Over whole epochs a ReLU network amplifies rounding (Adam turns a 1e-9
# gradient of an almost dead unit into a step of the order of the learning
# rate), so DeepFM is held to its validation AUC (within 1e-4) over epochs.
set -euo pipefail
BUILD=${1:?usage: tests/mpi_tests.sh BUILD_DIR}
BIN=$(cd "$BUILD" && pwd)/semctr
HERE=$(cd "$(dirname "$0")" && pwd)
ROOT=$(cd "$HERE/.." && pwd)
export SEMCTR_QUIET=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
# an ASan build (make MPI=1 SAN=1): Open MPI's own allocations are not reported (tests/lsan-mpi.supp)
export OMPI_MCA_mca_base_component_disable_dlclose=1 ASAN_OPTIONS=${ASAN_OPTIONS:-fast_unwind_on_malloc=0}
export LSAN_OPTIONS=${LSAN_OPTIONS:-suppressions=$HERE/lsan-mpi.supp:print_suppressions=0}
# on loopback, a machine with fewer cores than ranks; no warnings about a missing network
MPIRUN=(mpirun --oversubscribe --mca btl self,vader,tcp --mca btl_tcp_if_include lo)
T=$(mktemp -d)
trap 'rm -rf "$T"' EXIT
fails=0
pass() { echo "ok   $1"; }
fail() { echo "FAIL $1"; fails=$((fails + 1)); }
json_num() { python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])[sys.argv[1]])' "$1"; }
# |a - b| <= tol
close() { python3 -c 'import sys; a, b, t = map(float, sys.argv[1:]); sys.exit(abs(a - b) > t)' "$1" "$2" "$3"; }

"$BIN" prepare --config "$ROOT/configs/ml-100k.yaml" --out "$T/data" >/dev/null
train() { # NP OUT ARGS...: train on NP ranks (0: no mpirun), the JSON result on stdout
    local np=$1 out=$2
    shift 2
    if [ "$np" = 0 ]; then "$BIN" train --data "$T/data" --out "$T/$out" --threads 1 --json "$@"
    else "${MPIRUN[@]}" -np "$np" "$BIN" train --data "$T/data" --out "$T/$out" --threads 1 --json "$@"; fi
}
same_weights() { # NAME A B ATOL
    if python3 "$HERE/mpi_compare.py" --atol "$4" --rtol 0 "$T/$2" "$T/$3" >"$T/cmp.txt"; then pass "$1"
    else cat "$T/cmp.txt"; fail "$1"; fi
}

# 1. FM over two epochs: 1, 2 and 3 ranks (3 does not divide 256: slices of 85 and 86 rows)
a1=$(train 0 fm1.model --model fm --epochs 2 | json_num valid_auc)
for np in 2 3; do
    r=$(train $np fm$np.model --model fm --epochs 2)
    close "$a1" "$(echo "$r" | json_num valid_auc)" 1e-4 && pass "fm $np ranks: valid AUC as 1 rank ($a1)" ||
        fail "fm $np ranks: valid AUC $(echo "$r" | json_num valid_auc) vs $a1"
    [ "$(echo "$r" | json_num ranks)" = "$np" ] && pass "fm $np ranks: --json says ranks $np" || fail "fm ranks field"
    same_weights "fm $np ranks: the weights of 1 rank within 2e-5" fm1.model fm$np.model 2e-5
done

# 2. DeepFM: weights after 100 steps, validation AUC after 2 epochs
train 0 d1s.model --model deepfm --max-steps 100 >/dev/null
train 2 d2s.model --model deepfm --max-steps 100 >/dev/null
same_weights "deepfm 2 ranks, 100 steps: the weights of 1 rank within 2e-5" d1s.model d2s.model 2e-5
a1=$(train 0 d1.model --model deepfm --epochs 2 | json_num valid_auc)
a2=$(train 2 d2.model --model deepfm --epochs 2 | json_num valid_auc)
close "$a1" "$a2" 1e-4 && pass "deepfm 2 ranks, 2 epochs: valid AUC $a2 vs 1 rank $a1" || fail "deepfm AUC $a2 vs $a1"

# 3. a global batch smaller than the job: some ranks have empty slices
train 0 b1.model --model fm --batch-size 2 --max-steps 300 >/dev/null
train 3 b3.model --model fm --batch-size 2 --max-steps 300 >/dev/null
same_weights "batch 2 over 3 ranks (empty slices): the weights of 1 rank" b1.model b3.model 1e-6

# 4. resume under MPI, on another number of ranks: 1 epoch on 2, then --resume to 3 on 3, is the straight
#    3-epoch run on 2 (the checkpoint holds no per-rank state)
train 2 r.model --model fm --epochs 1 >/dev/null
train 3 r.model --model fm --epochs 3 --resume >"$T/r.json"
train 2 s.model --model fm --epochs 3 >"$T/s.json"
same_weights "2 ranks, resumed on 3: the straight run's weights within 2e-5" r.model s.model 2e-5
[ "$(json_num epochs_run <"$T/r.json")" = 2 ] && pass "resume ran the 2 remaining epochs" || fail "resume epochs_run"

# 4b. embedding tables sharded over ranks (--shard-embeddings): rows start from per-row seeds, so 2 and 3
#     ranks train the model of 1 (same tolerances as above); 3 ranks resumed on 2 is the straight run; the
#     model file is an ordinary one: eval reproduces training's AUC and serve scores with it
a1=$(train 0 sh1.model --model fm --epochs 2 --shard-embeddings | json_num valid_auc)
for np in 2 3; do
    r=$(train $np sh$np.model --model fm --epochs 2 --shard-embeddings)
    an=$(echo "$r" | json_num valid_auc)
    [ $np = 2 ] && a2=$an
    close "$a1" "$an" 1e-4 && pass "sharded fm $np ranks: valid AUC as 1 rank ($a1)" ||
        fail "sharded fm $np ranks: valid AUC $an vs $a1"
    same_weights "sharded fm $np ranks: the weights of 1 rank within 2e-5" sh1.model sh$np.model 2e-5
done
train 0 shd1.model --model deepfm --max-steps 100 --shard-embeddings >/dev/null
r=$(train 2 shd2.model --model deepfm --max-steps 100 --shard-embeddings)
same_weights "sharded deepfm 2 ranks, 100 steps: the weights of 1 rank within 2e-5" shd1.model shd2.model 2e-5
sent=$(echo "$r" | python3 -c 'import json,sys; print(json.loads(sys.stdin.read().strip().splitlines()[-1])["dist"]["sparse_bytes_sent_per_step"])')
close "$sent" 0 0 && fail "sharded: --json reports no rows exchanged" || pass "sharded: --json reports $sent bytes sent per step"
# (tables written and read back in pieces of a few rows: SEMCTR_SHARD_PIECE_FLOATS, so that the streaming of
#  whole tables to and from rank 0 crosses many piece boundaries)
SEMCTR_SHARD_PIECE_FLOATS=1000 train 3 shr.model --model fm --epochs 1 --shard-embeddings >/dev/null
SEMCTR_SHARD_PIECE_FLOATS=700 train 2 shr.model --model fm --epochs 2 --resume --shard-embeddings >/dev/null
same_weights "sharded: 1 epoch on 3 ranks, resumed on 2, is the straight run" sh1.model shr.model 2e-5
ev=$("$BIN" eval --model "$T/sh2.model" --data "$T/data" --split valid --json | json_num auc)
close "$ev" "$a2" 1e-6 && pass "sharded model file: eval AUC $ev is training's" || fail "sharded eval $ev vs $a2"
"$BIN" serve --model m="$T/sh2.model" --port 0 --port-file "$T/port" --threads 1 2>"$T/serve.log" &
srv=$!
for _ in $(seq 100); do [ -s "$T/port" ] && break; sleep 0.1; done
if curl -sf -XPOST "http://127.0.0.1:$(cat "$T/port")/v1/models/m:predict" \
    -d '{"instances":[{"user_id":"196","item_id":"242"}]}' >"$T/pred.json" && grep -q predictions "$T/pred.json"; then
    pass "sharded model file: serve scores with it"
else cat "$T/serve.log"; fail "sharded model file: serve"; fi
kill "$srv" 2>/dev/null || true
wait "$srv" 2>/dev/null || true

# 6. bad input on every rank: the job fails with the file named, no model
if "${MPIRUN[@]}" -np 2 "$BIN" train --data "$T/nowhere" --model fm --out "$T/n.model" >"$T/n.txt" 2>&1; then
    fail "missing data over 2 ranks exited 0"
elif grep -q "rank 0 of 2: .*nowhere" "$T/n.txt" && [ ! -e "$T/n.model" ]; then pass "missing data: error names it"
else cat "$T/n.txt"; fail "missing data message"; fi

# 7. embed over ranks: each encodes its share of every chunk, rank 0 writes the store of one process
# head first: under pipefail, cut killed by SIGPIPE when head stops reading would fail the script
head -200 "${SEMCTR_DATA:-$ROOT/../shared/data}/ml-100k/u.item" | cut -d'|' -f2 >"$T/titles.txt"
"$BIN" embed --input "$T/titles.txt" --out "$T/e1.vec" --threads 1 2>/dev/null
for np in 2 3; do
    "${MPIRUN[@]}" -np $np "$BIN" embed --input "$T/titles.txt" --out "$T/e$np.vec" --threads 1 2>/dev/null
    cmp -s "$T/e1.vec" "$T/e$np.vec" && pass "embed (MiniLM) over $np ranks: the store of 1 rank, byte for byte" ||
        fail "embed over $np ranks differs"
done
gguf=${SEMCTR_GGUF:-${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/SmolLM2-135M-Instruct.Q4_1.gguf}
head -6 "$T/titles.txt" >"$T/t6.txt"
"$BIN" embed --model "$gguf" --input "$T/t6.txt" --out "$T/g1.vec" --threads 1 2>/dev/null
"${MPIRUN[@]}" -np 2 "$BIN" embed --model "$gguf" --input "$T/t6.txt" --out "$T/g2.vec" --threads 1 2>/dev/null
cmp -s "$T/g1.vec" "$T/g2.vec" && pass "embed (SmolLM2 GGUF) over 2 ranks: the store of 1 rank, byte for byte" ||
    fail "embed GGUF over 2 ranks differs"

# 7b. extract, ELEC's and MSD's text encoding over ranks: each rank asks / encodes its share, rank 0
#     writes the files of one process, byte for byte; ELEC and MSD then train on rank 0 alone, so the
#     weights are those of one process exactly (the model files differ only in measured timings)
xt=(extract --config "$ROOT/configs/ml-100k.yaml" --entity item --model "$gguf" --max-tokens 16 --retries 1 --batch 2)
SEMCTR_THREADS=1 "$BIN" "${xt[@]}" --limit 5 --out "$T/x1" 2>/dev/null
SEMCTR_THREADS=1 "${MPIRUN[@]}" -np 2 "$BIN" "${xt[@]}" --limit 5 --out "$T/x2" 2>/dev/null
# resumed: 2 entities by one process, the other 3 by 3 ranks
SEMCTR_THREADS=1 "$BIN" "${xt[@]}" --limit 2 --out "$T/x3" 2>/dev/null
SEMCTR_THREADS=1 "${MPIRUN[@]}" -np 3 "$BIN" "${xt[@]}" --limit 5 --out "$T/x3" 2>/dev/null
for x in x2 x3; do
    same=1
    for f in item.tsv item.prompts.tsv item.log.tsv; do cmp -s "$T/x1/$f" "$T/$x/$f" || same=0; done
    [ "$(wc -l <"$T/x1/item.tsv")" = 6 ] || same=0
    [ $same = 1 ] && pass "extract (SmolLM2, 5 items) $([ $x = x2 ] && echo 'over 2 ranks' || echo 'resumed on 3 ranks'): the files of 1 process, byte for byte" ||
        fail "extract $x: the files differ from 1 process"
done
# rank 0 alone refuses (other parameters than DIR's): every rank fails, nothing written
if SEMCTR_THREADS=1 "${MPIRUN[@]}" -np 2 "$BIN" "${xt[@]}" --limit 5 --max-tokens 17 --out "$T/x2" >"$T/xf.txt" 2>&1; then
    fail "extract over 2 ranks with other parameters exited 0"
elif grep -q "rank 1 of 2: rank 0 failed" "$T/xf.txt" && grep -q "max_tokens" "$T/xf.txt" && cmp -s "$T/x1/item.tsv" "$T/x2/item.tsv"
then pass "extract: rank 0's refusal stops rank 1, the file is unchanged"
else cat "$T/xf.txt"; fail "extract refusal over ranks"; fi
# a small dataset (items 1..200) keeps the encoding to a few hundred texts
SD=${SEMCTR_DATA:-$ROOT/../shared/data}
awk '$2 <= 200' "$SD/ml-100k/u.data" >"$T/u200.data"
sed "s|\${SEMCTR_DATA:-../../shared/data}|$SD|; s|path: .*/u.data|path: $T/u200.data|" "$ROOT/configs/ml-100k.yaml" >"$T/small.yaml"
"$BIN" prepare --config "$T/small.yaml" --out "$T/small" >/dev/null 2>&1
llm_pair() { # NAME ARGS...: 1 process and 2 ranks with their own cache; same cache bytes, same weights
    local name=$1
    shift
    "$BIN" train --data "$T/small" --model fm --threads 1 --max-steps 50 --epochs 1 "$@" --out "$T/$name-1.model" \
        --"$name"-cache "$T/$name-1.vec" >/dev/null 2>"$T/$name-1.txt"
    SEMCTR_QUIET=0 "${MPIRUN[@]}" -np 2 "$BIN" train --data "$T/small" --model fm --threads 1 --max-steps 50 \
        --epochs 1 "$@" --out "$T/$name-2.model" --"$name"-cache "$T/$name-2.vec" >/dev/null 2>"$T/$name-2.txt"
    local n
    n=$(grep -o '[0-9]* to encode' "$T/$name-2.txt" | head -1 || true)
    cmp -s "$T/$name-1.vec" "$T/$name-2.vec" && pass "$name over 2 ranks: ${n% to encode} texts, the vector store of 1 process" ||
        { cat "$T/$name-2.txt"; fail "$name over 2 ranks: the vector store differs"; }
    same_weights "$name over 2 ranks (trained on rank 0): the weights of 1 process exactly" "$name-1.model" "$name-2.model" 0
}
llm_pair elec --method elec --elec-granularity entity --elec-text genres,occupation,gender --adapter-epochs 1 --elec-folds 1
llm_pair msd --method msd --msd-levels item,user --msd-texts "$T/x2"
# rank 0 fails while training (its model cannot be written): rank 1, waiting, fails with it
if "${MPIRUN[@]}" -np 2 "$BIN" train --data "$T/small" --model fm --threads 1 --max-steps 5 --epochs 1 --method msd \
    --msd-levels item,user --msd-texts "$T/x2" --msd-cache "$T/msd-1.vec" --out "$T/nowhere/m.model" >"$T/mf.txt" 2>&1
then fail "msd over 2 ranks with an unwritable --out exited 0"
elif grep -q "rank 1 of 2: rank 0 failed" "$T/mf.txt" && grep -q "rank 0 of 2: .*nowhere" "$T/mf.txt"; then
    pass "msd: rank 0's failure while training ends rank 1 too"
else cat "$T/mf.txt"; fail "msd failure over ranks"; fi

# 8. a rank killed mid-training: the job ends (no hang) with an error, the model on disk is the
#    last complete epoch's and loads
"${MPIRUN[@]}" -np 2 "$BIN" train --data "$T/data" --out "$T/k.model" --model deepfm --threads 1 --epochs 1000 \
    --patience 1000 --lr-decay 1 >"$T/k.txt" 2>&1 &
job=$!
for _ in $(seq 600); do [ -e "$T/k.model" ] && break; sleep 0.1; done
victim=""
for p in $(pgrep -P "$job" || true); do
    grep -qz '^OMPI_COMM_WORLD_RANK=1$' "/proc/$p/environ" 2>/dev/null && victim=$p
done
if [ -z "$victim" ] || [ ! -e "$T/k.model" ]; then
    kill "$job" 2>/dev/null || true
    fail "killed rank: no model after 60 s or no rank 1 under mpirun $job"
else
    kill -9 "$victim"
    for _ in $(seq 300); do kill -0 "$job" 2>/dev/null || break; sleep 0.1; done
    if kill -0 "$job" 2>/dev/null; then
        kill "$job"
        fail "killed rank: the job still runs 30 s later"
    elif wait "$job"; then fail "killed rank: the job exited 0"
    elif ! grep -qi "signal 9\|killed" "$T/k.txt"; then cat "$T/k.txt"; fail "killed rank: no message"
    elif "$BIN" eval --model "$T/k.model" --data "$T/data" --split valid --json >"$T/ke.json"; then
        pass "killed rank: job ended with '$(grep -i -m1 'signal 9\|killed' "$T/k.txt" | sed 's/^ *//')', model loads"
    else fail "killed rank: the model left on disk does not load"; fi
fi

echo "mpi_tests: $fails failed"
[ "$fails" = 0 ]
